"""The outbox: each write queues its events for the workspace's active subscriptions in its own transaction, so
a rolled-back write sends nothing and a committed one is delivered even if the process dies right after the
commit. A write adds one row per subscription that wants any of its events; a dispatcher later turns each row
into one delivery per event (`expand`), off the write's path."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Connection, bindparam, delete, insert, or_, select, update

from mcp_crm.entities import Entity
from mcp_crm.ids import new_id
from mcp_crm.store.tables import DELIVERIES, OUTBOX, WEBHOOKS
from mcp_crm.webhooks.events import names_of, wants

PLACE_BITS = 20  # a delivery's sequence is its write's place in line, then its index among the write's events
QUEUED = "mcp_crm.webhooks_queued"  # conn.info: this transaction gave the dispatcher something to send


def queued_here(conn: Connection) -> bool:
    """Whether the transaction on `conn` queued anything to send (and forgets it, for the connection's next one):
    only then is the dispatcher woken, so a workspace without webhooks pays nothing after its writes."""
    return bool(conn.info.pop(QUEUED, False))


def enqueue(conn: Connection, workspace_id: str, entity: Entity, action: str, events: list[dict[str, Any]]) -> None:
    """Queues the change events just recorded (rows of change_events) for the workspace's subscriptions.

    Taking a place in line locks each subscription's row until the transaction ends, so a later write's events
    line up behind these once this one commits: a line's order is commit order."""
    taken = conn.execute(_TAKE_PLACES, {"workspace": workspace_id}).all()
    if not taken:
        return
    now = datetime.now(UTC)
    named = [
        (event["id"], name) for event in events for name in names_of(entity, action, event["before"], event["after"])
    ]
    rows = [
        {"id": new_id(), "webhook_id": webhook_id, "sequence": place, "events": wanted, "created_at": now}
        for webhook_id, patterns, place in taken
        if (wanted := [[change_id, name] for change_id, name in named if wants(patterns, name)])
    ]
    if rows:
        conn.execute(insert(OUTBOX), rows)
        conn.info[QUEUED] = True


def queues() -> Any:
    """Subscriptions that take events: active ones, and those the dispatcher turned off after failing for days
    (they keep their events for when they are turned back on; an admin's pause does not)."""
    return or_(WEBHOOKS.c.active.is_(True), WEBHOOKS.c.disabled_reason.is_not(None))


# Every write runs this, in a workspace with webhooks or not: built once, it costs a tenth of building it per call.
_TAKE_PLACES = (
    update(WEBHOOKS)
    .where(WEBHOOKS.c.workspace_id == bindparam("workspace"), queues())
    .values(last_sequence=WEBHOOKS.c.last_sequence + 1)
    .returning(WEBHOOKS.c.id, WEBHOOKS.c.events, WEBHOOKS.c.last_sequence)
)


def take_place(conn: Connection, webhook_id: str) -> int:
    """The first sequence of a place at the end of the subscription's line (for a ping or resent deliveries,
    which add their index to it)."""
    taken = conn.execute(
        update(WEBHOOKS)
        .where(WEBHOOKS.c.id == webhook_id)
        .values(last_sequence=WEBHOOKS.c.last_sequence + 1)
        .returning(WEBHOOKS.c.last_sequence)
    ).scalar_one()
    conn.info[QUEUED] = True
    return int(taken) << PLACE_BITS


def expand(conn: Connection, workspace_id: str, webhook_id: str, now: datetime, limit: int = 100) -> None:
    """Turns the line's queued writes (up to `limit`, oldest first) into deliveries. The caller holds the line."""
    queued = (
        conn.execute(select(OUTBOX).where(OUTBOX.c.webhook_id == webhook_id).order_by(OUTBOX.c.sequence).limit(limit))
        .mappings()
        .all()
    )
    if not queued:
        return
    rows = [
        delivery(workspace_id, webhook_id, name, (entry["sequence"] << PLACE_BITS) + index, now, change_id=change_id)
        for entry in queued
        for index, (change_id, name) in enumerate(entry["events"])
    ]
    conn.execute(insert(DELIVERIES), rows)
    conn.execute(delete(OUTBOX).where(OUTBOX.c.id.in_([entry["id"] for entry in queued])))


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
        "retry_base": 0,
        "next_attempt_at": now,
        "created_at": now,
    }
