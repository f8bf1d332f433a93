"""activities

Revision ID: 0011
Revises: 0010
Create Date: 2026-11-26 11:02:11.092940
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0011"
down_revision: str | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "activity_types",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("workspace_id", sa.String(length=36), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("revision", sa.Integer(), server_default="1", nullable=False),
        sa.Column("key", sa.String(length=40), nullable=False),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.ForeignKeyConstraint(["workspace_id"], ["workspaces.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("workspace_id", "key", name="uq_activity_types_key"),
    )
    op.create_index("ix_activity_types_active", "activity_types", ["workspace_id", "active", "id"], unique=False)
    op.create_index(
        "ix_activity_types_created_at", "activity_types", ["workspace_id", "created_at", "id"], unique=False
    )
    op.create_index("ix_activity_types_key", "activity_types", ["workspace_id", "key", "id"], unique=False)
    op.create_index("ix_activity_types_name", "activity_types", ["workspace_id", "name", "id"], unique=False)
    op.create_index(
        "ix_activity_types_updated_at", "activity_types", ["workspace_id", "updated_at", "id"], unique=False
    )
    op.create_table(
        "activities",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("workspace_id", sa.String(length=36), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("revision", sa.Integer(), server_default="1", nullable=False),
        sa.Column("type", sa.String(length=40), nullable=False),
        sa.Column("subject", sa.String(length=200), nullable=False),
        sa.Column("due_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("duration_minutes", sa.Integer(), nullable=True),
        sa.Column("done", sa.Boolean(), nullable=False),
        sa.Column("done_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("location", sa.String(length=300), nullable=True),
        sa.Column("note", sa.Text(), nullable=True),
        sa.Column("owner_id", sa.String(length=36), nullable=True),
        sa.Column("deal_id", sa.String(length=36), nullable=True),
        sa.Column("lead_id", sa.String(length=36), nullable=True),
        sa.Column("contact_id", sa.String(length=36), nullable=True),
        sa.Column("organization_id", sa.String(length=36), nullable=True),
        sa.ForeignKeyConstraint(["contact_id"], ["contacts.id"], ondelete="SET NULL"),
        sa.ForeignKeyConstraint(["deal_id"], ["deals.id"], ondelete="SET NULL"),
        sa.ForeignKeyConstraint(["lead_id"], ["leads.id"], ondelete="SET NULL"),
        sa.ForeignKeyConstraint(["organization_id"], ["organizations.id"], ondelete="SET NULL"),
        sa.ForeignKeyConstraint(["owner_id"], ["users.id"], ondelete="SET NULL"),
        sa.ForeignKeyConstraint(["workspace_id"], ["workspaces.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_activities_contact_id", "activities", ["workspace_id", "contact_id", "id"], unique=False)
    op.create_index("ix_activities_created_at", "activities", ["workspace_id", "created_at", "id"], unique=False)
    op.create_index("ix_activities_deal_id", "activities", ["workspace_id", "deal_id", "id"], unique=False)
    op.create_index("ix_activities_done", "activities", ["workspace_id", "done", "id"], unique=False)
    op.create_index("ix_activities_done_at", "activities", ["workspace_id", "done_at", "id"], unique=False)
    op.create_index("ix_activities_due_at", "activities", ["workspace_id", "due_at", "id"], unique=False)
    op.create_index("ix_activities_lead_id", "activities", ["workspace_id", "lead_id", "id"], unique=False)
    op.create_index(
        "ix_activities_organization_id", "activities", ["workspace_id", "organization_id", "id"], unique=False
    )
    op.create_index("ix_activities_owner_id", "activities", ["workspace_id", "owner_id", "id"], unique=False)
    op.create_index("ix_activities_subject", "activities", ["workspace_id", "subject", "id"], unique=False)
    op.create_index("ix_activities_type", "activities", ["workspace_id", "type", "id"], unique=False)
    op.create_index("ix_activities_updated_at", "activities", ["workspace_id", "updated_at", "id"], unique=False)
    op.create_table(
        "activity_participants",
        sa.Column("activity_id", sa.String(length=36), nullable=False),
        sa.Column("contact_id", sa.String(length=36), nullable=False),
        sa.ForeignKeyConstraint(["activity_id"], ["activities.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["contact_id"], ["contacts.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("activity_id", "contact_id"),
    )
    op.create_index(
        "ix_activity_participants_contact", "activity_participants", ["contact_id", "activity_id"], unique=False
    )


def downgrade() -> None:
    op.drop_index("ix_activity_participants_contact", table_name="activity_participants")
    op.drop_table("activity_participants")
    op.drop_index("ix_activities_updated_at", table_name="activities")
    op.drop_index("ix_activities_type", table_name="activities")
    op.drop_index("ix_activities_subject", table_name="activities")
    op.drop_index("ix_activities_owner_id", table_name="activities")
    op.drop_index("ix_activities_organization_id", table_name="activities")
    op.drop_index("ix_activities_lead_id", table_name="activities")
    op.drop_index("ix_activities_due_at", table_name="activities")
    op.drop_index("ix_activities_done_at", table_name="activities")
    op.drop_index("ix_activities_done", table_name="activities")
    op.drop_index("ix_activities_deal_id", table_name="activities")
    op.drop_index("ix_activities_created_at", table_name="activities")
    op.drop_index("ix_activities_contact_id", table_name="activities")
    op.drop_table("activities")
    op.drop_index("ix_activity_types_updated_at", table_name="activity_types")
    op.drop_index("ix_activity_types_name", table_name="activity_types")
    op.drop_index("ix_activity_types_key", table_name="activity_types")
    op.drop_index("ix_activity_types_created_at", table_name="activity_types")
    op.drop_index("ix_activity_types_active", table_name="activity_types")
    op.drop_table("activity_types")
