"""`crm_schema`: the whole CRM in a few hundred tokens, for a model to read before it acts."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field

from mcp_crm.catalog.models import NoArguments
from mcp_crm.catalog.tools import READ, AppState, CrmTool, make_tool
from mcp_crm.entities import ENTITIES, Entity, Kind
from mcp_crm.operations import Actor


class CrmSchema(BaseModel):
    entities: list[str] = Field(description="Each entity: what it holds, what a create needs, what it links to.")
    custom_fields: dict[str, list[str]] = Field(description="This workspace's custom fields per entity: key (type).")
    verbs: list[str] = Field(
        description="Tools beyond each entity's create(_many)/get/list/update(_many)/delete(_many)/config/restore."
    )
    toolsets: list[str] = Field(description="The server's toolsets: those on (listed) and those off.")
    next: str


SETUP = [e.name for e in ENTITIES.values() if e.admin_writes]
STANDARD = {"create", "create_many", "get", "list", "update", "update_many", "delete", "delete_many", "config"}


def _verbs(served: list[str]) -> list[str]:
    standard = {f"{e}_{verb}" for e in ENTITIES for verb in STANDARD}
    return [name for name in served if name not in standard and not name.endswith("_restore")]


def _line(entity: Entity) -> str:
    """`deals: Sales opportunities... Needs name. Links: organization_ids -> organizations, ...`"""
    needs = [n for n, f in entity.writable.items() if f.required]
    links = [
        f"{n} -> {f.target}"
        for n, f in entity.writable.items()
        if f.kind in (Kind.relation, Kind.relations) and f.target and f.target != "users"
    ]
    parts = [f"{entity.name}: {entity.description}", f"Needs {', '.join(needs)}."]
    return " ".join(parts + ([f"Links: {', '.join(links)}."] if links else []))


async def crm_schema(s: AppState, a: Actor, args: Any) -> dict[str, Any]:
    custom: dict[str, list[str]] = {}
    for field in await s.crm.custom_fields(a):
        custom.setdefault(field["entity"], []).append(f"{field['key']} ({field['type']})")
    listing = s.listing
    return {
        "entities": [_line(e) for e in ENTITIES.values()],
        "custom_fields": custom,
        "verbs": _verbs([name for tools in listing.served.values() for name in tools]),
        "toolsets": listing.overview(),
        "next": "owner_id, assignee_id and author_id point to users. Call <entity>_config for an entity's fields, "
        f"filter operators and custom fields. Setup data (admins change it): {', '.join(SETUP)}.",
    }


def schema_tools() -> list[CrmTool]:
    return [
        make_tool(
            name="crm_schema",
            title="Overview of the CRM",
            description=(
                "Read this first: every entity in a line, the fields a create needs, what each references, this "
                "workspace's custom fields, the verbs beyond create/get/list/update/delete and the toolsets listed."
            ),
            handler=crm_schema,
            arg_model=NoArguments,
            output_model=CrmSchema,
            annotations=READ,
        )
    ]
