from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import ROUND_HALF_UP, Decimal
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, model_validator
from pydantic import Field as PydanticField
from sqlalchemy import Index, String, select
from sqlmodel import Field, SQLModel

from mcp_crm.entities.pipelines import Pipeline, Stage
from mcp_crm.entities.services import Service
from mcp_crm.entities.spec import (
    Entity,
    Link,
    Record,
    currency_code,
    custom_values,
    long_text,
    meta,
    owner,
    workspace_indexes,
)
from mcp_crm.store.types import Money, Quantity, UTCDateTime


class Deal(Record, table=True):
    __tablename__ = "deals"
    __table_args__ = workspace_indexes(
        "deals",
        "name",
        "value",
        "status",
        "probability",
        "expected_close_date",
        "won_at",
        "lost_at",
        "owner_id",
        "pipeline_id",
        "stage_id",
        "stage_entered_at",
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
    pipeline_id: str | None = Field(
        None,
        foreign_key="pipelines.id",
        ondelete="RESTRICT",
        max_length=36,
        description="Its pipeline; left out: the stage's pipeline, else the default one.",
    )
    stage_id: str | None = Field(
        None,
        foreign_key="stages.id",
        ondelete="RESTRICT",
        max_length=36,
        description="Its stage; left out: the pipeline's first open stage. A won or lost stage sets status.",
    )
    stage_entered_at: datetime | None = Field(
        None, sa_type=UTCDateTime, description="When it entered its stage.", schema_extra=meta(read_only=True)
    )
    custom: dict[str, Any] = custom_values()


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
    unit_price: Decimal | None = Field(None, sa_type=Money)
    discount_percent: Decimal | None = Field(None, sa_type=Money)
    discount_amount: Decimal | None = Field(None, sa_type=Money)
    total: Decimal | None = Field(None, sa_type=Money)


PRICE = {"ge": 0, "max_digits": 15, "decimal_places": 2}


class LineItem(BaseModel):
    """A line item as a write sends it; left-out attributes of a line the deal has keep their stored values."""

    model_config = ConfigDict(extra="forbid")

    service_id: str = PydanticField(max_length=36, description="Id of a service (see services_list).")
    quantity: Decimal = PydanticField(Decimal(1), gt=0, max_digits=14, decimal_places=4)
    unit_price: Decimal | None = PydanticField(
        None, **PRICE, description="Price per unit in the deal's currency; left out: the service's amount."
    )
    discount_percent: Decimal | None = PydanticField(None, ge=0, le=100, decimal_places=2, description="0-100.")
    discount_amount: Decimal | None = PydanticField(None, **PRICE, description="Taken off the line's total.")

    @model_validator(mode="after")
    def _one_discount(self) -> LineItem:
        if self.discount_percent is not None and self.discount_amount is not None:
            raise ValueError("give discount_percent or discount_amount, not both")
        return self


CENT = Decimal("0.01")


def _price_lines(
    conn: Any, workspace_id: str, writes: list[tuple[dict[str, Any] | None, dict[str, Any]]]
) -> list[tuple[int, str, str]]:
    """A deal with line items is worth their sum: quantity x unit price (the service's amount unless the line
    sets one, kept on the line so later price changes leave the deal alone) less the line's discount."""
    services = Service.__table__  # type: ignore[attr-defined]
    wanted = {line["service_id"] for _, values in writes for line in values.get("services") or []}
    query = select(services.c.id, services.c.amount, services.c.currency, services.c.name).where(
        services.c.workspace_id == workspace_id, services.c.id.in_(wanted)
    )
    catalog = {row.id: row for row in conn.execute(query)} if wanted else {}
    problems = []
    for index, (before, values) in enumerate(writes):
        lines = values.get("services")
        has_lines = bool(lines) if lines is not None else bool(before and before.get("services"))
        manual = values.get("value")
        if lines is None:
            if has_lines and "value" in values:
                problems.append((index, "value", _COMPUTED))
            if has_lines and values.get("currency", before["currency"]) != before["currency"]:  # type: ignore[index]
                problems.append((index, "currency", _REPRICE))
            continue
        if not lines:
            continue
        currency = values.get("currency") or (before or {}).get("currency") or "USD"
        value = Decimal(0)
        for line in lines:
            service = catalog.get(line["service_id"])
            if service is None:
                continue  # the reference check names it
            if line.get("unit_price") is None:
                if service.currency != currency:
                    problems.append(
                        (
                            index,
                            "services",
                            f"'{service.name}' is priced in {service.currency} and the deal is in {currency}: "
                            "give this line a unit_price in the deal's currency.",
                        )
                    )
                    continue
                line["unit_price"] = service.amount
            gross = line["quantity"] * line["unit_price"]
            if line.get("discount_percent") is not None:
                gross -= gross * line["discount_percent"] / 100
            elif line.get("discount_amount") is not None:
                gross -= line["discount_amount"]
            if gross < 0:
                problems.append((index, "services", f"the discount on '{service.name}' is more than its price."))
            line["total"] = gross.quantize(CENT, ROUND_HALF_UP)
            value += line["total"]
        if manual is not None and manual != value:
            problems.append((index, "value", _COMPUTED))
        values["value"] = value
    return problems


_COMPUTED = (
    "a deal with line items is worth their total: change the line items (services), or send services: [] to set "
    "the value by hand."
)

_REPRICE = "the line items are priced in the deal's currency: send them again, priced in the new one, with it."


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


def _place_in_pipeline(
    conn: Any, workspace_id: str, writes: list[tuple[dict[str, Any] | None, dict[str, Any]]]
) -> list[tuple[int, str, str]]:
    """A deal always sits in a stage of its pipeline. Entering a stage stamps stage_entered_at, takes the
    stage's probability unless one is given, and sets status from the stage's kind (lost needs a reason)."""
    stages = Stage.__table__  # type: ignore[attr-defined]
    problems: list[tuple[int, str, str]] = []
    now = datetime.now(UTC)
    for index, (before, values) in enumerate(writes):
        placing = "stage_id" in values or "pipeline_id" in values
        if before is not None and not placing:
            continue
        stage_id, pipeline_id = values.get("stage_id"), values.get("pipeline_id")
        query = select(stages).where(stages.c.workspace_id == workspace_id)
        if stage_id is not None:
            stage = conn.execute(query.where(stages.c.id == stage_id)).mappings().first()
            if stage is None:
                continue  # the reference check names the missing stage
            if pipeline_id is not None and stage["pipeline_id"] != pipeline_id:
                problems.append(
                    (
                        index,
                        "stage_id",
                        f"stage '{stage['name']}' belongs to pipeline "
                        f"{stage['pipeline_id']}, not {pipeline_id}; list that pipeline's stages with "
                        "stages_list.",
                    )
                )
                continue
        else:
            if pipeline_id is None:
                pipeline_id = _default_pipeline(conn, workspace_id)
                if pipeline_id is None:
                    problems.append((index, "pipeline_id", "the workspace has no pipeline: create one first."))
                    continue
            stage = (
                conn.execute(
                    query.where(stages.c.pipeline_id == pipeline_id, stages.c.kind == "open")
                    .order_by(stages.c.position, stages.c.created_at)
                    .limit(1)
                )
                .mappings()
                .first()
            )
            if stage is None:
                problems.append(
                    (
                        index,
                        "pipeline_id",
                        f"pipeline {pipeline_id} has no open stage to start in; add one with stages_create.",
                    )
                )
                continue
        if before is not None and before["stage_id"] == stage["id"]:
            values.pop("stage_id", None)
            values.pop("pipeline_id", None)
            continue
        values.update(stage_id=stage["id"], pipeline_id=stage["pipeline_id"], stage_entered_at=now)
        if values.get("probability") is None and stage["probability"] is not None:
            values["probability"] = stage["probability"]
        if before is not None or stage_id is not None:
            values["status"] = stage["kind"]
        reason = values.get("lost_reason") or (before or {}).get("lost_reason")
        if stage["kind"] == "lost" and not reason:
            problems.append((index, "lost_reason", f"moving to the lost stage '{stage['name']}' needs lost_reason."))
    return problems


def _default_pipeline(conn: Any, workspace_id: str) -> str | None:
    pipelines = Pipeline.__table__  # type: ignore[attr-defined]
    query = (
        select(pipelines.c.id)
        .where(pipelines.c.workspace_id == workspace_id, pipelines.c.active.is_(True))
        .order_by(pipelines.c.is_default.desc(), pipelines.c.created_at)
        .limit(1)
    )
    found: str | None = conn.execute(query).scalar()
    return found


DEALS = Entity(
    name="deals",
    singular="deal",
    table=Deal,
    description="Sales opportunities with a value, an outcome and the organizations, contacts and services involved.",
    search_columns=("name", "description", "lost_reason"),
    searchable=True,
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
            description=(
                "Line items: service ids, or {service_id, quantity, unit_price, discount_percent | discount_amount} "
                "(replaces the whole list when given). With line items the deal's value is their total."
            ),
            attributes=LineItem,
            summary_columns=("unit",),
            restrict_target_delete=True,
        ),
    ),
    derive=_stamp_outcome,
    prepare=lambda conn, workspace_id, writes: [
        *_price_lines(conn, workspace_id, writes),
        *_place_in_pipeline(conn, workspace_id, writes),
    ],
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
