"""Pipeline verbs beyond the entity tools: reordering a pipeline's stages or the lead stages, converting a lead
to a deal."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from pydantic import BaseModel
from sqlalchemy import ColumnElement, Connection, select

from mcp_crm.entities import ENTITIES, Entity
from mcp_crm.entities.models import create_model_for, update_model_for
from mcp_crm.errors import CrmError
from mcp_crm.operations.actor import Actor
from mcp_crm.operations.records import fetch_rows, table_of
from mcp_crm.operations.writes import create_records, update_records

PIPELINES, STAGES, LEADS, DEALS, LEAD_STAGES = (
    ENTITIES[n] for n in ("pipelines", "stages", "leads", "deals", "lead_stages")
)


def reorder_stages(conn: Connection, actor: Actor, pipeline_id: str, stage_ids: list[str]) -> list[dict[str, Any]]:
    """Positions 1..n in the order given; `stage_ids` must be exactly the pipeline's stages."""
    fetch_rows(conn, actor, PIPELINES, [pipeline_id])
    in_pipeline = table_of(STAGES).c.pipeline_id == pipeline_id
    return _reorder(conn, actor, STAGES, in_pipeline, stage_ids, "of this pipeline", "stages_list with pipeline_id")


def reorder_lead_stages(conn: Connection, actor: Actor, stage_ids: list[str]) -> list[dict[str, Any]]:
    """Positions 1..n in the order given; `stage_ids` must be exactly the workspace's lead stages."""
    return _reorder(conn, actor, LEAD_STAGES, None, stage_ids, "of this workspace", "lead_stages_list")


def _reorder(
    conn: Connection,
    actor: Actor,
    entity: Entity,
    scope: ColumnElement[bool] | None,
    stage_ids: list[str],
    whose: str,
    listed_by: str,
) -> list[dict[str, Any]]:
    """Positions 1..n for `stage_ids`, which must be exactly the stages in `scope` (all the workspace's if None)."""
    stages = table_of(entity)
    where = [stages.c.workspace_id == actor.workspace_id] + ([scope] if scope is not None else [])
    held = set(conn.execute(select(stages.c.id).where(*where)).scalars())
    given = list(dict.fromkeys(stage_ids))
    missing, foreign = sorted(held - set(given)), [i for i in given if i not in held]
    if len(given) != len(stage_ids) or missing or foreign:
        problems = [f"list each of its {len(held)} {entity.name.replace('_', ' ')} exactly once"]
        if missing:
            problems.append(f"missing: {', '.join(missing)}")
        if foreign:
            problems.append(f"not {entity.name.replace('_', ' ')} {whose}: {', '.join(foreign)}")
        raise CrmError(f"stage_ids: {'; '.join(problems)} ({listed_by} shows them). Nothing was changed.")
    changes = update_model_for(entity)
    return update_records(
        conn, actor, entity, [(sid, changes(position=i)) for i, sid in enumerate(given, start=1)], bulk=True
    )


class _Conversion(BaseModel):
    converted_deal_id: str
    converted_at: datetime
    archived: bool
    stage_id: str | None = None  # the first won lead stage, when the workspace has one


def _won_lead_stage(conn: Connection, actor: Actor) -> str | None:
    stages = table_of(ENTITIES["lead_stages"])
    query = (
        select(stages.c.id)
        .where(stages.c.workspace_id == actor.workspace_id, stages.c.kind == "won")
        .order_by(stages.c.position, stages.c.id)
        .limit(1)
    )
    return conn.execute(query).scalar()


def convert_lead(
    conn: Connection, actor: Actor, lead_id: str, pipeline_id: str | None, stage_id: str | None
) -> dict[str, Any]:
    """A deal carrying the lead's data and links, and the lead marked converted, in one transaction."""
    lead = fetch_rows(conn, actor, LEADS, [lead_id], lock=True)[lead_id]
    if lead["converted_deal_id"]:
        raise CrmError(
            f"lead {lead_id} was already converted, on {lead['converted_at']:%Y-%m-%d}, to deal "
            f"{lead['converted_deal_id']} (deals_get shows it). Nothing was changed."
        )
    deal = create_model_for(DEALS)(
        name=lead["title"],
        value=lead["value"],
        currency=lead["currency"],
        expected_close_date=lead["expected_close_date"],
        description=lead["notes"],
        owner_id=lead["owner_id"],
        organization_ids=[lead["organization_id"]] if lead["organization_id"] else [],
        contact_ids=[lead["contact_id"]] if lead["contact_id"] else [],
        pipeline_id=pipeline_id,
        stage_id=stage_id,
    )
    (created,) = create_records(conn, actor, DEALS, [deal], bulk=False)
    won = _won_lead_stage(conn, actor)
    conversion = _Conversion(
        converted_deal_id=created["id"],
        converted_at=datetime.now(UTC),
        archived=True,
        **({"stage_id": won} if won else {}),
    )
    (converted,) = update_records(conn, actor, LEADS, [(lead_id, conversion)], bulk=False)
    return {"deal": created, "lead": converted}
