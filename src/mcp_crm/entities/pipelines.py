"""Pipelines and their stages: the road a deal travels from first contact to won or lost."""

from typing import Any, Literal

from sqlalchemy import String, select
from sqlmodel import Field

from mcp_crm.entities.spec import Entity, Record, currency_code, workspace_indexes


class Pipeline(Record, table=True):
    __tablename__ = "pipelines"
    __table_args__ = workspace_indexes("pipelines", "name", "is_default", "active")

    name: str = Field(min_length=1, max_length=200, description="e.g. New business, Renewals.")
    currency: str = currency_code()
    is_default: bool = Field(False, description="Where deals go when no pipeline or stage is given.")
    active: bool = Field(True, description="False hides it from new deals; its deals stay.")


class Stage(Record, table=True):
    __tablename__ = "stages"
    __table_args__ = workspace_indexes("stages", "pipeline_id", "position", "name", "kind")

    pipeline_id: str = Field(
        foreign_key="pipelines.id",
        ondelete="RESTRICT",
        max_length=36,
        description="The pipeline it belongs to (a pipeline with stages cannot be deleted).",
    )
    name: str = Field(min_length=1, max_length=200, description="e.g. Proposal made.")
    position: int = Field(1, ge=1, le=1000, description="Order in the pipeline, 1 first; see stages_reorder.")
    kind: Literal["open", "won", "lost"] = Field(
        "open", sa_type=String(10), description="Deals moved to a won or lost stage are won or lost."
    )
    probability: int | None = Field(None, ge=0, le=100, description="Default chance of winning, in percent.")
    rotten_after_days: int | None = Field(
        None, ge=1, le=3650, description="A deal idle this long in the stage counts as rotten."
    )


def _one_default(
    conn: Any, workspace_id: str, writes: list[tuple[dict[str, Any] | None, dict[str, Any]]]
) -> list[tuple[int, str, str]]:
    """At most one pipeline is the default, counting this call's own changes (so one update_many can move it)."""
    if not any("is_default" in values for _, values in writes):
        return []
    table = Pipeline.__table__  # type: ignore[attr-defined]
    stored = conn.execute(
        select(table.c.id, table.c.name).where(table.c.workspace_id == workspace_id, table.c.is_default.is_(True))
    ).all()
    defaults = {rid: name for rid, name in stored}
    chosen = set()
    for index, (before, values) in enumerate(writes):
        key = before["id"] if before is not None else f"new {index}"
        if values.get("is_default") is True:
            defaults[key] = values.get("name") or (before or {}).get("name", "")
            chosen.add(key)
        elif "is_default" in values:
            defaults.pop(key, None)
    if len(defaults) <= 1:
        return []
    others = ", ".join(f"'{name}'" for key, name in defaults.items() if key not in chosen) or "another"
    index = next(i for i, (_, values) in enumerate(writes) if values.get("is_default") is True)
    return [
        (
            index,
            "is_default",
            f"only one pipeline is the default, and {others} is; set its is_default to false "
            "in the same pipelines_update_many call.",
        )
    ]


PIPELINES = Entity(
    name="pipelines",
    singular="pipeline",
    table=Pipeline,
    description="Sales processes: each is an ordered set of stages that deals move through.",
    on_delete="Refused while it has stages: delete or move those first.",
    admin_writes=True,
    prepare=_one_default,
    example={"name": "Renewals", "currency": "EUR"},
    example_filter={"field": "active", "op": "eq", "value": True},
)

STAGES = Entity(
    name="stages",
    singular="stage",
    table=Stage,
    description="Steps of a pipeline, in order; a won or lost stage closes the deals moved into it.",
    on_delete="Refused while deals are in it: move them with deals_move first.",
    admin_writes=True,
    example={"pipeline_id": "<pipeline id>", "name": "Proposal made", "position": 3, "probability": 50},
    example_filter={"field": "pipeline_id", "op": "eq", "value": "<pipeline id>"},
)

# A new workspace's pipeline: (name, kind, probability)
DEFAULT_STAGES = (
    ("Qualified", "open", 10),
    ("Contact made", "open", 20),
    ("Proposal made", "open", 50),
    ("Negotiation", "open", 80),
    ("Won", "won", 100),
    ("Lost", "lost", 0),
)
