"""Every record as an MCP resource, `crm://<entity>/<id>` (JSON), with one resource template per entity, so
hosts that attach resources can use the records `search` and `fetch` point at."""

from __future__ import annotations

from typing import Any

from mcp.server.mcpserver import Context, MCPServer
from mcp.server.mcpserver.exceptions import ResourceError

from mcp_crm.catalog.auth import caller
from mcp_crm.catalog.tools import AppState, marked
from mcp_crm.entities import ENTITIES, Entity
from mcp_crm.errors import CrmError
from mcp_crm.store.types import json_text


def add_record_resources(server: MCPServer[AppState]) -> None:
    for entity in ENTITIES.values():
        server.resource(
            f"crm://{entity.name}/{{id}}",
            name=entity.singular.replace(" ", "_"),
            title=f"A {entity.singular}",
            description=f"One {entity.singular} as {entity.name}_get returns it, with its links. {entity.description}",
            mime_type="application/json",
        )(_reader(entity))


def _reader(entity: Entity) -> Any:
    async def read(id: str, ctx: Context) -> str:
        state: AppState = ctx.request_context.lifespan_context
        try:
            actor, scopes = caller(state.actor)
            if "read" not in scopes:
                raise CrmError("Reading records needs the read scope.")
            record = await state.crm.get(actor.using("resources/read"), entity, id)
        except CrmError as exc:
            raise ResourceError(str(exc)) from exc
        return json_text(marked(record))

    return read
