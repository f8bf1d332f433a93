"""Webhook subscriptions and their delivery log, inside the caller's transaction.

A subscription's secret is returned once, by the call that makes it (create, rotate_secret); nothing else
returns or logs it. Changes to subscriptions are recorded in the audit log (entity "webhooks") without it."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import Connection, delete, func, insert, select, update

from mcp_crm.errors import CrmError, NotFound
from mcp_crm.ids import new_id
from mcp_crm.operations.actor import Actor
from mcp_crm.operations.audit import record_setting_change
from mcp_crm.store.tables import ATTEMPTS, DELIVERIES, OUTBOX, WEBHOOKS
from mcp_crm.webhooks.events import check_patterns
from mcp_crm.webhooks.outbox import take_place
from mcp_crm.webhooks.signing import new_secret

PREVIOUS_SECRET_LASTS = timedelta(hours=24)  # after a rotation, the old secret signs too for this long
PUBLIC = ("id", "url", "events", "description", "active", "created_by", "created_at", "updated_at")
PUBLIC += ("failing_since", "disabled_reason")
STATUSES = ("pending", "sending", "succeeded", "failed")
MAX_WEBHOOKS = 100  # per workspace
ATTEMPTS_SHOWN = 10  # per delivery in a list


def public(row: Any) -> dict[str, Any]:
    return {name: row[name] for name in PUBLIC}


def _row(conn: Connection, actor: Actor, webhook_id: str, lock: bool = False) -> Any:
    query = select(WEBHOOKS).where(WEBHOOKS.c.workspace_id == actor.workspace_id, WEBHOOKS.c.id == webhook_id)
    row = conn.execute(query.with_for_update() if lock else query).mappings().first()
    if row is None:
        raise NotFound(f"No webhook {webhook_id} in this workspace; webhooks_list shows the workspace's webhooks.")
    return row


def _audit(conn: Connection, actor: Actor, action: str, before: Any, after: Any, now: datetime) -> None:
    record_setting_change(conn, actor, "webhooks", action, before, after, now)


def create_webhook(
    conn: Connection, actor: Actor, url: str, events: list[str], description: str | None
) -> dict[str, Any]:
    """The new subscription with its secret (shown this once). `url` is checked by the caller."""
    count = conn.execute(select(func.count()).where(WEBHOOKS.c.workspace_id == actor.workspace_id)).scalar_one()
    if count >= MAX_WEBHOOKS:
        raise CrmError(f"A workspace has at most {MAX_WEBHOOKS} webhooks; delete one you no longer use first.")
    now = datetime.now(UTC)
    row = {
        "id": new_id(),
        "workspace_id": actor.workspace_id,
        "url": url,
        "events": check_patterns(events),
        "description": description,
        "active": True,
        "secret": new_secret(),
        "created_by": actor.user_id,
        "created_at": now,
        "updated_at": now,
        "failing_since": None,
        "disabled_reason": None,
        "last_sequence": 0,
    }
    conn.execute(insert(WEBHOOKS).values(row))
    _audit(conn, actor, "created", None, public(row), now)
    return public(row) | {"secret": row["secret"]}


def list_webhooks(conn: Connection, actor: Actor) -> list[dict[str, Any]]:
    rows = conn.execute(
        select(WEBHOOKS).where(WEBHOOKS.c.workspace_id == actor.workspace_id).order_by(WEBHOOKS.c.id)
    ).mappings()
    return [public(row) for row in rows]


def get_webhook(conn: Connection, actor: Actor, webhook_id: str) -> dict[str, Any]:
    """The subscription with its deliveries counted by status and its latest delivery."""
    row = _row(conn, actor, webhook_id)
    counts = dict(
        conn.execute(
            select(DELIVERIES.c.status, func.count())
            .where(DELIVERIES.c.webhook_id == webhook_id)
            .group_by(DELIVERIES.c.status)
        ).all()
    )
    latest = (
        conn.execute(
            select(DELIVERIES).where(DELIVERIES.c.webhook_id == webhook_id).order_by(DELIVERIES.c.id.desc()).limit(1)
        )
        .mappings()
        .first()
    )
    queued = conn.execute(select(OUTBOX.c.events).where(OUTBOX.c.webhook_id == webhook_id)).scalars()
    return public(row) | {
        "deliveries": {status: counts.get(status, 0) for status in STATUSES} | {"queued": sum(map(len, queued))},
        "latest_delivery": _delivery(latest, []) if latest else None,
    }


def update_webhook(conn: Connection, actor: Actor, webhook_id: str, changes: dict[str, Any]) -> dict[str, Any]:
    """`changes`: any of url (checked by the caller), events, description, active. Turning a subscription back
    on clears the reason it was turned off and sends what waited at once."""
    before = _row(conn, actor, webhook_id, lock=True)
    values = dict(changes)
    if "events" in values:
        values["events"] = check_patterns(values["events"])
    if "active" in values and (values["active"] != before["active"] or before["disabled_reason"]):
        # turned on: a fresh start; paused (also one turned off for failing): events meanwhile are not kept
        values |= {"failing_since": None, "disabled_reason": None}
    values = {k: v for k, v in values.items() if v != before[k]}
    if not values:
        return public(before)
    now = datetime.now(UTC)
    if values.get("active"):  # what waited goes now, not at the retry time it had when the line stopped
        conn.execute(
            update(DELIVERIES)
            .where(DELIVERIES.c.webhook_id == webhook_id, DELIVERIES.c.status == "pending")
            .values(next_attempt_at=now)
        )
    conn.execute(update(WEBHOOKS).where(WEBHOOKS.c.id == webhook_id).values(values | {"updated_at": now}))
    after = public(before) | values | {"updated_at": now}
    _audit(conn, actor, "updated", {k: before[k] for k in values if k in PUBLIC}, after, now)
    return after


def delete_webhook(conn: Connection, actor: Actor, webhook_id: str) -> dict[str, Any]:
    """Deletes the subscription and its delivery log; nothing more is sent to it."""
    row = _row(conn, actor, webhook_id, lock=True)
    conn.execute(delete(WEBHOOKS).where(WEBHOOKS.c.id == webhook_id))
    _audit(conn, actor, "deleted", public(row), None, datetime.now(UTC))
    return public(row)


def rotate_secret(conn: Connection, actor: Actor, webhook_id: str) -> dict[str, Any]:
    """A new secret (shown this once); the old one keeps signing beside it for PREVIOUS_SECRET_LASTS."""
    row = _row(conn, actor, webhook_id, lock=True)
    now = datetime.now(UTC)
    secret = new_secret()
    conn.execute(
        update(WEBHOOKS)
        .where(WEBHOOKS.c.id == webhook_id)
        .values(
            secret=secret,
            previous_secret=row["secret"],
            previous_secret_expires_at=now + PREVIOUS_SECRET_LASTS,
            updated_at=now,
        )
    )
    _audit(conn, actor, "updated", {"secret": "(rotated)"}, public(row) | {"updated_at": now}, now)
    return public(row) | {
        "updated_at": now,
        "secret": secret,
        "previous_secret_expires_at": now + PREVIOUS_SECRET_LASTS,
    }


def list_deliveries(
    conn: Connection, actor: Actor, webhook_id: str, status: str | None, limit: int, cursor: str | None
) -> tuple[list[dict[str, Any]], str | None]:
    """A subscription's deliveries, newest first, each with its latest attempts; (page, next cursor)."""
    _row(conn, actor, webhook_id)
    where = [DELIVERIES.c.webhook_id == webhook_id]
    if status is not None:
        where.append(DELIVERIES.c.status == status)
    if cursor is not None:
        where.append(DELIVERIES.c.id < cursor)
    rows = (
        conn.execute(select(DELIVERIES).where(*where).order_by(DELIVERIES.c.id.desc()).limit(limit + 1))
        .mappings()
        .all()
    )
    page = rows[:limit]
    attempts: dict[str, list[dict[str, Any]]] = {}
    if page:
        for attempt in conn.execute(
            select(ATTEMPTS)
            .where(ATTEMPTS.c.delivery_id.in_([row["id"] for row in page]))
            .order_by(ATTEMPTS.c.delivery_id, ATTEMPTS.c.attempt)
        ).mappings():
            attempts.setdefault(attempt["delivery_id"], []).append(_attempt(attempt))
    next_cursor = page[-1]["id"] if len(rows) > limit else None
    return [_delivery(row, attempts.get(row["id"], [])[-ATTEMPTS_SHOWN:]) for row in page], next_cursor


