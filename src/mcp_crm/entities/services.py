from decimal import Decimal
from typing import Any

from sqlalchemy import UniqueConstraint
from sqlmodel import Field

from mcp_crm.entities.spec import Entity, Record, currency_code, custom_values, long_text, meta, workspace_indexes
from mcp_crm.store.types import Money


class Service(Record, table=True):
    __tablename__ = "services"
    __table_args__ = (
        *workspace_indexes("services", "name", "amount", "sku", "active"),
        UniqueConstraint("workspace_id", "sku", name="uq_services_sku"),
    )

    name: str = Field(min_length=1, max_length=200, description="Product or service name.")
    amount: Decimal = Field(
        gt=0,
        max_digits=15,
        decimal_places=2,
        sa_type=Money,
        description="Unit price, > 0.",
        schema_extra=meta(kind="money"),
    )
    currency: str = currency_code()
    unit: str | None = Field(None, max_length=40, description="What one unit is: hour, seat, license, piece.")
    sku: str | None = Field(
        None,
        max_length=64,
        description="Stock keeping unit; unique in the workspace.",
        schema_extra=meta(unique=True),
    )
    description: str | None = long_text()
    active: bool = Field(True, description="Inactive services stay on existing deals but should not be sold.")
    custom: dict[str, Any] = custom_values()


SERVICES = Entity(
    name="services",
    singular="service",
    table=Service,
    description="Products and services the team sells; deals list them as line items.",
    search_columns=("name", "sku"),
    on_delete="Refused while the service is a line item on a deal: remove it from those deals or set active=false.",
    example={"name": "Onboarding workshop", "amount": "1500.00", "currency": "EUR", "unit": "day"},
    example_filter={"field": "amount", "op": "gte", "value": 1000},
)
