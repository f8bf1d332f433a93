"""Toolsets: the catalog in named groups, so a model is shown what it needs rather than all 189 tools at once.

Every tool belongs to one toolset: its entity's (contacts_merge is in contacts), `core` (the overview, search and
history across entities) or one of the groups below. The operator chooses the toolsets a server serves
(`--toolsets`; every one by default). A server started without that choice over stdio lists only DEFAULT at
first - what Cursor's and VS Code's tool budgets and a model's context can take - and `toolsets_enable` lists
more when the task needs them, telling the client with notifications/tools/list_changed (`Listing`)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

from mcp.server.mcpserver import Context
from mcp.server.session import ServerSession
from pydantic import BaseModel, Field

from mcp_crm.catalog.models import ToolInput
from mcp_crm.entities import ENTITIES
from mcp_crm.errors import CrmError, unknown

CORE = ("crm_schema", "crm_summary", "users_me", "search", "fetch", "associate", "timeline", "trash_list")
GROUPS = {  # toolsets that are not an entity's: what they are for, and their tools (a name ending in _ is a prefix)
    "core": ("the overview, search, links and history across entities, who is acting", CORE),
    "webhooks": ("subscriptions that POST each change to a URL, their delivery log", ("webhook_", "webhooks_")),
    "email": ("SMTP connections, sending email to contacts and lists", ("email_",)),
    "import": ("import_rows: many records from spreadsheet-like rows", ("import_rows",)),
    "admin": ("the audit log of every change, erasing deleted records for good", ("audit_list", "trash_purge")),
}
DEFAULT = ("core", "contacts", "organizations", "deals", "tasks", "activities", "notes")
ALL = "all"
ENABLE_TOOL = "toolsets_enable"  # in core, served only where the list starts with DEFAULT


def entity_of(tool: str) -> str | None:
    """The entity a tool belongs to: the longest entity name it starts with (activity_types_list)."""
    return max((e for e in ENTITIES if tool.startswith(f"{e}_")), key=len, default=None)


def toolset_of(tool: str) -> str:
    if tool in CORE or tool == ENABLE_TOOL:
        return "core"
    if (entity := entity_of(tool)) is not None:
        return entity
    for name, (_, members) in GROUPS.items():
        if any(tool == m or (m.endswith("_") and tool.startswith(m)) for m in members):
            return name
    raise ValueError(f"{tool} belongs to no toolset; add it to GROUPS in catalog/toolsets.py")


def toolset_names() -> list[str]:
    return [*GROUPS, *ENTITIES]


def description_of(toolset: str) -> str:
    return GROUPS[toolset][0].capitalize() + "." if toolset in GROUPS else ENTITIES[toolset].description


def checked(names: Iterable[str]) -> list[str]:
    """The toolsets named (`all` for every one), each checked: an unknown name gets the closest match."""
    names = list(names)
    if ALL in names:
        return toolset_names()
    for name in names:
        if name not in toolset_names():
            raise unknown("toolset", name, [*toolset_names(), ALL])
    return names


@dataclass
class Listing:
    """Which of a server's tools tools/list shows now. `dynamic`: it starts with DEFAULT and `toolsets_enable` adds
    toolsets; otherwise it shows every tool served. One per server: over stdio, one per client."""

    served: dict[str, list[str]]  # toolset -> the names of its tools this server serves
    dynamic: bool
    listed: set[str] = field(default_factory=set)
    changed: bool = False  # since the client was last told

    @classmethod
    def of(cls, tool_names: Sequence[str], dynamic: bool) -> Listing:
        served: dict[str, list[str]] = {}
        for name in tool_names:
            served.setdefault(toolset_of(name), []).append(name)
        listing = cls(served, dynamic)
        listing.listed = {t for t in served if t in DEFAULT} if dynamic else set(served)
        return listing

    def shows(self, tool: str) -> bool:
        """A tool the server got from elsewhere than the catalog (in no toolset) is always shown."""
        toolset = self._toolset_by_tool.get(tool)
        return toolset is None or toolset in self.listed

    @cached_property
    def _toolset_by_tool(self) -> dict[str, str]:
        return {tool: toolset for toolset, tools in self.served.items() for tool in tools}

    def enable(self, toolsets: Sequence[str]) -> list[str]:
        """Lists these toolsets' tools too (`all`: every one served); returns the tools newly listed."""
        names = list(self.served) if ALL in toolsets else checked(toolsets)
        if missing := [n for n in names if n not in self.served]:
            raise CrmError(
                f"This server does not serve the toolsets {', '.join(missing)} (its operator chose "
                f"{', '.join(self.served)} with --toolsets); nothing was changed."
            )
        new = [n for n in names if n not in self.listed]
        self.listed.update(new)
        self.changed = self.changed or bool(new)
        return [tool for toolset in new for tool in self.served[toolset]]

    def overview(self) -> list[str]:
        """The toolsets served, on (listed) and off, in a line each; a group that is off says what it is for
        (crm_schema describes the entities)."""
        served = [name for name in toolset_names() if name in self.served]
        on = [name for name in served if name in self.listed]
        off = [name + (f" ({GROUPS[name][0]})" if name in GROUPS else "") for name in served if name not in on]
        return [f"on: {', '.join(on)}"] + ([f"off (toolsets_enable lists them): {'; '.join(off)}"] if off else [])


class ToolsetsInput(ToolInput):
    toolsets: list[str] = Field(
        min_length=1,
        description='Toolsets to list too, e.g. ["pipelines", "stages"]; "all" for every one. crm_schema shows '
        "each toolset, whether it is on and what it is for.",
    )


class ToolsetsEnabled(BaseModel):
    enabled: list[str] = Field(description="The tools now listed that were not before.")
    toolsets: list[str] = Field(description="The server's toolsets now on, and those still off.")
    next: str


def enable_result(listing: Listing, toolsets: Sequence[str]) -> dict[str, Any]:
    enabled = listing.enable(toolsets)
    return {
        "enabled": enabled,
        "toolsets": listing.overview(),
        "next": "The client was told the tool list changed; call the new tools by name. If they do not appear "
        "(a client that ignores the notice), the user can add --toolsets all to the server's arguments."
        if enabled
        else "They were already listed; nothing changed.",
    }


async def tell_tools_changed(context: Context[Any, Any]) -> None:
    """notifications/tools/list_changed: on the session of a 2025-era client, and to the subscriptions/listen
    streams of a 2026 one."""
    await context.notify_tools_changed()
    session = context.request_context.session
    if isinstance(session, ServerSession):
        await session.send_tool_list_changed()
