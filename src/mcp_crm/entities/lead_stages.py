"""Lead stages: the workspace's one ordered list of steps a lead goes through before it is worth a deal."""

from typing import Literal, get_args

from sqlalchemy import String, UniqueConstraint
from sqlmodel import Field

from mcp_crm.entities.spec import Count, Entity, Record, meta, workspace_indexes

# colour keys a client maps to its own palette
Color = Literal["gray", "blue", "teal", "green", "yellow", "orange", "red", "purple", "pink"]
COLORS: tuple[str, ...] = get_args(Color)


class LeadStage(Record, table=True):
    __tablename__ = "lead_stages"
    __table_args__ = (
        *workspace_indexes("lead_stages", "position", "name", "kind"),
        UniqueConstraint("workspace_id", "name", name="uq_lead_stages_name"),
    )

    name: str = Field(
        min_length=1,
        max_length=100,
        description="e.g. Contacted; unique in the workspace.",
        schema_extra=meta(unique=True),
    )
    position: int = Field(1, ge=1, le=1000, description="Order in the list, 1 first; see lead_stages_reorder.")
    kind: Literal["open", "won", "lost"] = Field(
        "open",
        sa_type=String(10),
        description="open: still being worked (new leads start in the first open stage); won or lost: done with.",
    )
    color: Color = Field("gray", sa_type=String(10), description="Colour key for showing the stage.")
    probability: int | None = Field(
        None, ge=0, le=100, description="Default chance that a lead in this stage becomes business, in percent."
    )


LEAD_STAGES = Entity(
    name="lead_stages",
    singular="lead stage",
    table=LeadStage,
    description="The workspace's steps for leads, in order (New, Contacted, ...); leads_move moves a lead.",
    on_delete="Refused while leads are in it: move them with leads_move first.",
    admin_writes=True,
    counts=(
        Count(
            name="lead_count",
            entity="leads",
            field="stage_id",
            description="How many leads are in this stage (archived and converted ones too).",
        ),
    ),
    example={"name": "Meeting booked", "position": 3, "kind": "open", "color": "teal", "probability": 30},
    example_filter={"field": "kind", "op": "eq", "value": "open"},
)

# A new workspace's lead stages: (name, kind, colour, probability)
DEFAULT_LEAD_STAGES = (
    ("New", "open", "blue", 10),
    ("Contacted", "open", "yellow", 20),
    ("Qualified", "open", "green", 40),
    ("Unqualified", "lost", "gray", 0),
    ("Converted", "won", "teal", 100),  # where leads_convert moves a lead
)
