from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict
from pydantic import Field as PydanticField
from sqlalchemy import Index, String
from sqlmodel import Field, SQLModel

from mcp_crm.entities.spec import Entity, Link, Record, currency_code, long_text, meta, owner, workspace_indexes
from mcp_crm.store.types import Money, Quantity, UTCDateTime


class Deal(Record, table=True):
    __tablename__ = "deals"
    __table_args__ = workspace_indexes(
        "deals", "name", "value", "status", "probability", "expected_close_date", "won_at", "lost_at", "owner_id"
    )

    name: str = Field(min_length=1, max_length=200, description="What is being sold to whom.")
    value: Decimal | None = Field(
        None,
        ge=0,
        max_digits=15,
        decimal_places=2,
        sa_type=Money,
        schema_extra=meta(kind="money"),
        description="Expected revenue in `currency`.",
    )
    currency: str = currency_code()
    status: Literal["open", "won", "lost"] = Field(
        "open", sa_type=String(10), description="Setting won or lost stamps won_at / lost_at."
    )
    probability: int | None = Field(None, ge=0, le=100, description="Chance of winning, in percent.")
    expected_close_date: date | None = Field(None, description="YYYY-MM-DD.")
    won_at: datetime | None = Field(
        None, sa_type=UTCDateTime, description="When the deal was won; set on won deals only."
    )
    lost_at: datetime | None = Field(
        None, sa_type=UTCDateTime, description="When the deal was lost; set on lost deals only."
    )
    lost_reason: str | None = Field(None, max_length=500, description="Why it was lost; kept on lost deals only.")
    description: str | None = long_text()
    owner_id: str | None = owner("The user who owns the deal.")


class DealOrganization(SQLModel, table=True):
    __tablename__ = "deal_organizations"
    __table_args__ = (Index("ix_deal_organizations_organization", "organization_id", "deal_id"),)

    deal_id: str = Field(foreign_key="deals.id", primary_key=True, ondelete="CASCADE", max_length=36)
    organization_id: str = Field(foreign_key="organizations.id", primary_key=True, ondelete="CASCADE", max_length=36)


class DealContact(SQLModel, table=True):
    __tablename__ = "deal_contacts"
    __table_args__ = (Index("ix_deal_contacts_contact", "contact_id", "deal_id"),)

    deal_id: str = Field(foreign_key="deals.id", primary_key=True, ondelete="CASCADE", max_length=36)
    contact_id: str = Field(foreign_key="contacts.id", primary_key=True, ondelete="CASCADE", max_length=36)


class DealService(SQLModel, table=True):
    """A deal's line item. A service on a deal cannot be deleted (RESTRICT): deactivate it instead."""

    __tablename__ = "deal_services"
    __table_args__ = (Index("ix_deal_services_service", "service_id", "deal_id"),)

    deal_id: str = Field(foreign_key="deals.id", primary_key=True, ondelete="CASCADE", max_length=36)
    service_id: str = Field(foreign_key="services.id", primary_key=True, ondelete="RESTRICT", max_length=36)
    quantity: Decimal = Field(Decimal(1), sa_type=Quantity)


class LineItem(BaseModel):
    model_config = ConfigDict(extra="forbid")

    service_id: str = PydanticField(max_length=36, description="Id of a service (see services_list).")
    quantity: Decimal = PydanticField(Decimal(1), gt=0, max_digits=14, decimal_places=4)


def _stamp_outcome(before: dict[str, Any] | None, after: dict[str, Any]) -> dict[str, Any]:
    """The outcome fields follow status: won_at only on won deals (now, unless given), lost_at and
    lost_reason only on lost ones; reopening clears them."""
    now = datetime.now(UTC)
    match after["status"]:
        case "won":
            return {"won_at": after.get("won_at") or now, "lost_at": None, "lost_reason": None}
        case "lost":
            return {"won_at": None, "lost_at": after.get("lost_at") or now}
        case _:
            return {"won_at": None, "lost_at": None, "lost_reason": None}


DEALS = Entity(
    name="deals",
    singular="deal",
    table=Deal,
    description="Sales opportunities with a value, an outcome and the organizations, contacts and services involved.",
    search_columns=("name",),
    links=(
        Link(
            name="organizations",
            input="organization_ids",
            target="organizations",
            table=DealOrganization,
            own_column="deal_id",
            target_column="organization_id",
            description="Ids of the organizations the deal is with (replaces the whole list when given).",
        ),
        Link(
            name="contacts",
            input="contact_ids",
            target="contacts",
            table=DealContact,
            own_column="deal_id",
            target_column="contact_id",
            description="Ids of the contacts involved (replaces the whole list when given).",
        ),
        Link(
            name="services",
            input="services",
            target="services",
            table=DealService,
            own_column="deal_id",
            target_column="service_id",
            description="Line items: [{service_id, quantity}] (replaces the whole list when given).",
            attributes=LineItem,
            summary_columns=("amount", "currency", "unit"),
            restrict_target_delete=True,
        ),
    ),
    derive=_stamp_outcome,
    on_delete="Its line items and links go with it and tasks linked to it are unlinked; a restore puts them back.",
    example={
        "name": "Acme renewal 2027",
        "value": "24000",
        "currency": "EUR",
        "expected_close_date": "2026-12-15",
    },
    example_filter={
        "and": [
            {"field": "value", "op": "gt", "value": 10000},
            {"field": "expected_close_date", "op": "between", "value": ["2026-12-01", "2026-12-31"]},
        ]
    },
)
