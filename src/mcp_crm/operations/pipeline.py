"""Pipeline verbs beyond the entity tools: reordering a pipeline's stages."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection, select

from mcp_crm.entities import ENTITIES
from mcp_crm.entities.models import update_model_for
from mcp_crm.errors import CrmError
from mcp_crm.operations.actor import Actor
from mcp_crm.operations.records import fetch_rows, table_of
from mcp_crm.operations.writes import update_records

PIPELINES, STAGES = ENTITIES["pipelines"], ENTITIES["stages"]


def reorder_stages(conn: Connection, actor: Actor, pipeline_id: str, stage_ids: list[str]) -> list[dict[str, Any]]:
    """Positions 1..n in the order given; `stage_ids` must be exactly the pipeline's stages."""
    fetch_rows(conn, actor, PIPELINES, [pipeline_id])
    stages = table_of(STAGES)
    held = set(
        conn.execute(
            select(stages.c.id).where(stages.c.workspace_id == actor.workspace_id, stages.c.pipeline_id == pipeline_id)
        ).scalars()
    )
    given = list(dict.fromkeys(stage_ids))
    missing, foreign = sorted(held - set(given)), [i for i in given if i not in held]
    if len(given) != len(stage_ids) or missing or foreign:
        problems = [f"list each of its {len(held)} stages exactly once"]
        if missing:
            problems.append(f"missing: {', '.join(missing)}")
        if foreign:
            problems.append(f"not stages of this pipeline: {', '.join(foreign)}")
        raise CrmError(
            f"stage_ids: {'; '.join(problems)} (stages_list with pipeline_id shows them). Nothing was changed."
        )
    changes = update_model_for(STAGES)
    return update_records(
        conn, actor, STAGES, [(sid, changes(position=i)) for i, sid in enumerate(given, start=1)], bulk=True
    )
