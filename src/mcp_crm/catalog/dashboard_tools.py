"""The sales dashboard tool: one read that sums up the pipeline, outcomes and overdue work."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any, Literal

from pydantic import BaseModel, Field

from mcp_crm.catalog.models import ToolInput
from mcp_crm.catalog.tools import READ, AppState, CrmTool, make_tool
from mcp_crm.operations import Actor
from mcp_crm.operations.dashboard import PERIODS, TOP_ORGANIZATIONS

PeriodName = Literal[PERIODS]  # type: ignore[valid-type]
MONEY = "Amounts per currency, never added across currencies: {currency code: decimal string}."


class CrmSummaryInput(ToolInput):
    period: PeriodName | None = Field(
        None, description="Which closed deals count as won/lost (UTC calendar periods); default this_month."
    )
    since: date | None = Field(None, description="Custom period: first day, YYYY-MM-DD (instead of period).")
    until: date | None = Field(None, description="Custom period: last day, included, YYYY-MM-DD.")
    owner_id: str | None = Field(
        None, max_length=36, description='Only this user\'s deals and work: a user id, or "me". Omit for everyone.'
    )
    pipeline_id: str | None = Field(None, max_length=36, description="Only this pipeline. Omit for all pipelines.")


class PeriodOut(BaseModel):
    name: str = Field(description="The period asked for, or custom for since/until.")
    since: date | None = Field(description="First day (UTC), or null when open-ended.")
    until: date | None = Field(description="Last day (UTC), included, or null when open-ended.")


class OpenFigures(BaseModel):
    deals: int = Field(description="Open deals.")
    value: dict[str, str] = Field(description=MONEY)
    weighted_value: dict[str, str] = Field(description=f"value x probability / 100 (no probability: 0). {MONEY}")
    average_days_in_stage: float | None = Field(description="Mean days since the deals entered their stage.")
    without_next_activity: int = Field(description="Open deals with no activity not done and due from now on.")
    idle_past_stage_limit: int = Field(description="Open deals in their stage longer than its rotten_after_days.")


class TotalOpen(OpenFigures):
    average_age_days: float | None = Field(description="Mean days since the open deals were created.")


class StageFigures(OpenFigures):
    pipeline_id: str
    pipeline: str = Field(description="The pipeline's name.")
    stage_id: str
    stage: str = Field(description="The stage's name.")
    position: int
    kind: str = Field(description="open, won or lost.")
    probability: int | None = Field(description="The stage's default probability, percent.")
    rotten_after_days: int | None


class Outcome(BaseModel):
    deals: int
    value: dict[str, str] = Field(description=MONEY)


class Rotten(BaseModel):
    without_next_activity: int = Field(description="Open deals with no activity not done and due from now on.")
    idle_past_stage_limit: int = Field(description="Open deals in their stage longer than its rotten_after_days.")


class OrganizationFigures(BaseModel):
    id: str
    name: str
    open_deals: int
    value: str = Field(description="Open deal value in this currency.")


class CrmSummary(BaseModel):
    as_of: datetime = Field(description="When the figures were computed (UTC); ages and overdue are as of then.")
    period: PeriodOut
    owner_id: str | None = Field(description="The owner filter (a user id), or null for everyone.")
    pipeline_id: str | None = Field(description="The pipeline filter, or null for all pipelines.")
    open_deals: TotalOpen = Field(description="All open deals now (not limited to the period).")
    stages: list[StageFigures] = Field(description="Open deals per stage: every stage, by pipeline then position.")
    won: Outcome = Field(description="Deals won in the period (by won_at).")
    lost: Outcome = Field(description="Deals lost in the period (by lost_at).")
    conversion_rate: float | None = Field(description="won / (won + lost) in the period, by count, 0-1; null: none.")
    overdue_tasks: int = Field(description="Tasks not done whose due_at has passed (by assignee under owner_id).")
    overdue_activities: int = Field(description="Activities not done whose due_at has passed.")
    rotten: Rotten = Field(description="Open deals needing attention (a deal may count in both).")
    top_organizations: dict[str, list[OrganizationFigures]] = Field(
        description=f"Per currency, the {TOP_ORGANIZATIONS} organizations with the most open deal value."
    )


async def crm_summary(s: AppState, a: Actor, args: CrmSummaryInput) -> dict[str, Any]:
    summary = await s.crm.summary(a, args.period, args.since, args.until, args.owner_id, args.pipeline_id)
    return CrmSummary.model_validate(summary).model_dump(mode="json")


DESCRIPTION = (
    "Sales dashboard in one call, computed in the database. Returns: open_deals now (count, value, "
    "probability-weighted value, average age and days in stage); stages: the same per stage of each pipeline, "
    "every stage listed, empty ones too; won and lost: deals closed in the period, with values; conversion_rate = "
    "won / (won + lost) by count; overdue_tasks and overdue_activities (not done, due before now); rotten: open "
    "deals without a next activity (none not done and due from now on) and open deals idle in their stage past "
    f"its rotten_after_days; top_organizations: per currency, the {TOP_ORGANIZATIONS} with the most open deal "
    'value. Money is never added across currencies: every amount is {"EUR": "12000.00", "USD": "800.00"}. '
    f"period (UTC): {', '.join(PERIODS)} (default this_month), or since/until dates, both included. "
    'Example: {"period": "last_quarter", "owner_id": "me"}. Drill down with deals_list (filter stage_id and '
    "status), activities_list or tasks_list."
)


def dashboard_tools() -> list[CrmTool]:
    return [
        make_tool(
            name="crm_summary",
            title="Sales dashboard",
            description=DESCRIPTION,
            handler=crm_summary,
            arg_model=CrmSummaryInput,
            output_model=CrmSummary,
            annotations=READ,
        )
    ]
