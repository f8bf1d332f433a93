"""The outbox: each write adds one delivery per event and subscription that wants it, in the write's own
transaction, so a rolled-back write sends nothing and a committed one is delivered even if the process dies
right after the commit."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Connection, insert, select, update

from mcp_crm.entities import Entity
from mcp_crm.ids import new_id
from mcp_crm.store.tables import DELIVERIES, WEBHOOKS
from mcp_crm.webhooks.events import names_of, wants


def enqueue(conn: Connection, workspace_id: str, entity: Entity, action: str, events: list[dict[str, Any]]) -> None:
    """Queues the change events just recorded (rows of change_events) for the workspace's active subscriptions."""
    subscriptions = conn.execute(
        select(WEBHOOKS.c.id, WEBHOOKS.c.events)
        .where(WEBHOOKS.c.workspace_id == workspace_id, WEBHOOKS.c.active.is_(True))
        .order_by(WEBHOOKS.c.id)
    ).all()
    if not subscriptions:
        return
    wanted: dict[str, list[tuple[str, dict[str, Any]]]] = {}
    for event in events:
        for name in names_of(entity, action, event["before"], event["after"]):
            for webhook_id, patterns in subscriptions:
                if wants(patterns, name):
                    wanted.setdefault(webhook_id, []).append((name, event))
    rows = []
    for webhook_id, queued in wanted.items():  # in id order: writes take the subscriptions' locks in one order
        first = take_places(conn, webhook_id, len(queued))
        rows += [
            delivery(workspace_id, webhook_id, name, first + n, event["occurred_at"], change_id=event["id"])
            for n, (name, event) in enumerate(queued)
        ]
    if rows:
        conn.execute(insert(DELIVERIES), rows)


def take_places(conn: Connection, webhook_id: str, count: int) -> int:
    """The first of `count` places in the subscription's line. The row stays locked until the transaction
    ends, so a later transaction's deliveries line up behind these once this one commits."""
    taken = conn.execute(
        update(WEBHOOKS)
        .where(WEBHOOKS.c.id == webhook_id)
        .values(last_sequence=WEBHOOKS.c.last_sequence + count)
        .returning(WEBHOOKS.c.last_sequence)
    ).scalar_one()
    return int(taken) - count + 1


def delivery(
    workspace_id: str,
    webhook_id: str,
    event: str,
    sequence: int,
    now: datetime,
    change_id: str | None = None,
    payload: dict[str, Any] | None = None,
) -> dict[str, Any]:
    return {
        "id": new_id(),
        "workspace_id": workspace_id,
        "webhook_id": webhook_id,
        "event": event,
        "sequence": sequence,
        "change_id": change_id,
        "payload": payload,
        "status": "pending",
        "attempts": 0,
        "next_attempt_at": now,
        "created_at": now,
    }
