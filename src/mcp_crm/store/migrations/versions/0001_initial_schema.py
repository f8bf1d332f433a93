"""initial schema

Revision ID: 0001
Revises:
Create Date: 2026-11-26 01:45:33.508129
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "workspaces",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("slug", sa.String(length=64), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("slug"),
    )
    op.create_table(
        "change_events",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("workspace_id", sa.String(length=36), nullable=False),
        sa.Column("entity", sa.String(length=40), nullable=False),
        sa.Column("record_id", sa.String(length=36), nullable=False),
        sa.Column("action", sa.String(length=20), nullable=False),
        sa.Column("user_id", sa.String(length=36), nullable=True),
        sa.Column("via", sa.String(length=20), nullable=False),
        sa.Column("tool", sa.String(length=80), nullable=True),
        sa.Column("before", sa.JSON(), nullable=True),
        sa.Column("after", sa.JSON(), nullable=True),
        sa.Column("occurred_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["workspace_id"], ["workspaces.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("change_events", schema=None) as batch_op:
        batch_op.create_index("ix_change_events_record", ["workspace_id", "entity", "record_id", "id"], unique=False)
        batch_op.create_index("ix_change_events_workspace", ["workspace_id", "id"], unique=False)

    op.create_table(
        "services",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("workspace_id", sa.String(length=36), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("amount", sa.BigInteger(), nullable=False),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("unit", sa.String(length=40), nullable=True),
        sa.Column("sku", sa.String(length=64), nullable=True),
        sa.Column("description", sa.Text(), nullable=True),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.ForeignKeyConstraint(["workspace_id"], ["workspaces.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("workspace_id", "sku", name="uq_services_sku"),
    )
    with op.batch_alter_table("services", schema=None) as batch_op:
        batch_op.create_index("ix_services_active", ["workspace_id", "active", "id"], unique=False)
        batch_op.create_index("ix_services_amount", ["workspace_id", "amount", "id"], unique=False)
        batch_op.create_index("ix_services_created_at", ["workspace_id", "created_at", "id"], unique=False)
        batch_op.create_index("ix_services_name", ["workspace_id", "name", "id"], unique=False)
        batch_op.create_index("ix_services_sku", ["workspace_id", "sku", "id"], unique=False)
        batch_op.create_index("ix_services_updated_at", ["workspace_id", "updated_at", "id"], unique=False)

    op.create_table(
        "users",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("workspace_id", sa.String(length=36), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("email", sa.String(length=320), nullable=False),
        sa.Column("role", sa.String(length=20), nullable=False),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.ForeignKeyConstraint(["workspace_id"], ["workspaces.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("workspace_id", "email", name="uq_users_email"),
    )
    with op.batch_alter_table("users", schema=None) as batch_op:
        batch_op.create_index("ix_users_created_at", ["workspace_id", "created_at", "id"], unique=False)
        batch_op.create_index("ix_users_email", ["workspace_id", "email", "id"], unique=False)
        batch_op.create_index("ix_users_name", ["workspace_id", "name", "id"], unique=False)
        batch_op.create_index("ix_users_role", ["workspace_id", "role", "id"], unique=False)
        batch_op.create_index("ix_users_updated_at", ["workspace_id", "updated_at", "id"], unique=False)

    op.create_table(
        "contacts",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("workspace_id", sa.String(length=36), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("first_name", sa.String(length=100), nullable=False),
        sa.Column("last_name", sa.String(length=100), nullable=False),
        sa.Column("emails", sa.JSON(), nullable=False),
        sa.Column("email", sa.String(length=320), nullable=True),
        sa.Column("phones", sa.JSON(), nullable=False),
        sa.Column("phone", sa.String(length=40), nullable=True),
        sa.Column("job_title", sa.String(length=200), nullable=True),
        sa.Column("notes", sa.Text(), nullable=True),
        sa.Column("address", sa.JSON(), nullable=True),
        sa.Column("birthday", sa.Date(), nullable=True),
        sa.Column("tags", sa.JSON(), nullable=False),
        sa.Column("owner_id", sa.String(length=36), nullable=True),
        sa.ForeignKeyConstraint(["owner_id"], ["users.id"], ondelete="SET NULL"),
        sa.ForeignKeyConstraint(["workspace_id"], ["workspaces.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("contacts", schema=None) as batch_op:
        batch_op.create_index("ix_contacts_birthday", ["workspace_id", "birthday", "id"], unique=False)
        batch_op.create_index("ix_contacts_created_at", ["workspace_id", "created_at", "id"], unique=False)
        batch_op.create_index("ix_contacts_email", ["workspace_id", "email", "id"], unique=False)
        batch_op.create_index("ix_contacts_first_name", ["workspace_id", "first_name", "id"], unique=False)
        batch_op.create_index("ix_contacts_job_title", ["workspace_id", "job_title", "id"], unique=False)
        batch_op.create_index("ix_contacts_last_name", ["workspace_id", "last_name", "id"], unique=False)
        batch_op.create_index("ix_contacts_owner_id", ["workspace_id", "owner_id", "id"], unique=False)
        batch_op.create_index("ix_contacts_updated_at", ["workspace_id", "updated_at", "id"], unique=False)

    op.create_table(
        "deals",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("workspace_id", sa.String(length=36), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("value", sa.BigInteger(), nullable=True),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("status", sa.String(length=10), nullable=False),
        sa.Column("probability", sa.Integer(), nullable=True),
        sa.Column("expected_close_date", sa.Date(), nullable=True),
        sa.Column("won_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("lost_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("lost_reason", sa.String(length=500), nullable=True),
        sa.Column("description", sa.Text(), nullable=True),
        sa.Column("owner_id", sa.String(length=36), nullable=True),
        sa.ForeignKeyConstraint(["owner_id"], ["users.id"], ondelete="SET NULL"),
        sa.ForeignKeyConstraint(["workspace_id"], ["workspaces.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("deals", schema=None) as batch_op:
        batch_op.create_index("ix_deals_created_at", ["workspace_id", "created_at", "id"], unique=False)
        batch_op.create_index(
            "ix_deals_expected_close_date", ["workspace_id", "expected_close_date", "id"], unique=False
        )
        batch_op.create_index("ix_deals_lost_at", ["workspace_id", "lost_at", "id"], unique=False)
        batch_op.create_index("ix_deals_name", ["workspace_id", "name", "id"], unique=False)
        batch_op.create_index("ix_deals_owner_id", ["workspace_id", "owner_id", "id"], unique=False)
        batch_op.create_index("ix_deals_probability", ["workspace_id", "probability", "id"], unique=False)
        batch_op.create_index("ix_deals_status", ["workspace_id", "status", "id"], unique=False)
        batch_op.create_index("ix_deals_updated_at", ["workspace_id", "updated_at", "id"], unique=False)
        batch_op.create_index("ix_deals_value", ["workspace_id", "value", "id"], unique=False)
        batch_op.create_index("ix_deals_won_at", ["workspace_id", "won_at", "id"], unique=False)

    op.create_table(
        "organizations",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("workspace_id", sa.String(length=36), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("domain", sa.String(length=253), nullable=True),
        sa.Column("website", sa.String(length=500), nullable=True),
        sa.Column("industry", sa.String(length=100), nullable=True),
        sa.Column("relationship", sa.String(length=20), nullable=False),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("employee_count", sa.Integer(), nullable=True),
        sa.Column("phone", sa.String(length=40), nullable=True),
        sa.Column("address", sa.JSON(), nullable=True),
        sa.Column("notes", sa.Text(), nullable=True),
        sa.Column("tags", sa.JSON(), nullable=False),
        sa.Column("owner_id", sa.String(length=36), nullable=True),
        sa.ForeignKeyConstraint(["owner_id"], ["users.id"], ondelete="SET NULL"),
        sa.ForeignKeyConstraint(["workspace_id"], ["workspaces.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("organizations", schema=None) as batch_op:
        batch_op.create_index("ix_organizations_created_at", ["workspace_id", "created_at", "id"], unique=False)
        batch_op.create_index("ix_organizations_domain", ["workspace_id", "domain", "id"], unique=False)
        batch_op.create_index("ix_organizations_employee_count", ["workspace_id", "employee_count", "id"], unique=False)
        batch_op.create_index("ix_organizations_industry", ["workspace_id", "industry", "id"], unique=False)
        batch_op.create_index("ix_organizations_name", ["workspace_id", "name", "id"], unique=False)
        batch_op.create_index("ix_organizations_owner_id", ["workspace_id", "owner_id", "id"], unique=False)
        batch_op.create_index("ix_organizations_relationship", ["workspace_id", "relationship", "id"], unique=False)
        batch_op.create_index("ix_organizations_status", ["workspace_id", "status", "id"], unique=False)
        batch_op.create_index("ix_organizations_updated_at", ["workspace_id", "updated_at", "id"], unique=False)

    op.create_table(
        "contact_organizations",
        sa.Column("contact_id", sa.String(length=36), nullable=False),
        sa.Column("organization_id", sa.String(length=36), nullable=False),
        sa.ForeignKeyConstraint(["contact_id"], ["contacts.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["organization_id"], ["organizations.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("contact_id", "organization_id"),
    )
    with op.batch_alter_table("contact_organizations", schema=None) as batch_op:
        batch_op.create_index("ix_contact_organizations_organization", ["organization_id", "contact_id"], unique=False)

    op.create_table(
        "deal_contacts",
        sa.Column("deal_id", sa.String(length=36), nullable=False),
        sa.Column("contact_id", sa.String(length=36), nullable=False),
        sa.ForeignKeyConstraint(["contact_id"], ["contacts.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["deal_id"], ["deals.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("deal_id", "contact_id"),
    )
    with op.batch_alter_table("deal_contacts", schema=None) as batch_op:
        batch_op.create_index("ix_deal_contacts_contact", ["contact_id", "deal_id"], unique=False)

    op.create_table(
        "deal_organizations",
        sa.Column("deal_id", sa.String(length=36), nullable=False),
        sa.Column("organization_id", sa.String(length=36), nullable=False),
        sa.ForeignKeyConstraint(["deal_id"], ["deals.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["organization_id"], ["organizations.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("deal_id", "organization_id"),
    )
    with op.batch_alter_table("deal_organizations", schema=None) as batch_op:
        batch_op.create_index("ix_deal_organizations_organization", ["organization_id", "deal_id"], unique=False)

    op.create_table(
        "deal_services",
        sa.Column("deal_id", sa.String(length=36), nullable=False),
        sa.Column("service_id", sa.String(length=36), nullable=False),
        sa.Column("quantity", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(["deal_id"], ["deals.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["service_id"], ["services.id"], ondelete="RESTRICT"),
        sa.PrimaryKeyConstraint("deal_id", "service_id"),
    )
    with op.batch_alter_table("deal_services", schema=None) as batch_op:
        batch_op.create_index("ix_deal_services_service", ["service_id", "deal_id"], unique=False)

    op.create_table(
        "tasks",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("workspace_id", sa.String(length=36), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("description", sa.Text(), nullable=True),
        sa.Column("due_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("done", sa.Boolean(), nullable=False),
        sa.Column("completed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("priority", sa.String(length=10), nullable=False),
        sa.Column("assignee_id", sa.String(length=36), nullable=True),
        sa.Column("contact_id", sa.String(length=36), nullable=True),
        sa.Column("organization_id", sa.String(length=36), nullable=True),
        sa.Column("deal_id", sa.String(length=36), nullable=True),
        sa.ForeignKeyConstraint(["assignee_id"], ["users.id"], ondelete="SET NULL"),
        sa.ForeignKeyConstraint(["contact_id"], ["contacts.id"], ondelete="SET NULL"),
        sa.ForeignKeyConstraint(["deal_id"], ["deals.id"], ondelete="SET NULL"),
        sa.ForeignKeyConstraint(["organization_id"], ["organizations.id"], ondelete="SET NULL"),
        sa.ForeignKeyConstraint(["workspace_id"], ["workspaces.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("tasks", schema=None) as batch_op:
        batch_op.create_index("ix_tasks_assignee_id", ["workspace_id", "assignee_id", "id"], unique=False)
        batch_op.create_index("ix_tasks_completed_at", ["workspace_id", "completed_at", "id"], unique=False)
        batch_op.create_index("ix_tasks_contact_id", ["workspace_id", "contact_id", "id"], unique=False)
        batch_op.create_index("ix_tasks_created_at", ["workspace_id", "created_at", "id"], unique=False)
        batch_op.create_index("ix_tasks_deal_id", ["workspace_id", "deal_id", "id"], unique=False)
        batch_op.create_index("ix_tasks_done", ["workspace_id", "done", "id"], unique=False)
        batch_op.create_index("ix_tasks_due_at", ["workspace_id", "due_at", "id"], unique=False)
        batch_op.create_index("ix_tasks_name", ["workspace_id", "name", "id"], unique=False)
        batch_op.create_index("ix_tasks_organization_id", ["workspace_id", "organization_id", "id"], unique=False)
        batch_op.create_index("ix_tasks_priority", ["workspace_id", "priority", "id"], unique=False)
        batch_op.create_index("ix_tasks_updated_at", ["workspace_id", "updated_at", "id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("tasks", schema=None) as batch_op:
        batch_op.drop_index("ix_tasks_updated_at")
        batch_op.drop_index("ix_tasks_priority")
        batch_op.drop_index("ix_tasks_organization_id")
        batch_op.drop_index("ix_tasks_name")
        batch_op.drop_index("ix_tasks_due_at")
        batch_op.drop_index("ix_tasks_done")
        batch_op.drop_index("ix_tasks_deal_id")
        batch_op.drop_index("ix_tasks_created_at")
        batch_op.drop_index("ix_tasks_contact_id")
        batch_op.drop_index("ix_tasks_completed_at")
        batch_op.drop_index("ix_tasks_assignee_id")

    op.drop_table("tasks")
    with op.batch_alter_table("deal_services", schema=None) as batch_op:
        batch_op.drop_index("ix_deal_services_service")

    op.drop_table("deal_services")
    with op.batch_alter_table("deal_organizations", schema=None) as batch_op:
        batch_op.drop_index("ix_deal_organizations_organization")

    op.drop_table("deal_organizations")
    with op.batch_alter_table("deal_contacts", schema=None) as batch_op:
        batch_op.drop_index("ix_deal_contacts_contact")

    op.drop_table("deal_contacts")
    with op.batch_alter_table("contact_organizations", schema=None) as batch_op:
        batch_op.drop_index("ix_contact_organizations_organization")

    op.drop_table("contact_organizations")
    with op.batch_alter_table("organizations", schema=None) as batch_op:
        batch_op.drop_index("ix_organizations_updated_at")
        batch_op.drop_index("ix_organizations_status")
        batch_op.drop_index("ix_organizations_relationship")
        batch_op.drop_index("ix_organizations_owner_id")
        batch_op.drop_index("ix_organizations_name")
        batch_op.drop_index("ix_organizations_industry")
        batch_op.drop_index("ix_organizations_employee_count")
        batch_op.drop_index("ix_organizations_domain")
        batch_op.drop_index("ix_organizations_created_at")

    op.drop_table("organizations")
    with op.batch_alter_table("deals", schema=None) as batch_op:
        batch_op.drop_index("ix_deals_won_at")
        batch_op.drop_index("ix_deals_value")
        batch_op.drop_index("ix_deals_updated_at")
        batch_op.drop_index("ix_deals_status")
        batch_op.drop_index("ix_deals_probability")
        batch_op.drop_index("ix_deals_owner_id")
        batch_op.drop_index("ix_deals_name")
        batch_op.drop_index("ix_deals_lost_at")
        batch_op.drop_index("ix_deals_expected_close_date")
        batch_op.drop_index("ix_deals_created_at")

    op.drop_table("deals")
    with op.batch_alter_table("contacts", schema=None) as batch_op:
        batch_op.drop_index("ix_contacts_updated_at")
        batch_op.drop_index("ix_contacts_owner_id")
        batch_op.drop_index("ix_contacts_last_name")
        batch_op.drop_index("ix_contacts_job_title")
        batch_op.drop_index("ix_contacts_first_name")
        batch_op.drop_index("ix_contacts_email")
        batch_op.drop_index("ix_contacts_created_at")
        batch_op.drop_index("ix_contacts_birthday")

    op.drop_table("contacts")
    with op.batch_alter_table("users", schema=None) as batch_op:
        batch_op.drop_index("ix_users_updated_at")
        batch_op.drop_index("ix_users_role")
        batch_op.drop_index("ix_users_name")
        batch_op.drop_index("ix_users_email")
        batch_op.drop_index("ix_users_created_at")

    op.drop_table("users")
    with op.batch_alter_table("services", schema=None) as batch_op:
        batch_op.drop_index("ix_services_updated_at")
        batch_op.drop_index("ix_services_sku")
        batch_op.drop_index("ix_services_name")
        batch_op.drop_index("ix_services_created_at")
        batch_op.drop_index("ix_services_amount")
        batch_op.drop_index("ix_services_active")

    op.drop_table("services")
    with op.batch_alter_table("change_events", schema=None) as batch_op:
        batch_op.drop_index("ix_change_events_workspace")
        batch_op.drop_index("ix_change_events_record")

    op.drop_table("change_events")
    op.drop_table("workspaces")
