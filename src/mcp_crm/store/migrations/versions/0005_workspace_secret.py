"""workspace secret

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-26 09:49:02.961101
"""

from collections.abc import Sequence
from secrets import token_hex

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("workspaces", sa.Column("secret", sa.String(length=64), nullable=True))
    workspaces = sa.table("workspaces", sa.column("id", sa.String), sa.column("secret", sa.String))
    conn = op.get_bind()
    for (workspace_id,) in conn.execute(sa.select(workspaces.c.id)).all():
        conn.execute(sa.update(workspaces).where(workspaces.c.id == workspace_id).values(secret=token_hex(32)))


def downgrade() -> None:
    op.drop_column("workspaces", "secret")
