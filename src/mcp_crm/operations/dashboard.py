"""The sales dashboard (`crm_summary`): pipeline, outcomes, overdue work and rotten deals, each figure an
aggregate query (a handful of GROUP BY statements whatever the number of deals; no records are loaded).

Money is never added across currencies: every amount is a {currency: "decimal"} map. Dates are UTC."""

from __future__ import annotations

import calendar
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from sqlalchemy import Connection, and_, case, extract, false, func, literal_column, select

from mcp_crm.entities import ENTITIES
from mcp_crm.entities.deals import DealOrganization
from mcp_crm.errors import CrmError
from mcp_crm.operations.actor import Actor
from mcp_crm.operations.records import not_found, rows_by_id, table_of

PIPELINES, STAGES, DEALS, TASKS, ACTIVITIES, ORGANIZATIONS, USERS = (
    ENTITIES[n] for n in ("pipelines", "stages", "deals", "tasks", "activities", "organizations", "users")
)
DEAL_ORGANIZATIONS = DealOrganization.__table__  # type: ignore[attr-defined]

PERIODS = (
    "this_month",
    "last_month",
    "this_quarter",
    "last_quarter",
    "this_year",
    "last_year",
    "last_30_days",
    "last_90_days",
    "all_time",
)
DEFAULT_PERIOD = "this_month"
TOP_ORGANIZATIONS = 5
CENT = Decimal("0.01")
DAY_SECONDS = 86400.0
UNIX_EPOCH_JULIAN_DAY = 2440587.5


# ------------------------------------------------------------------------------------------------ period


@dataclass(frozen=True)
class Period:
    """Whole UTC days, both ends inclusive; None is open-ended (all_time has neither)."""

    name: str
    since: date | None
    until: date | None

    @property
    def start(self) -> datetime | None:
        return None if self.since is None else datetime.combine(self.since, time(), UTC)

    @property
    def end(self) -> datetime | None:
        """The first moment after the period (exclusive), or None."""
        if self.until is None or self.until == date.max:
            return None
        return datetime.combine(self.until + timedelta(days=1), time(), UTC)


