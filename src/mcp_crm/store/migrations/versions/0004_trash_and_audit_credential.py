"""trash and audit credential

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-26 09:33:55.676991
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "trash",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("workspace_id", sa.String(length=36), nullable=False),
        sa.Column("entity", sa.String(length=40), nullable=False),
        sa.Column("record_id", sa.String(length=36), nullable=False),
        sa.Column("name", sa.String(length=500), nullable=False),
        sa.Column("deleted_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("deleted_by", sa.String(length=36), nullable=True),
        sa.Column("row", sa.JSON(), nullable=False),
        sa.Column("links", sa.JSON(), nullable=False),
        sa.Column("referenced_by", sa.JSON(), nullable=False),
        sa.ForeignKeyConstraint(["workspace_id"], ["workspaces.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_trash_deleted_at", "trash", ["workspace_id", "deleted_at"], unique=False)
    op.create_index("ix_trash_record", "trash", ["workspace_id", "entity", "record_id"], unique=True)
    op.add_column("change_events", sa.Column("credential_id", sa.String(length=36), nullable=True))
    op.add_column("workspaces", sa.Column("trash_retention_days", sa.Integer(), server_default="30", nullable=False))


def downgrade() -> None:
    op.drop_column("workspaces", "trash_retention_days")
    op.drop_column("change_events", "credential_id")
    op.drop_index("ix_trash_record", table_name="trash")
    op.drop_index("ix_trash_deleted_at", table_name="trash")
    op.drop_table("trash")
