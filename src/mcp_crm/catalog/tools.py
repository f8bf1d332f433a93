"""Entity declarations -> MCP tools. Nothing here is written per entity."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from mcp.server.mcpserver import Context
from mcp.server.mcpserver.exceptions import ToolError, UnexpectedToolError
from mcp.server.mcpserver.tools import Tool
from mcp.server.mcpserver.utilities.func_metadata import FuncMetadata
from mcp_types import CallToolResult, TextContent, ToolAnnotations
from pydantic import BaseModel, Field, ValidationError
from pydantic_core import PydanticSerializationError, to_json

from mcp_crm.catalog.auth import caller
from mcp_crm.catalog.descriptions import describe
from mcp_crm.catalog.errors import explain
from mcp_crm.catalog.models import ToolInput, inputs, outputs
from mcp_crm.catalog.schemas import compact, output_schema
from mcp_crm.catalog.toolsets import Listing
from mcp_crm.entities import ENTITIES, Entity
from mcp_crm.errors import CrmError
from mcp_crm.operations import Actor, Crm, Idempotency, ListQuery
from mcp_crm.operations.idempotency import fingerprint
from mcp_crm.operations.preview import CONFIRM_ABOVE, dry_run, in_words, preview_of
from mcp_crm.operations.records import title_of
from mcp_crm.store.types import json_text

log = logging.getLogger("mcp_crm")

Handler = Callable[["AppState", Actor, Any], Awaitable[dict[str, Any]]]


@dataclass
class AppState:
    """What every tool call needs: the operations layer and who is acting."""

    crm: Crm
    actor: Actor | None  # the local user (stdio, --no-auth HTTP); None when every call brings a credential
    listing: Listing  # which of the server's tools tools/list shows now (catalog/toolsets.py)


class CrmTool(Tool):
    """A tool whose arguments are one pydantic model and whose errors are written for the model:
    validation problems name the field and the valid choices; crashes are logged and never shown."""

    scopes: frozenset[str] = Field(frozenset(), exclude=True)  # what a credential needs to call it

    async def run(self, arguments: dict[str, Any], context: Context, convert_result: bool = False) -> Any:
        model = self.fn_metadata.arg_model
        if where := _nul_in(arguments):
            raise ToolError(f"{where}: text cannot contain the NUL character (\\u0000); remove it and retry.")
        try:
            args = model.model_validate(self.fn_metadata.pre_parse_json(arguments))
        except ValidationError as exc:
            raise ToolError(explain(exc, model)) from exc
        state: AppState = context.request_context.lifespan_context
        try:
            actor, scopes = caller(state.actor)
            if missing := sorted(self.scopes - scopes):
                raise CrmError(
                    f"{self.name} needs the {' and '.join(missing)} scope; this credential has "
                    f"{', '.join(sorted(scopes)) or 'none'}. Ask a workspace admin for a key that has it, or "
                    "reconnect the app and allow it on the sign-in page."
                )
            structured = await self._guarded(state, actor.using(self.name), args)
        except CrmError as exc:
            raise ToolError(str(exc)) from exc
        except Exception as exc:
            raise UnexpectedToolError(
                f"{self.name} failed with an internal error (logged on the server); the call was rolled back."
            ) from exc
        # Returned as is, even when the SDK asks for `convert_result`: for a CallToolResult that only validates
        # the structured content against the output model once more (~40 us of a contacts_get), and the results
        # are records the operations layer already validated with the same models (to_output) or shapes the
        # tests check against the outputSchema, as every client that validates does.
        return CallToolResult(
            content=[TextContent(type="text", text=json_text(marked(structured)))],
            structured_content=structured,
        )

    async def _guarded(self, state: AppState, actor: Actor, args: Any) -> dict[str, Any]:
        """Runs the call; a dry run returns what it would do instead, and a bulk write of more than
        CONFIRM_ABOVE records needs the confirm token its dry run returns. A call whose size shows only once it
        runs (a list's members removed by filter) is rehearsed first, unless it brings a valid token."""
        touches = self._touches(args)
        measured = touches is None
        needs_token = touches is None or touches > CONFIRM_ABOVE
        if not getattr(args, "dry_run", False):
            request = request_of(self.name, args) if needs_token else ""
            if not needs_token or await state.crm.confirmed(actor, request, args.confirm):
                return await self.fn(state, actor, args)
        with dry_run() as journal:
            structured = await self.fn(state, actor, args)
        preview = preview_of(journal)
        if measured:
            needs_token = args.touched(structured) > CONFIRM_ABOVE
            if not needs_token and not args.dry_run:
                return await self.fn(state, actor, args)
        if needs_token:
            preview["confirm"] = await state.crm.confirm_token(actor, request_of(self.name, args))
        if args.dry_run:
            return structured | {"preview": preview}
        what = args.touched_words(structured) if hasattr(args, "touched_words") else in_words(preview)
        raise CrmError(
            f"Not done: this call would {what}, more than {CONFIRM_ABOVE} records. Nothing was changed. "
            f'To go ahead, call {self.name} again with the same arguments and confirm: "{preview["confirm"]}" '
            "(valid for 10 minutes); add dry_run: true to see each change first."
        )

    @property
    def confirms(self) -> bool:
        return "confirm" in self.fn_metadata.arg_model.model_fields

    def _touches(self, args: Any) -> int | None:
        """How many records the call writes, when its arguments say (ids, items); None when only running it
        tells (the arguments' touches() says so, and their touched(result) counts them)."""
        if not self.confirms:
            return 0
        if hasattr(args, "touches"):
            return args.touches()
        return len(getattr(args, "ids", None) or getattr(args, "items", None) or [])


def _nul_in(value: Any, path: str = "arguments") -> str | None:
    """Where a NUL character hides in the arguments (no database stores one in text), or None."""
    if isinstance(value, str):
        return path if "\x00" in value else None
    if not isinstance(value, dict | list):
        return None
    # JSON writes a NUL as \u0000, so a value whose JSON lacks it holds none and is not walked: one pass in C
    # instead of a call per value. A literal "\u0000" in text, or a value JSON cannot write (nested too deep,
    # not a JSON type), only costs the walk.
    with contextlib.suppress(PydanticSerializationError):
        if b"\\u0000" not in to_json(value):
            return None
    if isinstance(value, dict):
        return next((w for k, v in value.items() if (w := _nul_in(k, path) or _nul_in(v, f"{path}.{k}"))), None)
    return next((w for i, v in enumerate(value) if (w := _nul_in(v, f"{path}[{i}]"))), None)


UNTRUSTED_FIELDS = frozenset(n for e in ENTITIES.values() for n, f in e.fields.items() if f.untrusted) | {
    "snippet",  # search results and fetched records quote the records' free text (search_tools.py)
    "text",
}
OPEN, CLOSE = "<untrusted-data>", "</untrusted-data>"
FAKE_OPEN, FAKE_CLOSE = "<untrusted-data\u200b>", "</untrusted-data\u200b>"  # markers found inside the text itself


def marked(value: Any, untrusted: bool = False) -> Any:
    """The structured result for the text channel: free text from outside (notes, descriptions, also inside
    audit and preview entries) wrapped in markers that the text itself cannot close or fake."""
    if isinstance(value, str):
        if not untrusted:
            return value
        return OPEN + value.replace(OPEN, FAKE_OPEN).replace(CLOSE, FAKE_CLOSE) + CLOSE
    if isinstance(value, dict):
        return {k: marked(v, untrusted or k in UNTRUSTED_FIELDS) for k, v in value.items()}
    if isinstance(value, list):
        return [marked(v, untrusted) for v in value]
    return value


BULK_SUFFIXES = ("_create_many", "_update_many")  # their items are described once, by the single-record tool


READ = ToolAnnotations(read_only_hint=True, open_world_hint=False)
WRITE = ToolAnnotations(read_only_hint=False, destructive_hint=False, idempotent_hint=False, open_world_hint=False)
UPDATE = ToolAnnotations(read_only_hint=False, destructive_hint=False, idempotent_hint=True, open_world_hint=False)
DELETE = ToolAnnotations(read_only_hint=False, destructive_hint=True, idempotent_hint=False, open_world_hint=False)


CONTROL_ARGUMENTS = {"idempotency_key", "dry_run", "confirm"}  # how to run a write, not what it writes


def request_of(tool: str, args: BaseModel) -> str:
    return fingerprint(tool, args.model_dump(mode="json", exclude=CONTROL_ARGUMENTS))


def once(actor: Actor, args: Any) -> Idempotency | None:
    """The idempotency of a write call: its key, and a fingerprint of the tool and everything else it was sent."""
    if args.idempotency_key is None:
        return None
    return Idempotency(key=args.idempotency_key, request=request_of(actor.tool or "", args))


def summarised(entity: Entity, records: list[dict[str, Any]]) -> dict[str, Any]:
    """Bulk results name each record instead of repeating all of it: cheap to read, and get has the rest."""
    items = [{"id": r["id"], "name": title_of(entity, r)} for r in records]
    return {"items": items, "count": len(items)}


def entity_handlers(entity: Entity) -> dict[str, tuple[Handler, ToolAnnotations]]:
    def listing(args: Any) -> ListQuery:
        return ListQuery(
            filter=args.filter,
            sort=args.sort,
            limit=args.limit,
            cursor=args.cursor,
            fields=args.fields,
            q=args.q,
            include_total=args.include_total,
            search_fields=args.search_fields,
            match=args.match,
        )

    async def create(s: AppState, a: Actor, args: Any) -> dict[str, Any]:
        return await s.crm.create(a, entity, args, once(a, args))

    async def create_many(s: AppState, a: Actor, args: Any) -> dict[str, Any]:
        return summarised(entity, await s.crm.create_many(a, entity, args.items, once(a, args)))

    async def get(s: AppState, a: Actor, args: Any) -> dict[str, Any]:
        return await s.crm.get(a, entity, args.id)

    async def list_(s: AppState, a: Actor, args: Any) -> dict[str, Any]:
        page = await s.crm.list(a, entity, listing(args))
        result: dict[str, Any] = {
            "items": page.items,
            "has_more": page.has_more,
            "next_cursor": page.next_cursor,
        }
        if page.total is not None:
            result["total"] = page.total
        return result

    async def update(s: AppState, a: Actor, args: Any) -> dict[str, Any]:
        return await s.crm.update(a, entity, args.id, args, once(a, args))

    async def update_many(s: AppState, a: Actor, args: Any) -> dict[str, Any]:
        changes = [(item.id, item) for item in args.items]
        return summarised(entity, await s.crm.update_many(a, entity, changes, once(a, args)))

    async def delete(s: AppState, a: Actor, args: Any) -> dict[str, Any]:
        return {"deleted": await s.crm.delete(a, entity, args.id, args.expected_revision, once(a, args))}

    async def delete_many(s: AppState, a: Actor, args: Any) -> dict[str, Any]:
        records = await s.crm.delete_many(a, entity, args.ids, once(a, args))
        return {"deleted_ids": [r["id"] for r in records], "count": len(records)}

    async def restore(s: AppState, a: Actor, args: Any) -> dict[str, Any]:
        restored = await s.crm.restore(a, entity, args.ids, once(a, args))
        return summarised(entity, restored["records"]) | {"notes": restored["notes"]}

    async def config(s: AppState, a: Actor, args: Any) -> dict[str, Any]:
        return await s.crm.config(a, entity)

    return {
        "create": (create, WRITE),
        "create_many": (create_many, WRITE),
        "get": (get, READ),
        "list": (list_, READ),
        "update": (update, UPDATE),
        "update_many": (update_many, UPDATE),
        "delete": (delete, DELETE),
        "delete_many": (delete_many, DELETE),
        "restore": (restore, WRITE),
        "config": (config, READ),
    }


TITLES = {
    "create": "Create {one}",
    "create_many": "Create many {many}",
    "get": "Get {one}",
    "list": "List {many}",
    "update": "Update {one}",
    "update_many": "Update many {many}",
    "delete": "Delete {one}",
    "delete_many": "Delete many {many}",
    "restore": "Restore {many}",
    "config": "Describe {many} fields",
}


def make_tool(
    name: str,
    title: str,
    description: str,
    handler: Handler,
    arg_model: type[ToolInput],
    output_model: type[BaseModel],
    annotations: ToolAnnotations,
    admin: bool = False,
    scope: str | None = None,
) -> CrmTool:
    """A tool; the scope it needs follows from its annotations (read, write or delete), plus admin, unless
    `scope` names it (send, for email_send: its annotations say write, yet a key that may write may not send)."""
    scope = scope or ("read" if annotations.read_only_hint else "delete" if annotations.destructive_hint else "write")
    return CrmTool(
        scopes=frozenset({scope, "admin"} if admin else {scope}),
        fn=handler,
        name=name,
        title=title,
        description=description,
        parameters=compact(arg_model.model_json_schema(), brief_items=name.endswith(BULK_SUFFIXES)),
        fn_metadata=FuncMetadata(
            arg_model=arg_model,
            output_model=output_model,
            output_schema=output_schema(output_model.model_json_schema(mode="serialization")),
        ),
        is_async=True,
        annotations=annotations.model_copy(update={"title": title}),
    )


def entity_tools(entity: Entity) -> list[CrmTool]:
    ins, outs = inputs(entity), outputs(entity)
    return [
        make_tool(
            name=f"{entity.name}_{verb}",
            title=TITLES[verb].format(one=entity.singular, many=entity.name),
            description=describe(entity, verb),
            handler=handler,
            arg_model=ins[verb],
            output_model=outs[verb],
            annotations=annotations,
            admin=entity.admin_writes and not annotations.read_only_hint,
        )
        for verb, (handler, annotations) in entity_handlers(entity).items()
    ]
