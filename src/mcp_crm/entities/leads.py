"""Leads: possible business not yet worth a deal, until `leads_convert` turns one into a deal."""

from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import JSON, select
from sqlmodel import Field

from mcp_crm.entities.lead_stages import LeadStage
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
        "stage_id",
        "stage_entered_at",
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
    stage_id: str | None = Field(
        None,
        foreign_key="lead_stages.id",
        ondelete="RESTRICT",
        max_length=36,
        description="Its lead stage (lead_stages_list); left out or null: the first open stage. Filters take the "
        "stage's id or its name.",
        schema_extra=meta(by_name=True),
    )
    stage_entered_at: datetime | None = Field(
        None, sa_type=UTCDateTime, description="When it entered its stage.", schema_extra=meta(read_only=True)
    )
    custom: dict[str, Any] = custom_values()


def _needs_someone(
    conn: Any, workspace_id: str, writes: list[tuple[dict[str, Any] | None, dict[str, Any]]]
) -> list[tuple[int, str, str]]:
    """A lead is about a contact, an organization or both. Checked when a write sets them, so a lead that lost
    both (its contact was deleted) can still be moved or edited."""
    problems = []
    for index, (before, values) in enumerate(writes):
        if before is not None and not {"contact_id", "organization_id"} & values.keys():
            continue
        merged = (before or {}) | values
        if merged.get("contact_id") is None and merged.get("organization_id") is None:
            problems.append((index, "contact_id", "a lead needs contact_id or organization_id (or both)."))
    return problems


def _place_in_stage(
    conn: Any, workspace_id: str, writes: list[tuple[dict[str, Any] | None, dict[str, Any]]]
) -> list[tuple[int, str, str]]:
    """A lead always has a stage: the one given, else the first open one. Entering a stage stamps
    stage_entered_at; sending the stage it is in already changes nothing."""
    problems = []
    now = datetime.now(UTC)
    first_open: list[str | None] = []  # read once per call, when an item needs it
    for index, (before, values) in enumerate(writes):
        if before is not None and "stage_id" not in values:
            continue
        if values.get("stage_id") is None:
            if not first_open:
                first_open.append(_first_open_stage(conn, workspace_id))
            if first_open[0] is None:
                problems.append((index, "stage_id", _NO_OPEN_STAGE))
                continue
            values["stage_id"] = first_open[0]
        if before is not None and before["stage_id"] == values["stage_id"]:
            values.pop("stage_id")
            continue
        values["stage_entered_at"] = now
    return problems


_NO_OPEN_STAGE = "the workspace has no open lead stage to start in; add one with lead_stages_create."


def _first_open_stage(conn: Any, workspace_id: str) -> str | None:
    stages = LeadStage.__table__  # type: ignore[attr-defined]
    query = (
        select(stages.c.id)
        .where(stages.c.workspace_id == workspace_id, stages.c.kind == "open")
        .order_by(stages.c.position, stages.c.created_at, stages.c.id)
        .limit(1)
    )
    found: str | None = conn.execute(query).scalar()
    return found


def _start_over(conn: Any, workspace_id: str) -> dict[str, Any] | None:
    """A restored lead whose stage is gone enters the first open stage (None: the workspace has none)."""
    stage_id = _first_open_stage(conn, workspace_id)
    return None if stage_id is None else {"stage_id": stage_id, "stage_entered_at": datetime.now(UTC)}


LEADS = Entity(
    name="leads",
    singular="lead",
    table=Lead,
    description="Possible business from a contact or organization, before it is a deal; leads_convert makes one.",
    title_columns=("title",),
    search_columns=("title", "source", "labels", "notes"),
    searchable=True,
    prepare=lambda conn, workspace_id, writes: [
        *_needs_someone(conn, workspace_id, writes),
        *_place_in_stage(conn, workspace_id, writes),
    ],
    on_missing={"stage_id": _start_over},
    example={"title": "Acme: 40 seats", "organization_id": "<organization id>", "value": "12000", "source": "web"},
    example_filter={
        "and": [
            {"field": "archived", "op": "eq", "value": False},
            {"field": "stage_id", "op": "eq", "value": "Qualified"},
            {"field": "labels", "op": "contains", "value": "hot"},
        ]
    },
)
