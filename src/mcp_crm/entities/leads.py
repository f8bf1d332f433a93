"""Leads: possible business not yet worth a deal, until `leads_convert` turns one into a deal."""

from datetime import date, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import JSON
from sqlmodel import Field

from mcp_crm.entities.spec import (
    Entity,
    Record,
    currency_code,
    custom_values,
    long_text,
    meta,
    owner,
    workspace_indexes,
)
from mcp_crm.store.types import Money, UTCDateTime


class Lead(Record, table=True):
    __tablename__ = "leads"
    __table_args__ = workspace_indexes(
        "leads",
        "title",
        "value",
        "source",
        "expected_close_date",
        "archived",
        "owner_id",
        "contact_id",
        "organization_id",
        "converted_at",
    )

    title: str = Field(min_length=1, max_length=200, description="What the opportunity is, e.g. 'Acme: 40 seats'.")
    contact_id: str | None = Field(
        None, foreign_key="contacts.id", ondelete="SET NULL", max_length=36, description="The person it came from."
    )
    organization_id: str | None = Field(
        None, foreign_key="organizations.id", ondelete="SET NULL", max_length=36, description="The company."
    )
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
    source: str | None = Field(None, max_length=100, description="Where it came from: web form, referral, event...")
    expected_close_date: date | None = Field(None, description="YYYY-MM-DD.")
    labels: list[str] = Field(default_factory=list, sa_type=JSON, description="Free labels such as 'hot'.")
    notes: str | None = long_text()
    archived: bool = Field(False, description="True hides it from the working list; converting archives it.")
    owner_id: str | None = owner("The user who works the lead.")
    converted_deal_id: str | None = Field(
        None, max_length=36, description="The deal it became (leads_convert).", schema_extra=meta(read_only=True)
    )
    converted_at: datetime | None = Field(
        None, sa_type=UTCDateTime, description="When it was converted.", schema_extra=meta(read_only=True)
    )
    custom: dict[str, Any] = custom_values()


def _needs_someone(
    conn: Any, workspace_id: str, writes: list[tuple[dict[str, Any] | None, dict[str, Any]]]
) -> list[tuple[int, str, str]]:
    """A lead is about a contact, an organization or both."""
    problems = []
    for index, (before, values) in enumerate(writes):
        merged = (before or {}) | values
        if merged.get("contact_id") is None and merged.get("organization_id") is None:
            problems.append((index, "contact_id", "a lead needs contact_id or organization_id (or both)."))
    return problems


LEADS = Entity(
    name="leads",
    singular="lead",
    table=Lead,
    description="Possible business from a contact or organization, before it is a deal; leads_convert makes one.",
    title_columns=("title",),
    search_columns=("title", "source", "labels", "notes"),
    searchable=True,
    prepare=_needs_someone,
    example={"title": "Acme: 40 seats", "organization_id": "<organization id>", "value": "12000", "source": "web"},
    example_filter={
        "and": [
            {"field": "archived", "op": "eq", "value": False},
            {"field": "labels", "op": "contains", "value": "hot"},
        ]
    },
)
