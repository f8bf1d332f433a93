"""leads

Revision ID: 0009
Revises: 0008
Create Date: 2026-11-26 10:48:38.529274
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "leads",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("workspace_id", sa.String(length=36), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("revision", sa.Integer(), server_default="1", nullable=False),
        sa.Column("title", sa.String(length=200), nullable=False),
        sa.Column("contact_id", sa.String(length=36), nullable=True),
        sa.Column("organization_id", sa.String(length=36), nullable=True),
        sa.Column("value", sa.BigInteger(), nullable=True),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("source", sa.String(length=100), nullable=True),
        sa.Column("expected_close_date", sa.Date(), nullable=True),
        sa.Column("labels", sa.JSON(), nullable=False),
        sa.Column("notes", sa.Text(), nullable=True),
        sa.Column("archived", sa.Boolean(), nullable=False),
        sa.Column("owner_id", sa.String(length=36), nullable=True),
        sa.Column("converted_deal_id", sa.String(length=36), nullable=True),
        sa.Column("converted_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(["contact_id"], ["contacts.id"], ondelete="SET NULL"),
        sa.ForeignKeyConstraint(["organization_id"], ["organizations.id"], ondelete="SET NULL"),
        sa.ForeignKeyConstraint(["owner_id"], ["users.id"], ondelete="SET NULL"),
        sa.ForeignKeyConstraint(["workspace_id"], ["workspaces.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_leads_archived", "leads", ["workspace_id", "archived", "id"], unique=False)
    op.create_index("ix_leads_contact_id", "leads", ["workspace_id", "contact_id", "id"], unique=False)
    op.create_index("ix_leads_converted_at", "leads", ["workspace_id", "converted_at", "id"], unique=False)
    op.create_index("ix_leads_created_at", "leads", ["workspace_id", "created_at", "id"], unique=False)
    op.create_index(
        "ix_leads_expected_close_date", "leads", ["workspace_id", "expected_close_date", "id"], unique=False
    )
    op.create_index("ix_leads_organization_id", "leads", ["workspace_id", "organization_id", "id"], unique=False)
    op.create_index("ix_leads_owner_id", "leads", ["workspace_id", "owner_id", "id"], unique=False)
    op.create_index("ix_leads_source", "leads", ["workspace_id", "source", "id"], unique=False)
    op.create_index("ix_leads_title", "leads", ["workspace_id", "title", "id"], unique=False)
    op.create_index("ix_leads_updated_at", "leads", ["workspace_id", "updated_at", "id"], unique=False)
    op.create_index("ix_leads_value", "leads", ["workspace_id", "value", "id"], unique=False)


def downgrade() -> None:
    op.drop_index("ix_leads_value", table_name="leads")
    op.drop_index("ix_leads_updated_at", table_name="leads")
    op.drop_index("ix_leads_title", table_name="leads")
    op.drop_index("ix_leads_source", table_name="leads")
    op.drop_index("ix_leads_owner_id", table_name="leads")
    op.drop_index("ix_leads_organization_id", table_name="leads")
    op.drop_index("ix_leads_expected_close_date", table_name="leads")
    op.drop_index("ix_leads_created_at", table_name="leads")
    op.drop_index("ix_leads_converted_at", table_name="leads")
    op.drop_index("ix_leads_contact_id", table_name="leads")
    op.drop_index("ix_leads_archived", table_name="leads")
    op.drop_table("leads")
