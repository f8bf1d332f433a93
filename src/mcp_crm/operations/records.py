"""Rows to records: column values plus summaries of linked records, shaped like `*_get` returns them."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from functools import cache
from typing import Any

from pydantic import BaseModel
from sqlalchemy import Connection, bindparam, func, select

from mcp_crm.entities import ENTITIES, Entity, Kind, Link
from mcp_crm.entities.custom import definitions, shown
from mcp_crm.entities.models import record_model_for
from mcp_crm.errors import NotFound
from mcp_crm.operations.actor import Actor
from mcp_crm.store.rows import as_dicts, select_rows
from mcp_crm.store.types import ScaledDecimal, UTCDateTime


def table_of(entity: Entity) -> Any:
    return entity.table.__table__  # type: ignore[attr-defined]


def title_of(entity: Entity, record: dict[str, Any]) -> str:
    """A record's name as summaries show it ("Ada Lovelace")."""
    return " ".join(str(record[c]) for c in entity.title_columns if record.get(c) is not None)


def title_expression(entity: Entity) -> Any:
    table = table_of(entity)
    columns = [table.c[c] for c in entity.title_columns]
    expression = columns[0]
    for column in columns[1:]:
        expression = expression + " " + column
    return expression


# Statements are built once per entity and reused with new parameters: building a SELECT costs more than
# running it on SQLite.


@cache
def _rows_by_id_statement(entity: Entity, lock: bool) -> Any:
    table = table_of(entity)
    query = select(table).where(table.c.id.in_(bindparam("ids", expanding=True)))
    return query.with_for_update() if lock else query


@cache
def _title_statement(entity: Entity) -> Any:
    table = table_of(entity)
    return select(table.c.id, table.c.workspace_id, title_expression(entity).label("name")).where(
        table.c.id == bindparam("id")
    )


@cache
def _link_statement(link: Link, one: bool = False) -> Any:
    """The summaries of the records linked to some records (`one`: to one record, a plain equality: an expanding
    IN list is rendered anew on every execution, which costs more than the query on SQLite)."""
    target = ENTITIES[link.target]
    link_table, target_table = link.table.__table__, table_of(target)  # type: ignore[attr-defined]
    own, other = link_table.c[link.own_column], link_table.c[link.target_column]
    attributes = [c for c in link_table.c if c.name not in (link.own_column, link.target_column)]
    return (
        select(
            own,
            target_table.c.id,
            title_expression(target).label("name"),
            *(target_table.c[c] for c in link.summary_columns),
            *attributes,
        )
        .join(target_table, target_table.c.id == other)
        .where(own == bindparam("own_id") if one else own.in_(bindparam("own_ids", expanding=True)))
        .order_by(own, "name", target_table.c.id)
    )


def rows_by_id(
    conn: Connection, actor: Actor, entity: Entity, ids: list[str], lock: bool = False
) -> dict[str, dict[str, Any]]:
    """Rows found by primary key, as {id: row}; rows of other workspaces are dropped, exactly as if missing.

    The workspace is checked here rather than in SQL so the lookup is always a primary-key probe: with
    `workspace_id = ?` in the query, PostgreSQL without fresh statistics may walk a workspace index instead."""
    statement = _rows_by_id_statement(entity, lock and conn.dialect.name == "postgresql")
    found: dict[str, dict[str, Any]] = {}
    unique = list(dict.fromkeys(ids))
    for start in range(0, len(unique), 500):
        for row in as_dicts(conn.execute(statement, {"ids": unique[start : start + 500]})):
            if row["workspace_id"] == actor.workspace_id:
                found[row["id"]] = row
    return found


def ids_in_workspace(conn: Connection, actor: Actor, entity: Entity, ids: list[str]) -> set[str]:
    """Which of `ids` are records of `entity` in the actor's workspace (primary-key probes, as rows_by_id)."""
    statement, found = _ids_statement(entity), set()
    unique = list(dict.fromkeys(ids))
    for start in range(0, len(unique), 500):
        for rid, workspace_id in conn.execute(statement, {"ids": unique[start : start + 500]}):
            if workspace_id == actor.workspace_id:
                found.add(rid)
    return found


@cache
def _ids_statement(entity: Entity) -> Any:
    table = table_of(entity)
    return select(table.c.id, table.c.workspace_id).where(table.c.id.in_(bindparam("ids", expanding=True)))


def fetch_rows(
    conn: Connection, actor: Actor, entity: Entity, ids: list[str], lock: bool = False
) -> dict[str, dict[str, Any]]:
    """The stored rows for `ids` in the actor's workspace; raises NotFound naming any missing id."""
    found = rows_by_id(conn, actor, entity, ids, lock)
    missing = [i for i in dict.fromkeys(ids) if i not in found]
    if missing:
        raise not_found(entity, missing, "Nothing was changed.")
    return found


def not_found(entity: Entity, ids: list[str], tail: str = "") -> NotFound:
    listed = ", ".join(f"'{m}'" for m in ids[:20])
    text = f"No {entity.singular} with id {listed} (it may have been deleted; find ids with {entity.name}_list)."
    return NotFound(f"{text} {tail}".strip())


