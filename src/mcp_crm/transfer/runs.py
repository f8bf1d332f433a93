"""The `imports` table: how far each import of a file got, saved with each batch it writes."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Connection, insert, select, update

from mcp_crm.entities import Entity
from mcp_crm.ids import new_id
from mcp_crm.operations.actor import Actor
from mcp_crm.store.tables import IMPORTS
from mcp_crm.transfer.plan import Report


def start_run(
    conn: Connection, actor: Actor, entity: Entity, source: str, fingerprint: str, options: dict[str, Any]
) -> str:
    now = datetime.now(UTC)
    run_id = new_id()
    conn.execute(
        insert(IMPORTS).values(
            id=run_id,
            workspace_id=actor.workspace_id,
            entity=entity.name,
            source=source,
            fingerprint=fingerprint,
            options=options,
            rows_done=0,
            status="running",
            report=Report().as_dict(),
            user_id=actor.user_id,
            created_at=now,
            updated_at=now,
        )
    )
    return run_id


def unfinished_run(conn: Connection, actor: Actor, fingerprint: str) -> dict[str, Any] | None:
    query = select(IMPORTS).where(
        IMPORTS.c.workspace_id == actor.workspace_id,
        IMPORTS.c.fingerprint == fingerprint,
        IMPORTS.c.status == "running",
    )
    row = conn.execute(query.order_by(IMPORTS.c.created_at.desc())).mappings().first()
    return dict(row) if row else None


def record_progress(conn: Connection, run_id: str, rows_done: int, report: Report, status: str = "running") -> None:
    """Saved in the transaction of the batch it counts, so a resumed import starts after the last one that
    committed. `status`: running, done, or stopped (a restart gave it up)."""
    conn.execute(
        update(IMPORTS)
        .where(IMPORTS.c.id == run_id)
        .values(
            rows_done=rows_done,
            report=report.as_dict(),
            status=status,
            updated_at=datetime.now(UTC),
        )
    )
