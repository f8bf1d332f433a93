"""Rows to records: column values plus summaries of linked records, shaped like `*_get` returns them."""

from __future__ import annotations

from collections import defaultdict
from typing import Any

from pydantic import BaseModel
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncConnection

from mcp_crm.entities import ENTITIES, Entity, Kind, Link
from mcp_crm.entities.models import record_model_for
from mcp_crm.operations.actor import Actor


def table_of(entity: Entity) -> Any:
    return entity.table.__table__  # type: ignore[attr-defined]


def title_expression(entity: Entity) -> Any:
    table = table_of(entity)
    columns = [table.c[c] for c in entity.title_columns]
    expression = columns[0]
    for column in columns[1:]:
        expression = expression + " " + column
    return expression


async def rows_by_id(
    conn: AsyncConnection, actor: Actor, entity: Entity, ids: list[str], lock: bool = False
) -> dict[str, dict[str, Any]]:
    """Rows found by primary key, as {id: row}; rows of other workspaces are dropped, exactly as if missing.

    The workspace is checked here rather than in SQL so the lookup is always a primary-key probe: with
    `workspace_id = ?` in the query, PostgreSQL without fresh statistics may walk a workspace index instead."""
    table = table_of(entity)
    found: dict[str, dict[str, Any]] = {}
    unique = list(dict.fromkeys(ids))
    for start in range(0, len(unique), 500):
        query = select(table).where(table.c.id.in_(unique[start : start + 500]))
        if lock and conn.dialect.name == "postgresql":
            query = query.with_for_update()
        for row in (await conn.execute(query)).mappings():
            if row["workspace_id"] == actor.workspace_id:
                found[row["id"]] = dict(row)
    return found


async def link_summaries(conn: AsyncConnection, link: Link, own_ids: list[str]) -> dict[str, list[dict[str, Any]]]:
    """{own id: [{id, name, ...summary columns, ...link attributes}]} for a page of records."""
    if not own_ids:
        return {}
    target = ENTITIES[link.target]
    link_table, target_table = link.table.__table__, table_of(target)  # type: ignore[attr-defined]
    own, other = link_table.c[link.own_column], link_table.c[link.target_column]
    attributes = [c for c in link_table.c if c.name not in (link.own_column, link.target_column)]
    query = (
        select(
            own,
            target_table.c.id,
            title_expression(target).label("name"),
            *(target_table.c[c] for c in link.summary_columns),
            *attributes,
        )
        .join(target_table, target_table.c.id == other)
        .where(own.in_(own_ids))
        .order_by(own, "name", target_table.c.id)
    )
    found: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for row in (await conn.execute(query)).mappings():
        item = dict(row)
        found[item.pop(link.own_column)].append(item)
    return found


async def with_links(
    conn: AsyncConnection, entity: Entity, rows: list[dict[str, Any]], only: set[str] | None = None
) -> list[dict[str, Any]]:
    """Adds each link's summaries to the rows (in place), skipping links not in `only`."""
    ids = [r["id"] for r in rows]
    for link in entity.links:
        if only is not None and link.name not in only:
            continue
        summaries = await link_summaries(conn, link, ids)
        for row in rows:
            row[link.name] = summaries.get(row["id"], [])
    return rows


async def referenced_summaries(
    conn: AsyncConnection, actor: Actor, entity: Entity, row: dict[str, Any]
) -> dict[str, dict[str, str]]:
    """{"owner_id": {"id": ..., "name": "Ada Lovelace"}, ...} for the record's non-empty references."""
    found = {}
    for field in entity.fields.values():
        if field.kind is not Kind.relation or field.target is None or row.get(field.name) is None:
            continue
        target = ENTITIES[field.target]
        table = table_of(target)
        query = select(table.c.id, title_expression(target).label("name")).where(
            table.c.workspace_id == actor.workspace_id, table.c.id == row[field.name]
        )
        match = (await conn.execute(query)).mappings().first()
        if match is not None:
            found[field.name] = dict(match)
    return found


def to_output(entity: Entity, row: dict[str, Any], fields: set[str] | None = None) -> dict[str, Any]:
    """A JSON-ready record; with `fields`, only those keys (and id)."""
    if fields is None:
        model: type[BaseModel] = record_model_for(entity)
        return model.model_validate(row).model_dump(mode="json")
    partial = record_model_for(entity, partial=True)
    picked = {k: v for k, v in row.items() if k in fields or k == "id"}
    return partial.model_validate(picked).model_dump(mode="json", include=set(picked))
