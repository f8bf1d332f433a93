"""lead stages: a workspace's stage list for leads, and each lead's stage

Every workspace gets the default lead stages, and its leads go to New (entered when the lead was created).

Revision ID: 0017
Revises: 0016
Create Date: 2026-11-27 04:00:00
"""

from collections.abc import Sequence
from datetime import UTC, datetime

import sqlalchemy as sa
from alembic import op

from mcp_crm.ids import new_id

revision: str = "0017"
down_revision: str | None = "0016"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# as in mcp_crm.entities.lead_stages.DEFAULT_LEAD_STAGES when this was written: (name, kind, colour, probability)
DEFAULTS = (
    ("New", "open", "blue", 10),
    ("Contacted", "open", "yellow", 20),
    ("Qualified", "open", "green", 40),
    ("Unqualified", "lost", "gray", 0),
)
FIRST = "New"


def upgrade() -> None:
    _create_lead_stages()
    if op.get_bind().dialect.name == "sqlite":  # SQLite adds a foreign key only with its column
        op.execute("ALTER TABLE leads ADD COLUMN stage_id VARCHAR(36) REFERENCES lead_stages (id) ON DELETE RESTRICT")
    else:
        op.add_column("leads", sa.Column("stage_id", sa.String(length=36), nullable=True))
        op.create_foreign_key("leads_stage_id_fkey", "leads", "lead_stages", ["stage_id"], ["id"], ondelete="RESTRICT")
    op.add_column("leads", sa.Column("stage_entered_at", sa.DateTime(timezone=True), nullable=True))
    op.create_index("ix_leads_stage_entered_at", "leads", ["workspace_id", "stage_entered_at", "id"], unique=False)
    op.create_index("ix_leads_stage_id", "leads", ["workspace_id", "stage_id", "id"], unique=False)
    _seed_and_place_leads()


def _create_lead_stages() -> None:
    op.create_table(
        "lead_stages",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("workspace_id", sa.String(length=36), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("revision", sa.Integer(), server_default="1", nullable=False),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=10), nullable=False),
        sa.Column("color", sa.String(length=10), nullable=False),
        sa.Column("probability", sa.Integer(), nullable=True),
        sa.ForeignKeyConstraint(["workspace_id"], ["workspaces.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("workspace_id", "name", name="uq_lead_stages_name"),
    )
    for column in ("created_at", "kind", "name", "position", "updated_at"):
        op.create_index(f"ix_lead_stages_{column}", "lead_stages", ["workspace_id", column, "id"], unique=False)


def _seed_and_place_leads() -> None:
    """The default stages in every workspace, and every lead in the first one, in one statement per table."""
    conn = op.get_bind()
    workspaces = sa.table("workspaces", sa.column("id", sa.String))
    stages = sa.table(
        "lead_stages",
        *(sa.column(c, sa.String) for c in ("id", "workspace_id", "name", "kind", "color")),
        *(sa.column(c, sa.Integer) for c in ("position", "probability", "revision")),
        *(sa.column(c, sa.DateTime(timezone=True)) for c in ("created_at", "updated_at")),
    )
    leads = sa.table(
        "leads",
        *(sa.column(c, sa.String) for c in ("workspace_id", "stage_id")),
        *(sa.column(c, sa.DateTime(timezone=True)) for c in ("created_at", "stage_entered_at")),
    )
    now = datetime.now(UTC)
    rows = [
        {
            "id": new_id(),
            "workspace_id": workspace_id,
            "name": name,
            "kind": kind,
            "color": color,
            "position": position,
            "probability": probability,
            "revision": 1,
            "created_at": now,
            "updated_at": now,
        }
        for (workspace_id,) in conn.execute(sa.select(workspaces.c.id)).all()
        for position, (name, kind, color, probability) in enumerate(DEFAULTS, start=1)
    ]
    if rows:
        conn.execute(sa.insert(stages), rows)
    first = (
        sa.select(stages.c.id)
        .where(stages.c.workspace_id == leads.c.workspace_id, stages.c.name == FIRST)
        .scalar_subquery()
    )
    conn.execute(sa.update(leads).values(stage_id=first, stage_entered_at=leads.c.created_at))


def downgrade() -> None:
    op.drop_index("ix_leads_stage_id", table_name="leads")
    op.drop_index("ix_leads_stage_entered_at", table_name="leads")
    op.drop_column("leads", "stage_entered_at")
    if op.get_bind().dialect.name != "sqlite":  # SQLite drops a column's own foreign key with it
        op.drop_constraint("leads_stage_id_fkey", "leads", type_="foreignkey")
    op.drop_column("leads", "stage_id")
    for column in ("updated_at", "position", "name", "kind", "created_at"):
        op.drop_index(f"ix_lead_stages_{column}", table_name="lead_stages")
    op.drop_table("lead_stages")
