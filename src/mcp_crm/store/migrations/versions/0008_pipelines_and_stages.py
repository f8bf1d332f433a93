"""pipelines and stages

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-26 10:23:25.036712
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "pipelines",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("workspace_id", sa.String(length=36), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("revision", sa.Integer(), server_default="1", nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("is_default", sa.Boolean(), nullable=False),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.ForeignKeyConstraint(["workspace_id"], ["workspaces.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_pipelines_active", "pipelines", ["workspace_id", "active", "id"], unique=False)
    op.create_index("ix_pipelines_created_at", "pipelines", ["workspace_id", "created_at", "id"], unique=False)
    op.create_index("ix_pipelines_is_default", "pipelines", ["workspace_id", "is_default", "id"], unique=False)
    op.create_index("ix_pipelines_name", "pipelines", ["workspace_id", "name", "id"], unique=False)
    op.create_index("ix_pipelines_updated_at", "pipelines", ["workspace_id", "updated_at", "id"], unique=False)
    op.create_table(
        "stages",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("workspace_id", sa.String(length=36), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("revision", sa.Integer(), server_default="1", nullable=False),
        sa.Column("pipeline_id", sa.String(length=36), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=10), nullable=False),
        sa.Column("probability", sa.Integer(), nullable=True),
        sa.Column("rotten_after_days", sa.Integer(), nullable=True),
        sa.ForeignKeyConstraint(["pipeline_id"], ["pipelines.id"], ondelete="RESTRICT"),
        sa.ForeignKeyConstraint(["workspace_id"], ["workspaces.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_stages_created_at", "stages", ["workspace_id", "created_at", "id"], unique=False)
    op.create_index("ix_stages_kind", "stages", ["workspace_id", "kind", "id"], unique=False)
    op.create_index("ix_stages_name", "stages", ["workspace_id", "name", "id"], unique=False)
    op.create_index("ix_stages_pipeline_id", "stages", ["workspace_id", "pipeline_id", "id"], unique=False)
    op.create_index("ix_stages_position", "stages", ["workspace_id", "position", "id"], unique=False)
    op.create_index("ix_stages_updated_at", "stages", ["workspace_id", "updated_at", "id"], unique=False)
    for column, target in (("pipeline_id", "pipelines"), ("stage_id", "stages")):
        if op.get_bind().dialect.name == "sqlite":  # SQLite adds a foreign key only with its column
            op.execute(f"ALTER TABLE deals ADD COLUMN {column} VARCHAR(36) REFERENCES {target} (id) ON DELETE RESTRICT")
        else:
            op.add_column("deals", sa.Column(column, sa.String(length=36), nullable=True))
            op.create_foreign_key(f"deals_{column}_fkey", "deals", target, [column], ["id"], ondelete="RESTRICT")
    op.add_column("deals", sa.Column("stage_entered_at", sa.DateTime(timezone=True), nullable=True))
    op.create_index("ix_deals_pipeline_id", "deals", ["workspace_id", "pipeline_id", "id"], unique=False)
    op.create_index("ix_deals_stage_entered_at", "deals", ["workspace_id", "stage_entered_at", "id"], unique=False)
    op.create_index("ix_deals_stage_id", "deals", ["workspace_id", "stage_id", "id"], unique=False)


def downgrade() -> None:
    op.drop_index("ix_deals_stage_id", table_name="deals")
    op.drop_index("ix_deals_stage_entered_at", table_name="deals")
    op.drop_index("ix_deals_pipeline_id", table_name="deals")
    op.drop_column("deals", "stage_entered_at")
    for column in ("stage_id", "pipeline_id"):
        if op.get_bind().dialect.name != "sqlite":  # SQLite drops a column's own foreign key with it
            op.drop_constraint(f"deals_{column}_fkey", "deals", type_="foreignkey")
        op.drop_column("deals", column)
    op.drop_index("ix_stages_updated_at", table_name="stages")
    op.drop_index("ix_stages_position", table_name="stages")
    op.drop_index("ix_stages_pipeline_id", table_name="stages")
    op.drop_index("ix_stages_name", table_name="stages")
    op.drop_index("ix_stages_kind", table_name="stages")
    op.drop_index("ix_stages_created_at", table_name="stages")
    op.drop_table("stages")
    op.drop_index("ix_pipelines_updated_at", table_name="pipelines")
    op.drop_index("ix_pipelines_name", table_name="pipelines")
    op.drop_index("ix_pipelines_is_default", table_name="pipelines")
    op.drop_index("ix_pipelines_created_at", table_name="pipelines")
    op.drop_index("ix_pipelines_active", table_name="pipelines")
    op.drop_table("pipelines")
