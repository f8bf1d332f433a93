"""custom fields: their definitions, and a `custom` object on every record that takes them

Revision ID: 0013
Revises: 0012
Create Date: 2026-11-26 13:45:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0013"
down_revision: str | None = "0012"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

CUSTOMIZABLE = ("contacts", "organizations", "deals", "leads", "services", "tasks", "activities")


def upgrade() -> None:
    op.create_table(
        "custom_fields",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("workspace_id", sa.String(length=36), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("revision", sa.Integer(), server_default="1", nullable=False),
        sa.Column("entity", sa.String(length=20), nullable=False),
        sa.Column("label", sa.String(length=100), nullable=False),
        sa.Column("key", sa.String(length=40), nullable=True),
        sa.Column("type", sa.String(length=20), nullable=False),
        sa.Column("options", sa.JSON(), nullable=False),
        sa.Column("description", sa.String(length=500), nullable=True),
        sa.Column("indexed", sa.Boolean(), nullable=False),
        sa.ForeignKeyConstraint(["workspace_id"], ["workspaces.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("workspace_id", "entity", "key", name="uq_custom_fields_key"),
    )
    for column in ("entity", "label", "created_at", "updated_at"):
        op.create_index(f"ix_custom_fields_{column}", "custom_fields", ["workspace_id", column, "id"])
    for table in CUSTOMIZABLE:
        op.add_column(table, sa.Column("custom", sa.JSON(), server_default="{}", nullable=False))


def downgrade() -> None:
    for table in CUSTOMIZABLE:
        # plain ALTER on SQLite too: a batch rebuild would turn the deals' column REFERENCES into table constraints
        op.execute(f"ALTER TABLE {table} DROP COLUMN custom")
    op.drop_table("custom_fields")
