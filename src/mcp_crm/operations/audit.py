"""The audit log: every committed change, read from the change events each write records in its own
transaction (the timeline and webhooks read the same events; nothing is recorded twice)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, insert, select

from mcp_crm.entities import Entity
from mcp_crm.ids import new_id
from mcp_crm.operations.actor import Actor
from mcp_crm.query import FilterNode, compile_filter
from mcp_crm.store.tables import CHANGE_EVENTS as EVENTS
from mcp_crm.store.tables import ChangeEvent

AUDIT = Entity(
    name="audit",
    singular="change",
    table=ChangeEvent,  # type: ignore[arg-type]
    description="Every committed change: when, who, through which tool and credential, each field before and after.",
    title_columns=("entity",),
)


def record_setting_change(
    conn: Connection,
    actor: Actor,
    kind: str,
    action: str,
    before: dict[str, Any] | None,
    after: dict[str, Any] | None,
    now: datetime,
) -> None:
    """A change of a workspace setting that is not an entity (a webhook, an email connection), in the audit log
    as an entity's change would be: the caller passes the fields it may show, never a secret."""
    record = after if after is not None else before
    assert record is not None
    conn.execute(
        insert(EVENTS).values(
            id=new_id(),
            workspace_id=actor.workspace_id,
            entity=kind,
            record_id=record["id"],
            action=action,
            user_id=actor.user_id,
            via=actor.via,
            tool=actor.tool,
            credential_id=actor.credential_id,
            before=_jsonable(before),
            after=_jsonable(after),
            occurred_at=now,
        )
    )


def _jsonable(record: dict[str, Any] | None) -> dict[str, Any] | None:
    if record is None:
        return None
    return {k: v.isoformat() if isinstance(v, datetime) else v for k, v in record.items()}


def list_changes(
    conn: Connection, actor: Actor, filter: FilterNode | None, limit: int, cursor: str | None
) -> tuple[list[dict[str, Any]], str | None]:
    """The workspace's changes, newest first; (page, next cursor)."""
    where = [EVENTS.c.workspace_id == actor.workspace_id]
    if filter is not None:
        where.append(compile_filter(AUDIT, filter, EVENTS))
    if cursor is not None:
        where.append(EVENTS.c.id < cursor)
    rows = conn.execute(select(EVENTS).where(*where).order_by(EVENTS.c.id.desc()).limit(limit + 1)).mappings().all()
    next_cursor = rows[limit - 1]["id"] if len(rows) > limit else None
    return [entry(row) for row in rows[:limit]], next_cursor


def entry(row: Any) -> dict[str, Any]:
    """One change as the audit shows it: `before` and `after` hold the fields that changed (whole records
    when one was created, deleted, restored or purged)."""
    before, after = row["before"], row["after"]
    if row["action"] == "updated":
        after = {name: (after or {}).get(name) for name in before or {}}
    return {
        "id": row["id"],
        "occurred_at": row["occurred_at"],
        "workspace_id": row["workspace_id"],
        "entity": row["entity"],
        "record_id": row["record_id"],
        "action": row["action"],
        "user_id": row["user_id"],
        "via": row["via"],
        "credential_id": row["credential_id"],
        "tool": row["tool"],
        "before": before,
        "after": after,
    }


def every_change(conn: Connection, batch: int = 1000) -> Iterator[dict[str, Any]]:
    """All changes of every workspace, oldest first, read in batches (for exports)."""
    last = ""
    while True:
        rows = (
            conn.execute(select(EVENTS).where(EVENTS.c.id > last).order_by(EVENTS.c.id).limit(batch)).mappings().all()
        )
        if not rows:
            return
        yield from (entry(row) for row in rows)
        last = rows[-1]["id"]