def link_summaries(conn: Connection, link: Link, own_ids: list[str]) -> dict[str, list[dict[str, Any]]]:
    """{own id: [{id, name, ...summary columns, ...link attributes}]} for a page of records."""
    if not own_ids:
        return {}
    found: dict[str, list[dict[str, Any]]] = defaultdict(list)
    if len(own_ids) == 1:
        items: Iterable[dict[str, Any]] = select_rows(conn, _link_statement(link, one=True), {"own_id": own_ids[0]})
    else:
        items = as_dicts(conn.execute(_link_statement(link), {"own_ids": own_ids}))
    for item in items:
        found[item.pop(link.own_column)].append(item)
    return found


def with_links(
    conn: Connection, entity: Entity, rows: list[dict[str, Any]], only: set[str] | None = None
) -> list[dict[str, Any]]:
    """Adds each link's summaries to the rows (in place), skipping links not in `only`."""
    ids = [r["id"] for r in rows]
    for link in entity.links:
        if only is not None and link.name not in only:
            continue
        summaries = link_summaries(conn, link, ids)
        for row in rows:
            row[link.name] = summaries.get(row["id"], [])
    return rows


def with_counts(
    conn: Connection, actor: Actor, entity: Entity, records: list[dict[str, Any]], only: set[str] | None = None
) -> list[dict[str, Any]]:
    """Adds the entity's counts (a lead stage's lead_count) to the records, in place, skipping those not in
    `only`: one grouped query per count for the whole page."""
    ids = [r["id"] for r in records]
    for count in entity.counts:
        if only is not None and count.name not in only:
            continue
        table = table_of(ENTITIES[count.entity])
        column = table.c[count.field]
        query = (
            select(column, func.count())
            .where(table.c.workspace_id == actor.workspace_id, column.in_(ids))
            .group_by(column)
        )
        found = dict(conn.execute(query).all()) if ids else {}  # type: ignore[arg-type]
        for record in records:
            record[count.name] = found.get(record["id"], 0)
    return records


def without_removed_fields(conn: Connection, entity: Entity, rows: list[dict[str, Any]]) -> None:
    """Hides (in place) the values of custom fields that no longer exist: a field in the trash keeps its
    values, so restoring it brings them back. Costs a query only when a row has custom values."""
    with_values = [row for row in rows if row.get("custom")]
    if not with_values:
        return
    defined = set(definitions(conn, with_values[0]["workspace_id"], entity))
    for row in with_values:
        row["custom"] = shown(row["custom"], defined)


def row_with_related(conn: Connection, actor: Actor, entity: Entity, record_id: str) -> dict[str, Any] | None:
    """One row plus `related`, the id and name behind each of its set *_id fields, in one statement."""
    rows = select_rows(conn, _row_with_related_statement(entity), {"id": record_id})
    if not rows or rows[0]["workspace_id"] != actor.workspace_id:
        return None
    found = rows[0]
    related = {}
    for name in _reference_fields(entity):
        title = found.pop(f"{name}.name")
        if found[name] is not None and title is not None:
            related[name] = {"id": found[name], "name": title}
    found["related"] = related
    return found


@cache
def _reference_fields(entity: Entity) -> tuple[str, ...]:
    return tuple(n for n, f in entity.fields.items() if f.kind is Kind.relation and f.target is not None)


@cache
def _row_with_related_statement(entity: Entity) -> Any:
    table = table_of(entity)
    titles = []
    for name in _reference_fields(entity):
        target = ENTITIES[entity.fields[name].target]  # type: ignore[index]
        other = table_of(target)
        title = select(title_expression(target)).where(
            other.c.id == table.c[name], other.c.workspace_id == table.c.workspace_id
        )
        titles.append(title.scalar_subquery().label(f"{name}.name"))
    return select(table, *titles).where(table.c.id == bindparam("id"))


def as_stored(conn: Connection, entity: Entity, row: dict[str, Any]) -> dict[str, Any]:
    """The row as the database hands it back (money rounded to cents, times in UTC), computed without
    reading it back: values go through each column type's way in and way out."""
    (stored,) = as_stored_rows(conn, entity, [row])
    return stored


def as_stored_rows(conn: Connection, entity: Entity, rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """`as_stored` of each row; a value the rows share (the time of a bulk create) is converted once."""
    dialect, stored_rows = conn.dialect, [dict(row) for row in rows]
    for name, column_type in _converted_columns(entity):
        converted: dict[tuple[type, Any], Any] = {}  # by type too: an int and a float may be equal yet convert apart
        for stored in stored_rows:
            if (value := stored.get(name)) is not None:
                key = (type(value), value)
                if key not in converted:
                    converted[key] = column_type.process_result_value(
                        column_type.process_bind_param(value, dialect), dialect
                    )
                stored[name] = converted[key]
    return stored_rows


@cache
def _converted_columns(entity: Entity) -> tuple[tuple[str, Any], ...]:
    return tuple((c.name, c.type) for c in table_of(entity).c if isinstance(c.type, UTCDateTime | ScaledDecimal))


def to_output(entity: Entity, row: dict[str, Any], fields: set[str] | None = None) -> dict[str, Any]:
    """A JSON-ready record; with `fields`, only those keys (and id)."""
    if fields is None:
        model: type[BaseModel] = record_model_for(entity)
        return model.model_validate(row).model_dump(mode="json")
    partial = record_model_for(entity, partial=True)
    picked = {k: v for k, v in row.items() if k in fields or k == "id"}
    return partial.model_validate(picked).model_dump(mode="json", include=set(picked))
