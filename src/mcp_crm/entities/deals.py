from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict
from pydantic import Field as PydanticField
from sqlalchemy import Index, String, select
from sqlmodel import Field, SQLModel

from mcp_crm.entities.pipelines import Pipeline, Stage
from mcp_crm.entities.spec import Entity, Link, Record, currency_code, long_text, meta, owner, workspace_indexes
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
    prepare=_place_in_pipeline,
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
