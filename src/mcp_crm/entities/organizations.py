from typing import Any, Literal

from pydantic import BaseModel, ConfigDict
from pydantic import Field as PydanticField
from sqlalchemy import JSON, String
from sqlmodel import Field

from mcp_crm.entities.contacts import ROLE, TITLE, ContactOrganization
from mcp_crm.entities.spec import Entity, Link, Record, custom_values, long_text, meta, owner, workspace_indexes
from mcp_crm.entities.values import Address


class Member(BaseModel):
    """A membership as the organization writes it (the primary flag belongs to the contact)."""

    model_config = ConfigDict(extra="forbid")

    contact_id: str = PydanticField(max_length=36, description="Id of a contact.")
    role: str | None = ROLE
    title: str | None = TITLE


class Organization(Record, table=True):
    __tablename__ = "organizations"
    __table_args__ = workspace_indexes(
        "organizations", "name", "domain", "industry", "relationship", "status", "employee_count", "owner_id"
    )

    name: str = Field(min_length=1, max_length=200, description="Company or institution name.")
    domain: str | None = Field(
        None,
        max_length=253,
        schema_extra=meta(pattern=r"^[A-Za-z0-9.-]+\.[A-Za-z]{2,}$"),
        description="Web domain without scheme, e.g. acme.com.",
    )
    website: str | None = Field(None, max_length=500, schema_extra=meta(pattern=r"^https?://"), description="Full URL.")
    industry: str | None = Field(None, max_length=100, description="Free text, e.g. Logistics.")
    relationship: Literal["prospect", "customer", "vendor", "partner"] = Field(
        "prospect", sa_type=String(20), description="How the organization relates to the team."
    )
    status: Literal["active", "inactive"] = Field("active", sa_type=String(20))
    employee_count: int | None = Field(None, ge=0, description="Headcount, roughly.")
    phone: str | None = Field(None, max_length=40, description="Main switchboard number.")
    address: Address | None = Field(None, sa_type=JSON, description="Postal address.")
    notes: str | None = long_text()
    tags: list[str] = Field(default_factory=list, sa_type=JSON)
    owner_id: str | None = owner("The user who owns it.")
    custom: dict[str, Any] = custom_values()


ORGANIZATIONS = Entity(
    name="organizations",
    singular="organization",
    table=Organization,
    description="Companies and institutions; contacts belong to them and deals are made with them.",
    search_columns=("name", "domain", "website", "industry", "phone", "tags", "notes"),
    searchable=True,
    links=(
        Link(
            name="contacts",
            input="contact_ids",
            target="contacts",
            table=ContactOrganization,
            own_column="organization_id",
            target_column="contact_id",
            description=(
                "The organization's contacts: ids, or {contact_id, role, title} (replaces the whole list when given)."
            ),
            attributes=Member,
        ),
    ),
    on_delete="Its contacts and deals stay (only the links go) and tasks linked to it are unlinked; "
    "a restore puts them back.",
    example={
        "name": "Acme GmbH",
        "domain": "acme.com",
        "industry": "Manufacturing",
        "relationship": "customer",
    },
    example_filter={"field": "relationship", "op": "eq", "value": "customer"},
)
