"""email connections (SMTP, password encrypted) and the per-recipient outbox of sends

Revision ID: 0019
Revises: 0018
Create Date: 2026-11-27 04:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0019"
down_revision: str | None = "0018"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

OPEN_SEND = sa.text("finished_at IS NULL")
ACTIVITY_COLUMNS = (
    sa.Column("email_status", sa.String(length=10), nullable=True),
    sa.Column("email_to", sa.String(length=320), nullable=True),
    sa.Column("email_message_id", sa.String(length=400), nullable=True),
    sa.Column("email_error", sa.Text(), nullable=True),
)


def upgrade() -> None:
    for column in ACTIVITY_COLUMNS:
        op.add_column("activities", column)
    op.create_table(
        "email_connections",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("workspace_id", sa.String(length=36), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("host", sa.String(length=253), nullable=False),
        sa.Column("port", sa.Integer(), nullable=False),
        sa.Column("tls", sa.String(length=10), nullable=False),
        sa.Column("username", sa.String(length=320), nullable=True),
        sa.Column("password_encrypted", sa.Text(), nullable=True),
        sa.Column("from_address", sa.String(length=320), nullable=False),
        sa.Column("from_name", sa.String(length=200), nullable=True),
        sa.Column("daily_limit", sa.Integer(), nullable=False),
        sa.Column("created_by", sa.String(length=36), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["workspace_id"], ["workspaces.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_email_connections_workspace", "email_connections", ["workspace_id", "id"])
    op.create_table(
        "email_sends",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("workspace_id", sa.String(length=36), nullable=False),
        sa.Column("connection_id", sa.String(length=36), nullable=False),
        sa.Column("recipients", sa.JSON(), nullable=False),
        sa.Column("subject", sa.Text(), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("body_format", sa.String(length=10), nullable=False),
        sa.Column("created_by", sa.String(length=36), nullable=True),
        sa.Column("via", sa.String(length=20), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("owner", sa.String(length=300), nullable=True),
        sa.Column("heartbeat_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("idempotency_key", sa.String(length=200), nullable=True),
        sa.ForeignKeyConstraint(["connection_id"], ["email_connections.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["workspace_id"], ["workspaces.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_email_sends_workspace", "email_sends", ["workspace_id", "id"])
    op.create_index("ux_email_sends_idempotency", "email_sends", ["workspace_id", "idempotency_key"], unique=True)
    op.create_index(
        "ix_email_sends_open", "email_sends", ["heartbeat_at"], sqlite_where=OPEN_SEND, postgresql_where=OPEN_SEND
    )
    op.create_table(
        "email_outbox",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("send_id", sa.String(length=36), nullable=False),
        sa.Column("connection_id", sa.String(length=36), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("contact_id", sa.String(length=36), nullable=True),
        sa.Column("lead_id", sa.String(length=36), nullable=True),
        sa.Column("to_address", sa.String(length=320), nullable=False),
        sa.Column("to_name", sa.String(length=300), nullable=True),
        sa.Column("subject", sa.Text(), nullable=False),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("html", sa.Text(), nullable=False),
        sa.Column("message_id", sa.String(length=400), nullable=False),
        sa.Column("state", sa.String(length=10), nullable=False),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("attempted_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("activity_id", sa.String(length=36), nullable=True),
        sa.ForeignKeyConstraint(["send_id"], ["email_sends.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_email_outbox_send", "email_outbox", ["send_id", "state", "position"])
    op.create_index("ix_email_outbox_connection_day", "email_outbox", ["connection_id", "attempted_at"])


def downgrade() -> None:
    op.drop_table("email_outbox")
    op.drop_table("email_sends")
    op.drop_table("email_connections")
    for column in reversed(ACTIVITY_COLUMNS):
        op.drop_column("activities", column.name)
