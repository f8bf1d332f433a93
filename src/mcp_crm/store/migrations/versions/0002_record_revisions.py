"""record revisions

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-26 03:13:34.806061
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("contacts", sa.Column("revision", sa.Integer(), server_default="1", nullable=False))
    op.add_column("deals", sa.Column("revision", sa.Integer(), server_default="1", nullable=False))
    op.add_column("organizations", sa.Column("revision", sa.Integer(), server_default="1", nullable=False))
    op.add_column("services", sa.Column("revision", sa.Integer(), server_default="1", nullable=False))
    op.add_column("tasks", sa.Column("revision", sa.Integer(), server_default="1", nullable=False))
    op.add_column("users", sa.Column("revision", sa.Integer(), server_default="1", nullable=False))


def downgrade() -> None:
    op.drop_column("users", "revision")
    op.drop_column("tasks", "revision")
    op.drop_column("services", "revision")
    op.drop_column("organizations", "revision")
    op.drop_column("deals", "revision")
    op.drop_column("contacts", "revision")
