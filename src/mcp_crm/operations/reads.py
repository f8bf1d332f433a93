"""get and list for any entity."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from sqlalchemy import Connection, and_, func, select

from mcp_crm.entities import Entity, FieldSpec
from mcp_crm.entities.custom import definitions, field_spec
from mcp_crm.entities.names import reference_names
from mcp_crm.errors import CrmError, unknown
from mcp_crm.operations.actor import Actor
from mcp_crm.operations.records import (
    not_found,
    row_with_related,
    table_of,
    to_output,
    with_counts,
    with_links,
    without_removed_fields,
)
from mcp_crm.query import (
    FilterNode,
    SortKey,
    compile_filter,
    keyset_after,
    make_cursor,
    order_by,
    read_cursor,
)
from mcp_crm.query.filters import CustomFields
from mcp_crm.query.pages import fingerprint, resolve_sort
from mcp_crm.search import text_condition

DEFAULT_LIMIT = 25
MAX_LIMIT = 200


@dataclass
class ListQuery:
    filter: FilterNode | None = None
    sort: list[SortKey] | None = None
    limit: int = DEFAULT_LIMIT
    cursor: str | None = None
    fields: list[str] | None = None
    q: str | None = None
    include_total: bool = False
    search_fields: list[str] | None = None  # only these fields for q
    match: Literal["all", "any"] = "all"  # q's words: every one, or any one


@dataclass
class ListPage:
    items: list[dict[str, Any]]
    has_more: bool
    next_cursor: str | None
    total: int | None = None


def selected_fields(entity: Entity, fields: list[str] | None) -> set[str] | None:
    """Output keys for a `fields` argument (link inputs map to their summaries); None means all."""
    if not fields:
        return None
    names = {link.input: link.name for link in entity.links}
    valid = [n for n in entity.fields if n not in names] + [link.name for link in entity.links]
    valid += [count.name for count in entity.counts]
    chosen = set()
    for name in fields:
        name = names.get(name, name)
        if name not in valid:
            raise unknown("field", name, valid)
        chosen.add(name)
    return chosen


def _custom_fields(conn: Connection, actor: Actor, entity: Entity) -> CustomFields | None:
    """Resolves `custom.<key>` names of filters and sorts (entities that take custom fields only)."""
    if "custom" not in entity.fields:
        return None
    defined: list[dict[str, dict[str, Any]]] = []  # read once, and only when a filter or sort names one

    def resolve(name: str) -> FieldSpec:
        if not defined:
            defined.append(definitions(conn, actor.workspace_id, entity))
        return field_spec(defined[0], entity, name)

    return resolve


def get_record(conn: Connection, actor: Actor, entity: Entity, record_id: str) -> dict[str, Any]:
    """One record with its links, plus `related`: the id and name behind each of its *_id fields."""
    row = row_with_related(conn, actor, entity, record_id)
    if row is None:
        raise not_found(entity, [record_id])
    with_links(conn, entity, [row])
    without_removed_fields(conn, entity, [row])
    return to_output(entity, row) | {"related": row["related"]}


def list_records(conn: Connection, actor: Actor, entity: Entity, query: ListQuery) -> ListPage:
    if not 1 <= query.limit <= MAX_LIMIT:
        raise CrmError(f"limit must be between 1 and {MAX_LIMIT} (default {DEFAULT_LIMIT}).")
    chosen = selected_fields(entity, query.fields)
    table = table_of(entity)
    custom = _custom_fields(conn, actor, entity)
    keys = resolve_sort(entity, query.sort, custom)
    where = [table.c.workspace_id == actor.workspace_id]
    if query.q:  # the workspace's records holding the text, in whatever form finds them fastest
        where = [text_condition(conn, actor.workspace_id, entity, table, query.q, query.search_fields, query.match)]
    if query.filter is not None:
        where.append(compile_filter(entity, query.filter, table, custom, reference_names(conn, actor.workspace_id)))
    query_id = fingerprint(
        entity.name,
        query.filter.model_dump(by_alias=True) if query.filter else None,
        [(f.name, desc) for f, desc in keys],
        query.q,
        query.search_fields,
        query.match,
    )
    condition = and_(*where)
    page_where = [condition]
    if query.cursor:
        page_where.append(keyset_after(table, keys, read_cursor(query.cursor, keys, query_id)))
    statement = (
        select(table).where(*page_where).order_by(*order_by(table, keys, conn.dialect.name)).limit(query.limit + 1)
    )
    rows = [dict(r) for r in (conn.execute(statement)).mappings()]
    has_more = len(rows) > query.limit
    rows = rows[: query.limit]
    with_links(conn, entity, rows, chosen)
    without_removed_fields(conn, entity, rows)
    total = None
    if query.include_total:
        total = (conn.execute(select(func.count()).select_from(table).where(condition))).scalar_one()
    return ListPage(
        items=with_counts(conn, actor, entity, [to_output(entity, row, chosen) for row in rows], chosen),
        has_more=has_more,
        next_cursor=make_cursor(rows[-1], keys, query_id) if has_more else None,
        total=total,
    )
