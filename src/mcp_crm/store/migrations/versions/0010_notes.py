"""notes

Revision ID: 0010
Revises: 0009
Create Date: 2026-11-26 10:55:40.699310
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0010"
down_revision: str | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "notes",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("workspace_id", sa.String(length=36), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("revision", sa.Integer(), server_default="1", nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("record_type", sa.String(length=20), nullable=False),
        sa.Column("record_id", sa.String(length=36), nullable=False),
        sa.Column("pinned", sa.Boolean(), nullable=False),
        sa.Column("author_id", sa.String(length=36), nullable=True),
        sa.ForeignKeyConstraint(["author_id"], ["users.id"], ondelete="SET NULL"),
        sa.ForeignKeyConstraint(["workspace_id"], ["workspaces.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_notes_author_id", "notes", ["workspace_id", "author_id", "id"], unique=False)
    op.create_index("ix_notes_created_at", "notes", ["workspace_id", "created_at", "id"], unique=False)
    op.create_index("ix_notes_pinned", "notes", ["workspace_id", "pinned", "id"], unique=False)
    op.create_index("ix_notes_record_id", "notes", ["workspace_id", "record_id", "id"], unique=False)
    op.create_index("ix_notes_record_type", "notes", ["workspace_id", "record_type", "id"], unique=False)
    op.create_index("ix_notes_updated_at", "notes", ["workspace_id", "updated_at", "id"], unique=False)


def downgrade() -> None:
    op.drop_index("ix_notes_updated_at", table_name="notes")
    op.drop_index("ix_notes_record_type", table_name="notes")
    op.drop_index("ix_notes_record_id", table_name="notes")
    op.drop_index("ix_notes_pinned", table_name="notes")
    op.drop_index("ix_notes_created_at", table_name="notes")
    op.drop_index("ix_notes_author_id", table_name="notes")
    op.drop_table("notes")