def _month_start(day: date, months_back: int = 0) -> date:
    index = day.year * 12 + day.month - 1 - months_back
    return date(index // 12, index % 12 + 1, 1)


def _month_end(first: date, months: int = 1) -> date:
    last = _month_start(first, -(months - 1))
    return last.replace(day=calendar.monthrange(last.year, last.month)[1])


def resolve_period(name: str | None, since: date | None, until: date | None, today: date) -> Period:
    """A named period (default this_month) or explicit since/until dates, as inclusive UTC days."""
    if since is not None or until is not None:
        if name is not None:
            raise CrmError(f"Give either period ('{name}') or since/until dates, not both.")
        if since is not None and until is not None and since > until:
            raise CrmError(f"since ({since}) is after until ({until}); since is the first day, until the last.")
        return Period("custom", since, until)
    name = name or DEFAULT_PERIOD
    quarter = _month_start(today, (today.month - 1) % 3)
    match name:
        case "this_month":
            first = _month_start(today)
            return Period(name, first, _month_end(first))
        case "last_month":
            first = _month_start(today, 1)
            return Period(name, first, _month_end(first))
        case "this_quarter":
            return Period(name, quarter, _month_end(quarter, 3))
        case "last_quarter":
            first = _month_start(quarter, 3)
            return Period(name, first, _month_end(first, 3))
        case "this_year":
            return Period(name, date(today.year, 1, 1), date(today.year, 12, 31))
        case "last_year":
            return Period(name, date(today.year - 1, 1, 1), date(today.year - 1, 12, 31))
        case "last_30_days":
            return Period(name, today - timedelta(days=29), today)
        case "last_90_days":
            return Period(name, today - timedelta(days=89), today)
        case "all_time":
            return Period(name, None, None)
    raise CrmError(f"Unknown period '{name}'. Valid periods: {', '.join(PERIODS)}.")


# ----------------------------------------------------------------------------------------------- helpers


def _epoch(conn: Connection, column: Any) -> Any:
    """Seconds since 1970 of a UTC timestamp column, in SQL, on either database."""
    if conn.dialect.name == "sqlite":
        return (func.julianday(column) - UNIX_EPOCH_JULIAN_DAY) * DAY_SECONDS
    return extract("epoch", column)


def _unindexed(conn: Connection, column: Any) -> Any:
    """The column, kept from choosing the index on SQLite (unary +). SQLite plans without statistics: on
    `done = false AND due_at < now` it takes the due_at index and reads every past activity, most of them done,
    where the done index reads only the open ones."""
    if conn.dialect.name != "sqlite":
        return column
    return literal_column(f"+{column.table.name}.{column.name}", type_=column.type)


def _money(amounts: dict[str, Decimal]) -> dict[str, str]:
    """{currency: "1234.50"}, currencies in alphabetical order."""
    return {currency: str(amounts[currency].quantize(CENT, ROUND_HALF_UP)) for currency in sorted(amounts)}


def _days(total_seconds: float, count: int) -> float | None:
    return None if count == 0 else round(total_seconds / count / DAY_SECONDS, 1)


class _Tally:
    """Open-deal figures added up from the grouped rows (per stage, and overall)."""

    def __init__(self) -> None:
        self.deals = 0
        self.value: dict[str, Decimal] = defaultdict(Decimal)
        self.weighted: dict[str, Decimal] = defaultdict(Decimal)
        self.age_seconds = 0.0
        self.in_stage_seconds = 0.0
        self.in_stage_count = 0
        self.idle = 0
        self.scheduled = 0  # deals with a next activity

    def add(self, row: Any, now_epoch: float) -> None:
        self.deals += row.deals
        if row.value is not None:
            value = Decimal(row.value)
            self.value[row.currency] += value
            self.weighted[row.currency] += value * (row.probability or 0) / 100
        self.age_seconds += now_epoch * row.deals - float(row.created)
        if row.entered_count:
            self.in_stage_seconds += now_epoch * row.entered_count - float(row.entered)
            self.in_stage_count += row.entered_count
        self.idle += int(row.idle or 0)

    def figures(self) -> dict[str, Any]:
        return {
            "deals": self.deals,
            "value": _money(self.value),
            "weighted_value": _money(self.weighted),
            "average_days_in_stage": _days(self.in_stage_seconds, self.in_stage_count),
            "without_next_activity": self.deals - self.scheduled,
            "idle_past_stage_limit": self.idle,
        }


# ----------------------------------------------------------------------------------------------- summary


def crm_summary(
    conn: Connection,
    actor: Actor,
    period: Period,
    owner_id: str | None = None,
    pipeline_id: str | None = None,
    now: datetime | None = None,
) -> dict[str, Any]:
    """The dashboard of the actor's workspace, optionally for one owner ("me": the acting user) and one
    pipeline. Open deals are counted as they are now; won and lost deals by when they closed in `period`."""
    now = now or datetime.now(UTC)
    workspace = actor.workspace_id
    if owner_id == "me":
        if actor.user_id is None:
            raise CrmError("No user is acting in this session, so owner_id cannot be 'me'; pass a user id.")
        owner_id = actor.user_id
    if owner_id is not None and not rows_by_id(conn, actor, USERS, [owner_id]):
        raise not_found(USERS, [owner_id])
    if pipeline_id is not None and not rows_by_id(conn, actor, PIPELINES, [pipeline_id]):
        raise not_found(PIPELINES, [pipeline_id])

    deals, stages, pipelines = table_of(DEALS), table_of(STAGES), table_of(PIPELINES)
    tasks, activities, organizations = table_of(TASKS), table_of(ACTIVITIES), table_of(ORGANIZATIONS)
    now_epoch = now.timestamp()

    def within(column: Callable[[Any], Any] = lambda c: c) -> list[Any]:
        """The workspace, owner and pipeline conditions on deals (`column` wraps each column)."""
        where = [column(deals.c.workspace_id) == workspace]
        if owner_id is not None:
            where.append(column(deals.c.owner_id) == owner_id)
        if pipeline_id is not None:
            where.append(column(deals.c.pipeline_id) == pipeline_id)
        return where

    scope = within()
    open_deals = [*scope, deals.c.status == "open"]

    # open deals, grouped so that money stays per currency and weighting stays exact. The stage is kept from its
    # index on SQLite, which would otherwise walk every deal of the workspace in stage order instead of the open
    # ones by the status index (twice as slow)
    stage = _unindexed(conn, deals.c.stage_id)
    idle = and_(
        stages.c.rotten_after_days.is_not(None),
        _epoch(conn, deals.c.stage_entered_at) < now_epoch - stages.c.rotten_after_days * DAY_SECONDS,
    )
    grouped = conn.execute(
        select(
            stage.label("stage_id"),
            deals.c.currency,
            deals.c.probability,
            func.count().label("deals"),
            func.sum(deals.c.value).label("value"),
            func.sum(_epoch(conn, deals.c.created_at)).label("created"),
            func.sum(_epoch(conn, deals.c.stage_entered_at)).label("entered"),
            func.count(deals.c.stage_entered_at).label("entered_count"),
            func.sum(case((idle, 1), else_=0)).label("idle"),
        )
        .select_from(deals.outerjoin(stages, stages.c.id == deals.c.stage_id))
        .where(*open_deals)
        .group_by(stage, deals.c.currency, deals.c.probability)
    ).all()
    total, by_stage = _Tally(), defaultdict(_Tally)
    for row in grouped:
        total.add(row, now_epoch)
        by_stage[row.stage_id].add(row, now_epoch)

    # open deals with a next activity (one not done, due from now on), per stage: a semi-join on an uncorrelated
    # IN list, which SQLite builds once and PostgreSQL hashes (a correlated EXISTS or a join let SQLite's planner
    # probe the due_at index once per deal: deals x activities). On SQLite the deal conditions are kept from
    # their indexes, so the few deals in the list are fetched by key rather than every deal scanned
    unindexed: Callable[[Any], Any] = lambda column: _unindexed(conn, column)  # noqa: E731
    upcoming = select(activities.c.deal_id).where(
        activities.c.workspace_id == workspace,
        activities.c.done == false(),
        activities.c.due_at >= now,
        activities.c.deal_id.is_not(None),
    )
    scheduled = conn.execute(
        select(deals.c.stage_id, func.count().label("deals"))
        .where(*within(unindexed), unindexed(deals.c.status) == "open", deals.c.id.in_(upcoming))
        .group_by(deals.c.stage_id)
    ).all()
    for row in scheduled:
        total.scheduled += row.deals
        by_stage[row.stage_id].scheduled += row.deals

    # every stage, empty ones too, in pipeline then position order
    stage_query = (
        select(
            stages.c.id,
            stages.c.name,
            stages.c.position,
            stages.c.kind,
            stages.c.probability,
            stages.c.rotten_after_days,
            pipelines.c.id.label("pipeline_id"),
            pipelines.c.name.label("pipeline"),
        )
        .join(pipelines, pipelines.c.id == stages.c.pipeline_id)
        .where(stages.c.workspace_id == workspace)
        .order_by(
            pipelines.c.is_default.desc(),
            pipelines.c.created_at,
            pipelines.c.id,
            stages.c.position,
            stages.c.created_at,
            stages.c.id,
        )
    )
    if pipeline_id is not None:
        stage_query = stage_query.where(stages.c.pipeline_id == pipeline_id)
    stage_rows = [
        {
            "pipeline_id": s.pipeline_id,
            "pipeline": s.pipeline,
            "stage_id": s.id,
            "stage": s.name,
            "position": s.position,
            "kind": s.kind,
            "probability": s.probability,
            "rotten_after_days": s.rotten_after_days,
            **by_stage[s.id].figures(),
        }
        for s in conn.execute(stage_query)
    ]

    # won and lost deals that closed in the period
    outcomes = {}
    for status, closed_at in (("won", deals.c.won_at), ("lost", deals.c.lost_at)):
        window = [closed_at.is_not(None)]
        if period.start is not None:
            window.append(closed_at >= period.start)
        if period.end is not None:
            window.append(closed_at < period.end)
        rows = conn.execute(
            select(deals.c.currency, func.count().label("deals"), func.sum(deals.c.value).label("value"))
            .where(*scope, deals.c.status == status, *window)
            .group_by(deals.c.currency)
        ).all()
        outcomes[status] = {
            "deals": sum(r.deals for r in rows),
            "value": _money({r.currency: Decimal(r.value) for r in rows if r.value is not None}),
        }
    closed = outcomes["won"]["deals"] + outcomes["lost"]["deals"]

    # overdue work: tasks (by assignee) and activities (by owner), of the pipeline's deals when one is given
    def overdue(table: Any, done: Any, person: Any) -> int:
        where = [table.c.workspace_id == workspace, done == false(), _unindexed(conn, table.c.due_at) < now]
        if owner_id is not None:
            where.append(person == owner_id)
        if pipeline_id is not None:
            of_pipeline = select(deals.c.id).where(
                deals.c.workspace_id == workspace, deals.c.pipeline_id == pipeline_id
            )
            where.append(table.c.deal_id.in_(of_pipeline))
        return int(conn.execute(select(func.count()).select_from(table).where(*where)).scalar_one())

    # organizations ranked by open deal value, per currency (a deal with two organizations counts for both)
    value = func.sum(deals.c.value)
    ranked = (
        select(
            DEAL_ORGANIZATIONS.c.organization_id,
            deals.c.currency,
            func.count().label("deals"),
            value.label("value"),
            func.row_number()
            .over(
                partition_by=deals.c.currency,
                order_by=(func.coalesce(value, 0).desc(), func.count().desc(), DEAL_ORGANIZATIONS.c.organization_id),
            )
            .label("rank"),
        )
        .select_from(DEAL_ORGANIZATIONS.join(deals, deals.c.id == DEAL_ORGANIZATIONS.c.deal_id))
        .where(*open_deals)
        .group_by(DEAL_ORGANIZATIONS.c.organization_id, deals.c.currency)
        .subquery()
    )
    top: dict[str, list[dict[str, Any]]] = {}
    for row in conn.execute(
        select(ranked, organizations.c.name)
        .join(organizations, organizations.c.id == ranked.c.organization_id)
        .where(ranked.c.rank <= TOP_ORGANIZATIONS, organizations.c.workspace_id == workspace)
        .order_by(ranked.c.currency, ranked.c.rank)
    ):
        amount = Decimal(row.value or 0).quantize(CENT, ROUND_HALF_UP)
        top.setdefault(row.currency, []).append(
            {"id": row.organization_id, "name": row.name, "open_deals": row.deals, "value": str(amount)}
        )

    return {
        "as_of": now,
        "period": {"name": period.name, "since": period.since, "until": period.until},
        "owner_id": owner_id,
        "pipeline_id": pipeline_id,
        "open_deals": total.figures() | {"average_age_days": _days(total.age_seconds, total.deals)},
        "stages": stage_rows,
        "won": outcomes["won"],
        "lost": outcomes["lost"],
        "conversion_rate": None if closed == 0 else round(outcomes["won"]["deals"] / closed, 4),
        "overdue_tasks": overdue(tasks, tasks.c.done, tasks.c.assignee_id),
        "overdue_activities": overdue(activities, activities.c.done, activities.c.owner_id),
        "rotten": {
            "without_next_activity": total.deals - total.scheduled,
            "idle_past_stage_limit": total.idle,
        },
        "top_organizations": dict(sorted(top.items())),
    }
