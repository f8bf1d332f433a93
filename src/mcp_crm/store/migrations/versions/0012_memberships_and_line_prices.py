"""memberships carry role, title and a primary flag; line items carry their price, discount and total

Revision ID: 0012
Revises: 0011
Create Date: 2026-11-26 13:20:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0012"
down_revision: str | None = "0011"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("contact_organizations", sa.Column("role", sa.String(length=100), nullable=True))
    op.add_column("contact_organizations", sa.Column("title", sa.String(length=200), nullable=True))
    op.add_column(
        "contact_organizations", sa.Column("is_primary", sa.Boolean(), server_default=sa.false(), nullable=False)
    )
    for name in ("unit_price", "discount_percent", "discount_amount", "total"):
        op.add_column("deal_services", sa.Column(name, sa.BigInteger(), nullable=True))
    # existing lines take their service's price (both in cents); quantities are kept in 1/10,000ths
    op.execute(
        "UPDATE deal_services SET unit_price = "
        "(SELECT amount FROM services WHERE services.id = deal_services.service_id)"
    )
    op.execute("UPDATE deal_services SET total = CAST(ROUND(quantity * unit_price / 10000.0) AS BIGINT)")


def downgrade() -> None:
    # native ALTERs, never batch mode (see docs/architecture.md)
    for name in ("total", "discount_amount", "discount_percent", "unit_price"):
        op.execute(f"ALTER TABLE deal_services DROP COLUMN {name}")
    for name in ("is_primary", "title", "role"):
        op.execute(f"ALTER TABLE contact_organizations DROP COLUMN {name}")
