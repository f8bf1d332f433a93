"""Tools about the workspace rather than one entity: who is acting, the trash, the audit log."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from functools import cache
from typing import Any, Literal

from pydantic import BaseModel, Field, create_model

from mcp_crm.catalog.dashboard_tools import dashboard_tools
from mcp_crm.catalog.descriptions import FILTER_SYNTAX
from mcp_crm.catalog.email_tools import email_tools
from mcp_crm.catalog.import_tools import import_tools
from mcp_crm.catalog.link_tools import link_tools
from mcp_crm.catalog.list_member_tools import list_member_tools
from mcp_crm.catalog.merge_tools import merge_tools
from mcp_crm.catalog.models import DRY_RUN, IDEMPOTENCY_KEY, MAX_BULK, PREVIEW, NoArguments, ToolInput, outputs
from mcp_crm.catalog.pipeline_tools import pipeline_tools
from mcp_crm.catalog.schema_tools import schema_tools
from mcp_crm.catalog.search_tools import search_tools
from mcp_crm.catalog.timeline_tools import timeline_tools
from mcp_crm.catalog.tools import DELETE, READ, AppState, CrmTool, entity_tools, make_tool, once
from mcp_crm.catalog.toolsets import (
    ENABLE_TOOL,
    ToolsetsEnabled,
    ToolsetsInput,
    checked,
    enable_result,
    toolset_of,
)
from mcp_crm.catalog.webhook_tools import webhook_tools
from mcp_crm.entities import ENTITIES
from mcp_crm.entities.models import Summary
from mcp_crm.errors import CrmError, unknown
from mcp_crm.operations import Actor
from mcp_crm.operations.audit import AUDIT
from mcp_crm.operations.reads import DEFAULT_LIMIT, MAX_LIMIT
from mcp_crm.query import FilterNode

EntityName = Literal[tuple(ENTITIES)]  # type: ignore[valid-type]


async def users_me(s: AppState, a: Actor, args: Any) -> dict[str, Any]:
    if a.user_id is None:
        raise CrmError("No user is acting in this session.")
    return await s.crm.get(a, ENTITIES["users"], a.user_id)


class TrashListInput(ToolInput):
    entity: EntityName | None = Field(None, description="Only this entity's deleted records.")
    limit: int = Field(DEFAULT_LIMIT, ge=1, le=MAX_LIMIT, description=f"Page size, 1-{MAX_LIMIT}.")
    cursor: str | None = Field(None, pattern=r"^[0-9a-f-]{36}$", description="next_cursor from the previous page.")


class Trashed(Summary):
    entity: str
    deleted_at: datetime
    deleted_by: str | None = Field(description="The user who deleted it.")
    purge_after: datetime = Field(description="When it will be deleted for good.")


class TrashPage(BaseModel):
    items: list[Trashed]
    has_more: bool
    next_cursor: str | None = None


async def trash_list(s: AppState, a: Actor, args: TrashListInput) -> dict[str, Any]:
    entity = ENTITIES[args.entity] if args.entity else None
    items, next_cursor = await s.crm.trash(a, entity, args.limit, args.cursor)
    page = TrashPage.model_validate({"items": items, "has_more": next_cursor is not None, "next_cursor": next_cursor})
    return page.model_dump(mode="json")


TrashPurgeInput = create_model(
    "TrashPurgeInput",
    __base__=ToolInput,
    ids=(
        list[str],
        Field(min_length=1, max_length=MAX_BULK, description="Ids of deleted records (any entity) to erase."),
    ),
    idempotency_key=IDEMPOTENCY_KEY,
    dry_run=DRY_RUN,
)


class Purged(BaseModel):
    items: list[Summary] = Field(description="Each record erased: entity, id and name.")
    count: int
    preview: dict[str, Any] | None = PREVIEW[1]


async def trash_purge(s: AppState, a: Actor, args: Any) -> dict[str, Any]:
    purged = await s.crm.purge(a, args.ids, once(a, args))
    return {"items": purged, "count": len(purged)}


class AuditListInput(ToolInput):
    filter: FilterNode | None = Field(None, description="A filter tree over the fields below; omit for all.")
    limit: int = Field(DEFAULT_LIMIT, ge=1, le=MAX_LIMIT, description=f"Page size, 1-{MAX_LIMIT}.")
    cursor: str | None = Field(None, pattern=r"^[0-9a-f-]{36}$", description="next_cursor from the previous page.")


class AuditEntry(BaseModel):
    id: str
    occurred_at: datetime
    entity: str
    record_id: str
    action: str = Field(description="created, updated, deleted (to the trash), restored or purged.")
    user_id: str | None = Field(description="Who made the change.")
    via: str = Field(description="stdio, http, cli or worker.")
    credential_id: str | None = Field(description="The API key used (its id), in hosted mode.")
    tool: str | None
    before: dict[str, Any] | None = Field(description="Updates: the changed fields' old values; deletes: the record.")
    after: dict[str, Any] | None = Field(description="Updates: the changed fields' new values; creates: the record.")


class AuditPage(BaseModel):
    items: list[AuditEntry]
    has_more: bool
    next_cursor: str | None = None


async def audit_list(s: AppState, a: Actor, args: AuditListInput) -> dict[str, Any]:
    items, next_cursor = await s.crm.audit(a, args.filter, args.limit, args.cursor)
    page = AuditPage.model_validate({"items": items, "has_more": next_cursor is not None, "next_cursor": next_cursor})
    return page.model_dump(mode="json")


AUDIT_FIELDS = ", ".join(
    f"{name} ({'|'.join(f.enum) if f.enum else f.kind.value})" for name, f in AUDIT.fields.items() if f.filterable
)


@cache
def all_tools() -> tuple[CrmTool, ...]:
    """The whole catalog (built once: tools hold no state, so servers share them)."""
    tools = [tool for entity in ENTITIES.values() for tool in entity_tools(entity)]
    tools += pipeline_tools()
    tools += search_tools()
    tools += link_tools()
    tools += merge_tools()
    tools += list_member_tools()
    tools += import_tools()
    tools += schema_tools()
    tools += timeline_tools()
    tools += dashboard_tools()
    tools += webhook_tools()
    tools += email_tools()
    tools += [
        make_tool(
            name="users_me",
            title="Who am I",
            description="The user this session acts as: the owner of records you create unless you set owner_id.",
            handler=users_me,
            arg_model=NoArguments,
            output_model=outputs(ENTITIES["users"])["get"],
            annotations=READ,
        ),
        make_tool(
            name="trash_list",
            title="List the trash",
            description=(
                "Deleted records, most recently deleted first: entity, id, name, who deleted it and when it will "
                "be erased. Bring one back with <entity>_restore(ids), e.g. contacts_restore."
            ),
            handler=trash_list,
            arg_model=TrashListInput,
            output_model=TrashPage,
            annotations=READ,
        ),
        make_tool(
            name="trash_purge",
            title="Erase from the trash",
            description=(
                "Erase deleted records for good, now, instead of after the retention period. This cannot be "
                "undone: only do it when the user asks to."
            ),
            handler=trash_purge,
            arg_model=TrashPurgeInput,
            output_model=Purged,
            annotations=DELETE,
            admin=True,
        ),
        make_tool(
            name="audit_list",
            title="Read the audit log",
            description=(
                "Every committed change in the workspace, newest first: when, who, via which tool and credential, "
                f"and each field before and after. {FILTER_SYNTAX} Filterable: {AUDIT_FIELDS}. Example: "
                '{"and": [{"field": "record_id", "op": "eq", "value": "<id>"}, '
                '{"field": "occurred_at", "op": "gte", "value": "2026-01-01T00:00:00Z"}]}.'
            ),
            handler=audit_list,
            arg_model=AuditListInput,
            output_model=AuditPage,
            annotations=READ,
            admin=True,
        ),
    ]
    return tuple(tools)


def select_tools(
    read_only: bool = False, toolsets: Sequence[str] = (), names: Sequence[str] = ()
) -> tuple[CrmTool, ...]:
    """The tools a server serves: only read tools with `read_only`; only these toolsets' tools (and core's; `all`
    for every one) with `toolsets`; exactly `names` when given."""
    chosen = all_tools()
    known = {t.name for t in chosen}
    for name in names:
        if name not in known:
            raise unknown("tool", name, sorted(known))
    wanted = {*checked(toolsets), "core"}
    if names:
        chosen = tuple(t for t in chosen if t.name in names)
    if toolsets:
        chosen = tuple(t for t in chosen if toolset_of(t.name) in wanted)
    if read_only:
        chosen = tuple(t for t in chosen if t.annotations and t.annotations.read_only_hint)
    return chosen


async def toolsets_enable(s: AppState, a: Actor, args: ToolsetsInput) -> dict[str, Any]:
    return enable_result(s.listing, args.toolsets)


@cache
def toolsets_tool() -> CrmTool:
    """Served where the tool list starts with the default toolsets (stdio without --toolsets)."""
    return make_tool(
        name=ENABLE_TOOL,
        title="List more tools",
        description=(
            "This server lists a few toolsets at first (contacts, organizations, deals, tasks, activities, notes "
            'and the overview); call this to list more, e.g. {"toolsets": ["pipelines", "stages"]} to '
            'set up or move deals between stages, ["leads", "lead_stages"], ["services"], ["lists"], '
            '["webhooks"], ["email"] or ["all"]. crm_schema shows every toolset and whether it is on.'
        ),
        handler=toolsets_enable,
        arg_model=ToolsetsInput,
        output_model=ToolsetsEnabled,
        annotations=READ.model_copy(update={"idempotent_hint": True}),
    )