def _delivery(row: Any, attempts: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "id": row["id"],
        "webhook_id": row["webhook_id"],
        "event": row["event"],
        "change_id": row["change_id"],
        "status": row["status"],
        "attempts": row["attempts"],
        "created_at": row["created_at"],
        "last_attempt_at": row["last_attempt_at"],
        "last_status_code": row["last_status_code"],
        "last_latency_ms": row["last_latency_ms"],
        "last_error": row["last_error"],
        "next_attempt_at": row["next_attempt_at"] if row["status"] == "pending" else None,
        "delivered_at": row["delivered_at"],
        "attempt_log": attempts,
    }


def _attempt(row: Any) -> dict[str, Any]:
    return {k: row[k] for k in ("attempt", "started_at", "status_code", "latency_ms", "error", "response")}


def resend_deliveries(conn: Connection, actor: Actor, ids: list[str]) -> list[dict[str, Any]]:
    """Queues deliveries again, as they were (same id, same body), behind what their subscription has queued."""
    rows = {
        row["id"]: row
        for row in conn.execute(
            select(DELIVERIES).where(DELIVERIES.c.workspace_id == actor.workspace_id, DELIVERIES.c.id.in_(ids))
        ).mappings()
    }
    if missing := [i for i in ids if i not in rows]:
        raise NotFound(f"No deliveries {', '.join(missing)} in this workspace; webhook_deliveries_list shows them.")
    if sending := [i for i in ids if rows[i]["status"] == "sending"]:
        raise CrmError(f"Deliveries {', '.join(sending)} are being sent right now; nothing was changed.")
    now = datetime.now(UTC)
    for webhook_id in sorted({rows[i]["webhook_id"] for i in ids}):
        mine = [i for i in ids if rows[i]["webhook_id"] == webhook_id]
        first = take_place(conn, webhook_id)
        for n, delivery_id in enumerate(mine):
            conn.execute(
                update(DELIVERIES)
                .where(DELIVERIES.c.id == delivery_id)
                .values(
                    status="pending",
                    sequence=first + n,
                    next_attempt_at=now,
                    locked_until=None,
                    retry_base=DELIVERIES.c.attempts,
                )
            )
    return [_delivery(row, []) | {"status": "pending", "next_attempt_at": now} for row in (rows[i] for i in ids)]
