"""a won lead stage, Converted, for workspaces that have none, so that converting a lead moves it there

New workspaces get it with the other default lead stages; here every workspace that has lead stages but no won one
gets it after its last stage (one already named Converted, of another kind, is left as it is).

Revision ID: 0020
Revises: 0019
Create Date: 2026-11-28 04:00:00
"""

from collections.abc import Sequence
from datetime import UTC, datetime

import sqlalchemy as sa
from alembic import op

from mcp_crm.ids import new_id

revision: str = "0020"
down_revision: str | None = "0019"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# as in mcp_crm.entities.lead_stages.DEFAULT_LEAD_STAGES when this was written: (name, kind, colour, probability)
CONVERTED = ("Converted", "won", "teal", 100)
MAX_POSITION = 1000  # a lead stage's position is at most this


def _stages() -> sa.TableClause:
    return sa.table(
        "lead_stages",
        *(sa.column(c, sa.String) for c in ("id", "workspace_id", "name", "kind", "color")),
        *(sa.column(c, sa.Integer) for c in ("position", "probability", "revision")),
        *(sa.column(c, sa.DateTime(timezone=True)) for c in ("created_at", "updated_at")),
    )


def upgrade() -> None:
    conn = op.get_bind()
    stages = _stages()
    name, kind, color, probability = CONVERTED
    has_won = sa.func.max(sa.case((stages.c.kind == "won", 1), else_=0))
    has_name = sa.func.max(sa.case((stages.c.name == name, 1), else_=0))
    needing = conn.execute(
        sa.select(stages.c.workspace_id, sa.func.max(stages.c.position))
        .group_by(stages.c.workspace_id)
        .having(has_won == 0, has_name == 0)
    ).all()
    now = datetime.now(UTC)
    rows = [
        {
            "id": new_id(),
            "workspace_id": workspace_id,
            "name": name,
            "kind": kind,
            "color": color,
            "position": min(last + 1, MAX_POSITION),
            "probability": probability,
            "revision": 1,
            "created_at": now,
            "updated_at": now,
        }
        for workspace_id, last in needing
    ]
    if rows:
        conn.execute(sa.insert(stages), rows)


def downgrade() -> None:
    """Removes the Converted stages this migration could have added: won, and holding no lead."""
    stages = _stages()
    leads = sa.table("leads", sa.column("stage_id", sa.String))
    name, kind, _, _ = CONVERTED
    op.get_bind().execute(
        sa.delete(stages).where(
            stages.c.name == name,
            stages.c.kind == kind,
            ~sa.exists().where(leads.c.stage_id == stages.c.id),
        )
    )
