from datetime import UTC, date, datetime
from typing import Any

from pydantic import BaseModel, ConfigDict
from pydantic import Field as PydanticField
from sqlalchemy import JSON, Index, false
from sqlmodel import Field, SQLModel

from mcp_crm.entities.spec import Entity, Link, Record, custom_values, long_text, meta, owner, workspace_indexes
from mcp_crm.entities.values import Address, EmailAddress, PhoneNumber, primary_value
from mcp_crm.store.types import UTCDateTime


class Contact(Record, table=True):
    __tablename__ = "contacts"
    __table_args__ = workspace_indexes(
        "contacts", "last_name", "first_name", "email", "job_title", "birthday", "owner_id"
    )

    first_name: str = Field(min_length=1, max_length=100, description="Given name.")
    last_name: str = Field(min_length=1, max_length=100, description="Family name.")
    emails: list[EmailAddress] = Field(
        default_factory=list,
        sa_type=JSON,
        description="Email addresses, each {value, label: work|home|other, primary}.",
    )
    email: str | None = Field(
        None,
        max_length=320,
        description="The primary email (kept from `emails`).",
        schema_extra=meta(read_only=True),
    )
    phones: list[PhoneNumber] = Field(
        default_factory=list,
        sa_type=JSON,
        description="Phone numbers, each {value, label: work|mobile|home|other, primary}.",
    )
    phone: str | None = Field(
        None,
        max_length=40,
        description="The primary phone (kept from `phones`).",
        schema_extra=meta(read_only=True),
    )
    job_title: str | None = Field(None, max_length=200, description="Role, e.g. Head of Procurement.")
    notes: str | None = long_text()
    address: Address | None = Field(None, sa_type=JSON, description="Postal address.")
    birthday: date | None = Field(None, description="YYYY-MM-DD.")
    tags: list[str] = Field(default_factory=list, sa_type=JSON, description="Free labels such as 'vip'.")
    email_opt_out: bool = Field(
        False,
        description="True: they asked not to get marketing email, and sends skip them; setting it stamps "
        "email_opted_out_at.",
        sa_column_kwargs={"server_default": false()},
    )
    email_opt_out_reason: str | None = Field(
        None, max_length=500, description="Why they opted out, e.g. unsubscribed; kept while email_opt_out is true."
    )
    email_opted_out_at: datetime | None = Field(
        None,
        sa_type=UTCDateTime,
        description="When email_opt_out last turned true; cleared when it turns false.",
        schema_extra=meta(read_only=True),
    )
    owner_id: str | None = owner("The user who owns the contact.")
    custom: dict[str, Any] = custom_values()


class ContactOrganization(SQLModel, table=True):
    """A contact's membership in an organization."""

    __tablename__ = "contact_organizations"
    __table_args__ = (Index("ix_contact_organizations_organization", "organization_id", "contact_id"),)

    contact_id: str = Field(foreign_key="contacts.id", primary_key=True, ondelete="CASCADE", max_length=36)
    organization_id: str = Field(foreign_key="organizations.id", primary_key=True, ondelete="CASCADE", max_length=36)
    role: str | None = Field(None, max_length=100)
    title: str | None = Field(None, max_length=200)
    is_primary: bool = Field(False, sa_column_kwargs={"server_default": false()})


ROLE = PydanticField(
    None, max_length=100, description="Their part in the relationship: decision maker, champion, billing..."
)
TITLE = PydanticField(None, max_length=200, description="Their job title at that organization.")


class Membership(BaseModel):
    """A contact's membership as the contact writes it; left-out attributes keep their stored values."""

    model_config = ConfigDict(extra="forbid")

    organization_id: str = PydanticField(max_length=36, description="Id of an organization.")
    role: str | None = ROLE
    title: str | None = TITLE
    is_primary: bool = PydanticField(False, description="The contact's main organization; at most one.")


def _one_primary(
    conn: Any, workspace_id: str, writes: list[tuple[dict[str, Any] | None, dict[str, Any]]]
) -> list[tuple[int, str, str]]:
    return [
        (index, "organization_ids", "only one organization can be primary.")
        for index, (_, values) in enumerate(writes)
        if sum(bool(m.get("is_primary")) for m in values.get("organization_ids") or []) > 1
    ]


def _primary_email_and_phone(before: dict[str, Any] | None, after: dict[str, Any]) -> dict[str, Any]:
    return {"email": primary_value(after.get("emails")), "phone": primary_value(after.get("phones"))}


def _stamp_opt_out(before: dict[str, Any] | None, after: dict[str, Any]) -> dict[str, Any]:
    """Opting out stamps the time (kept while it stays true); opting back in clears the time and the reason."""
    if not after.get("email_opt_out"):
        return {"email_opted_out_at": None, "email_opt_out_reason": None}
    return {"email_opted_out_at": after.get("email_opted_out_at") or datetime.now(UTC)}


def _derived(before: dict[str, Any] | None, after: dict[str, Any]) -> dict[str, Any]:
    return _primary_email_and_phone(before, after) | _stamp_opt_out(before, after)


CONTACTS = Entity(
    name="contacts",
    singular="contact",
    table=Contact,
    description="People: customers, prospects and anyone the team talks to.",
    title_columns=("first_name", "last_name"),
    search_columns=("first_name", "last_name", "emails", "phones", "job_title", "tags", "notes"),
    searchable=True,
    links=(
        Link(
            name="organizations",
            input="organization_ids",
            target="organizations",
            table=ContactOrganization,
            own_column="contact_id",
            target_column="organization_id",
            description=(
                "The organizations the contact belongs to: ids, or {organization_id, role, title, is_primary} "
                "(replaces the whole list when given)."
            ),
            attributes=Membership,
        ),
    ),
    derive=_derived,
    prepare=_one_primary,
    on_delete="Its organization memberships and deal links go with it and tasks linked to it are unlinked; "
    "a restore puts them back.",
    example={
        "first_name": "Ada",
        "last_name": "Lovelace",
        "emails": [{"value": "ada@acme.com", "label": "work", "primary": True}],
        "job_title": "CTO",
        "tags": ["vip"],
    },
    example_filter={"field": "email", "op": "ends_with", "value": "@acme.com"},
)
