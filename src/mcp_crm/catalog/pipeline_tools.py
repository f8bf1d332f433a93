"""Pipeline verbs: move a deal or a lead to a stage, reorder a pipeline's stages or the lead stages, convert a lead
into a deal."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field

from mcp_crm.catalog.models import DRY_RUN, IDEMPOTENCY_KEY, PREVIEW, ToolInput, inputs, outputs
from mcp_crm.catalog.tools import UPDATE, WRITE, AppState, CrmTool, make_tool, once, summarised
from mcp_crm.entities import ENTITIES
from mcp_crm.operations import Actor

DEALS, STAGES, LEADS, LEAD_STAGES = (ENTITIES[n] for n in ("deals", "stages", "leads", "lead_stages"))


class DealsMoveInput(ToolInput):
    id: str = Field(max_length=36, description="The deal's id.")
    stage_id: str = Field(max_length=36, description="The stage to move it to (stages_list shows them).")
    lost_reason: str | None = Field(None, max_length=500, description="Needed when the stage is a lost stage.")
    expected_revision: int | None = Field(None, ge=1, description="The revision you read; refused if it changed.")
    idempotency_key: str | None = IDEMPOTENCY_KEY[1]
    dry_run: bool = DRY_RUN[1]


async def deals_move(s: AppState, a: Actor, args: DealsMoveInput) -> dict[str, Any]:
    changes = inputs(DEALS)["update"].model_validate(
        args.model_dump(include={"id", "stage_id", "lost_reason", "expected_revision"}, exclude_none=True)
    )
    return await s.crm.update(a, DEALS, args.id, changes, once(a, args))


class LeadsMoveInput(ToolInput):
    id: str = Field(max_length=36, description="The lead's id.")
    stage_id: str = Field(max_length=36, description="The lead stage to move it to (lead_stages_list shows them).")
    expected_revision: int | None = Field(None, ge=1, description="The revision you read; refused if it changed.")
    idempotency_key: str | None = IDEMPOTENCY_KEY[1]
    dry_run: bool = DRY_RUN[1]


async def leads_move(s: AppState, a: Actor, args: LeadsMoveInput) -> dict[str, Any]:
    changes = inputs(LEADS)["update"].model_validate(
        args.model_dump(include={"id", "stage_id", "expected_revision"}, exclude_none=True)
    )
    return await s.crm.update(a, LEADS, args.id, changes, once(a, args))


class LeadStagesReorderInput(ToolInput):
    stage_ids: list[str] = Field(
        min_length=1, max_length=100, description="All the workspace's lead stage ids, in the new order."
    )
    idempotency_key: str | None = IDEMPOTENCY_KEY[1]
    dry_run: bool = DRY_RUN[1]


async def lead_stages_reorder(s: AppState, a: Actor, args: LeadStagesReorderInput) -> dict[str, Any]:
    stages = await s.crm.reorder_lead_stages(a, args.stage_ids, once(a, args))
    return summarised(LEAD_STAGES, stages)


class StagesReorderInput(ToolInput):
    pipeline_id: str = Field(max_length=36, description="The pipeline whose stages to reorder.")
    stage_ids: list[str] = Field(min_length=1, max_length=100, description="All its stage ids, in the new order.")
    idempotency_key: str | None = IDEMPOTENCY_KEY[1]
    dry_run: bool = DRY_RUN[1]


async def stages_reorder(s: AppState, a: Actor, args: StagesReorderInput) -> dict[str, Any]:
    stages = await s.crm.reorder_stages(a, args.pipeline_id, args.stage_ids, once(a, args))
    return summarised(STAGES, stages)


def pipeline_tools() -> list[CrmTool]:
    return [
        make_tool(
            name="deals_move",
            title="Move deal to stage",
            description=(
                "Move a deal to a stage (of its pipeline or another): it takes the stage's default probability, "
                "becomes won or lost in a won or lost stage (lost needs lost_reason) and open again in an open "
                "one; stage_entered_at and the audit log keep the move. Returns the deal as it is now."
            ),
            handler=deals_move,
            arg_model=DealsMoveInput,
            output_model=outputs(DEALS)["update"],
            annotations=UPDATE,
        ),
        make_tool(
            name="stages_reorder",
            title="Reorder stages",
            description="Set the order of a pipeline's stages: send all of its stage ids, first stage first.",
            handler=stages_reorder,
            arg_model=StagesReorderInput,
            output_model=outputs(STAGES)["update_many"],
            annotations=UPDATE,
            admin=True,
        ),
        make_tool(
            name="leads_move",
            title="Move lead to stage",
            description=(
                "Move a lead to one of the workspace's lead stages (New, Contacted, ... from lead_stages_list): "
                "stage_entered_at is stamped and its timeline and the audit log keep the move. Returns the lead "
                "as it is now. When it is worth a deal, leads_convert makes one."
            ),
            handler=leads_move,
            arg_model=LeadsMoveInput,
            output_model=outputs(LEADS)["update"],
            annotations=UPDATE,
        ),
        make_tool(
            name="lead_stages_reorder",
            title="Reorder lead stages",
            description="Set the order of the lead stages: send all of their ids, first stage first.",
            handler=lead_stages_reorder,
            arg_model=LeadStagesReorderInput,
            output_model=outputs(LEAD_STAGES)["update_many"],
            annotations=UPDATE,
            admin=True,
        ),
        make_tool(
            name="leads_convert",
            title="Convert lead to deal",
            description=(
                "Turn a lead into a deal, atomically: the deal takes the lead's title, value, currency, expected "
                "close date, notes, owner, contact and organization, in the given pipeline/stage (default: the "
                "default pipeline's first open stage); the lead is archived and points to the deal. A lead converts "
                "once."
            ),
            handler=leads_convert,
            arg_model=LeadsConvertInput,
            output_model=Converted,
            annotations=WRITE,
        ),
    ]


class LeadsConvertInput(ToolInput):
    id: str = Field(max_length=36, description="The lead's id.")
    pipeline_id: str | None = Field(None, max_length=36, description="Pipeline for the deal; the default if left out.")
    stage_id: str | None = Field(None, max_length=36, description="Stage for the deal; the first open one if left out.")
    idempotency_key: str | None = IDEMPOTENCY_KEY[1]
    dry_run: bool = DRY_RUN[1]


class Converted(BaseModel):
    deal: dict[str, Any] = Field(description="The new deal, as deals_get returns it.")
    lead: dict[str, Any] = Field(description="The lead, now converted and archived.")
    preview: dict[str, Any] | None = PREVIEW[1]


async def leads_convert(s: AppState, a: Actor, args: LeadsConvertInput) -> dict[str, Any]:
    return await s.crm.convert_lead(a, args.id, args.pipeline_id, args.stage_id, once(a, args))
