"""`associate`: attach, detach or sync the records linked to one record, for every many-to-many link."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, Field

from mcp_crm.catalog.models import DRY_RUN, IDEMPOTENCY_KEY, PREVIEW, ToolInput
from mcp_crm.catalog.tools import UPDATE, AppState, CrmTool, make_tool, once
from mcp_crm.entities import ENTITIES
from mcp_crm.operations import Actor
from mcp_crm.operations.associations import Mode, linked_pairs

PAIRS = linked_pairs()
Linkable = Literal[tuple(sorted({a for a, _ in PAIRS}))]  # type: ignore[valid-type]


class AssociateInput(ToolInput):
    from_type: Linkable = Field(description="The entity of the record whose links change.")  # type: ignore[valid-type]
    from_id: str = Field(max_length=36, description="That record's id.")
    to_type: Linkable = Field(description="The entity of the records to link or unlink.")  # type: ignore[valid-type]
    to_ids: list[str] = Field(max_length=500, description="Their ids (sync: the whole new set; [] removes all).")
    mode: Mode = Field(
        "attach", description="attach: add these links; detach: remove them; sync: make the set exactly these."
    )
    idempotency_key: str | None = IDEMPOTENCY_KEY[1]
    dry_run: bool = DRY_RUN[1]


class Endpoint(BaseModel):
    type: str
    id: str
    name: str


class Associated(BaseModel):
    record: Endpoint = Field(description="The from record, whose links changed.")
    to_type: str
    attached: list[str] = Field(description="Ids linked by this call (already linked ones are not repeated).")
    detached: list[str] = Field(description="Ids unlinked by this call.")
    linked_count: int = Field(description="How many to_type records are linked to it now.")
    preview: dict[str, Any] | None = PREVIEW[1]


async def associate(s: AppState, a: Actor, args: AssociateInput) -> dict[str, Any]:
    source, target = ENTITIES[args.from_type], ENTITIES[args.to_type]
    return await s.crm.associate(a, source, args.from_id, target, args.to_ids, args.mode, once(a, args))


def link_tools() -> list[CrmTool]:
    pairs = ", ".join(f"{a}-{b}" for a, b in PAIRS if a < b)
    return [
        make_tool(
            name="associate",
            title="Link or unlink records",
            description=(
                "Link records to one record, from either side, in one atomic call: attach adds links, detach "
                "removes them, sync makes the set exactly to_ids. Attaching a linked record or detaching an "
                f"unlinked one changes nothing, so repeating a call is safe. Linked pairs: {pairs}. Example: "
                '{"from_type": "organizations", "from_id": "<acme id>", "to_type": "contacts", '
                '"to_ids": ["<ada id>", "<bob id>"], "mode": "attach"}. Roles on memberships and line item '
                "prices are kept; set them with contacts_update or deals_update."
            ),
            handler=associate,
            arg_model=AssociateInput,
            output_model=Associated,
            annotations=UPDATE,
        )
    ]
