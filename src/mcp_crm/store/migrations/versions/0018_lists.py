"""marketing lists and their members; contacts' email opt-out

Revision ID: 0018
Revises: 0017
Create Date: 2026-11-27 04:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0018"
down_revision: str | None = "0017"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

MEMBERS = (("list_contacts", "contact_id", "contacts"), ("list_leads", "lead_id", "leads"))


def upgrade() -> None:
    op.create_table(
        "lists",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("workspace_id", sa.String(length=36), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("revision", sa.Integer(), server_default="1", nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("description", sa.Text(), nullable=True),
        sa.Column("kind", sa.String(length=10), nullable=False),
        sa.Column("entity", sa.String(length=10), nullable=True),
        sa.Column("filter", sa.JSON(), nullable=True),
        sa.ForeignKeyConstraint(["workspace_id"], ["workspaces.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("workspace_id", "name", name="uq_lists_name"),
    )
    for column in ("created_at", "kind", "name", "updated_at"):
        op.create_index(f"ix_lists_{column}", "lists", ["workspace_id", column, "id"], unique=False)
    for table, column, target in MEMBERS:
        op.create_table(
            table,
            sa.Column("list_id", sa.String(length=36), nullable=False),
            sa.Column(column, sa.String(length=36), nullable=False),
            sa.Column("added_at", sa.DateTime(timezone=True), nullable=False),
            sa.ForeignKeyConstraint(["list_id"], ["lists.id"], ondelete="CASCADE"),
            sa.ForeignKeyConstraint([column], [f"{target}.id"], ondelete="CASCADE"),
            sa.PrimaryKeyConstraint("list_id", column),
        )
        op.create_index(f"ix_{table}_{column.removesuffix('_id')}", table, [column, "list_id"], unique=False)
    op.add_column("contacts", sa.Column("email_opt_out", sa.Boolean(), server_default=sa.false(), nullable=False))
    op.add_column("contacts", sa.Column("email_opt_out_reason", sa.String(length=500), nullable=True))
    op.add_column("contacts", sa.Column("email_opted_out_at", sa.DateTime(timezone=True), nullable=True))


def downgrade() -> None:
    # native ALTERs, never batch mode (see docs/architecture.md)
    for name in ("email_opted_out_at", "email_opt_out_reason", "email_opt_out"):
        op.execute(f"ALTER TABLE contacts DROP COLUMN {name}")
    for table, _, _ in MEMBERS:
        op.drop_table(table)
    op.drop_table("lists")
