"""Every record of one entity, read with the same filter machinery as `*_list`, written as JSON lines (each
record exactly as `*_get` returns it) or as CSV.

Records are read with `list_records` itself, page after page along its keyset cursor, so a filter means what it
means to `*_list` and memory stays flat however large the table is; each page then gets the names behind its
references (`related`, as `*_get` adds them) in one query per reference field. Pages are the list's largest,
200 records: pages of 1,000 and 5,000 (read with the same statements) were no faster on SQLite or PostgreSQL,
as the time goes into each record (decoding its JSON columns, its output model, its cells), not into each query.

CSV rules (one row per record, columns in the order the entity declares its output fields):

- scalars as in JSON: text as is, numbers and money as plain decimals (`1875.50`, never `1.8755E+3`; a
  money field's currency is the record's own `currency` column), dates and times ISO 8601 (UTC), booleans
  `true` / `false`, an empty cell for null;
- a reference `x_id` is two columns: `x_id` (the id) and `x` (the record's name): `owner_id`, `owner`;
- a many-relation is `<singular>_ids` (or its input name, `organization_ids`) plus the names under its output
  name (`organizations`), both lists in the same order; each link attribute is a list column
  `<link>.<attribute>` aligned with the ids (`organizations.role`, `services.quantity`), empty when no link
  has one;
- lists (emails, phones, tags, multiple-option values) are one cell, values joined with `; `: emails and phones
  the primary first, then the others in stored order (labels are not in the CSV; JSONL keeps them). Inside a
  value `\\` and `;` are written `\\\\` and `\\;`, so `split_values` reads any cell back exactly;
- a structured value (an address) is one column per part: `address.street`, `address.city`, ...;
- custom fields follow in the order they were defined, as `custom.<key>`; a monetary field is
  `custom.<key>.amount` + `custom.<key>.currency`, a date or time range `custom.<key>.start` + `.end`, an
  address one column per part, a user/contact/organization field `custom.<key>` (the id) +
  `custom.<key>.name`;
- anything else structured (a custom field definition's options) is compact JSON in its cell;
- a cell a spreadsheet would run as a formula (starting with `=`, `+`, `-`, `@`, a tab or a carriage return)
  gets a `'` in front, so it is shown, not run; numbers and phone numbers (`-12.5`, `+44 20 7946 0000`), which
  no formula can be made of, are left as they are. JSONL is never changed.
"""

from __future__ import annotations

import csv
import re
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, replace
from decimal import Decimal
from typing import Any, Literal, TextIO

from pydantic import BaseModel
from sqlalchemy import Connection, select

from mcp_crm.entities import ENTITIES, Entity, Kind, Link
from mcp_crm.entities.custom import TYPES, definitions
from mcp_crm.entities.values import Address
from mcp_crm.errors import CrmError, closest
from mcp_crm.operations.actor import Actor
from mcp_crm.operations.reads import MAX_LIMIT, ListPage, ListQuery, list_records
from mcp_crm.operations.records import table_of, title_expression
from mcp_crm.query import FilterNode
from mcp_crm.store.types import json_text

PAGE_SIZE = MAX_LIMIT
SEPARATOR = "; "
FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
ONLY_NUMBERS = re.compile(r"[-+0-9 ()./;]+")  # numbers, phone numbers and lists of them
Format = Literal["csv", "jsonl"]
Record = dict[str, Any]


def entity_named(name: str) -> Entity:
    """The entity an export names, or a CrmError listing the valid names."""
    if name not in ENTITIES:
        hint = closest(name, ENTITIES)
        did_you_mean = f" Did you mean '{hint}'?" if hint else ""
        raise CrmError(f"Unknown entity '{name}'.{did_you_mean} Entities: {', '.join(ENTITIES)}.")
    return ENTITIES[name]


# ------------------------------------------------------------------------------------------- reading


def pages(
    conn: Connection, actor: Actor, entity: Entity, filter: FilterNode | None = None, size: int = PAGE_SIZE
) -> Iterator[ListPage]:
    """The matching records, page by page, each as `*_get` returns it (with `related`); the first page, always
    yielded even when empty, has the total. A filter the list refuses is a CrmError before the first page."""
    cursor = None
    while True:
        query = ListQuery(filter=filter, limit=size, cursor=cursor, include_total=cursor is None)
        page = list_records(conn, actor, entity, query)
        yield replace(page, items=_with_related(conn, actor, entity, page.items))
        if not page.has_more:
            return
        cursor = page.next_cursor


def _references(entity: Entity) -> list[str]:
    return [n for n, f in entity.fields.items() if f.kind is Kind.relation and f.target is not None]


def _with_related(conn: Connection, actor: Actor, entity: Entity, records: list[Record]) -> list[Record]:
    """Adds `related` as `*_get` has it: the id and name behind each set reference."""
    names = {}
    for name in _references(entity):
        target = ENTITIES[entity.fields[name].target]  # type: ignore[index]
        names[name] = titles(conn, actor.workspace_id, target, (r[name] for r in records))
    shown = []
    for record in records:
        related = {n: {"id": record[n], "name": found[record[n]]} for n, found in names.items() if record[n] in found}
        shown.append(record | {"related": related})
    return shown


def titles(conn: Connection, workspace_id: str, entity: Entity, ids: Iterable[str | None]) -> dict[str, str]:
    """{id: name} of the workspace's records with these ids."""
    table, wanted, found = table_of(entity), sorted(i for i in set(ids) if i), {}
    for start in range(0, len(wanted), 500):
        query = select(table.c.id, title_expression(entity)).where(
            table.c.workspace_id == workspace_id, table.c.id.in_(wanted[start : start + 500])
        )
        found.update({str(rid): name for rid, name in conn.execute(query) if name is not None})
    return found


# ---------------------------------------------------------------------------------------------- CSV


def join_values(values: Iterable[Any]) -> str:
    """A list as one cell: `a@x.com; b@y.com` (`\\` and `;` inside a value escaped with a backslash)."""
    return SEPARATOR.join(_escaped(_cell(v)) for v in values)


def _escaped(text: str) -> str:
    if ";" in text or "\\" in text:
        return text.replace("\\", "\\\\").replace(";", "\\;")
    return text


def split_values(cell: str) -> list[str]:
    """A cell written by `join_values` back to its values ('' is an empty list). A `;` typed without the space
    after it (a hand-edited cell) separates values too."""
    if not cell:
        return []
    values: list[str] = []
    current: list[str] = []
    index = 0
    while index < len(cell):
        char = cell[index]
        if char == "\\" and index + 1 < len(cell):
            current.append(cell[index + 1])
            index += 1
        elif char == ";":
            values.append("".join(current))
            current = []
            if cell.startswith(" ", index + 1):
                index += 1
        else:
            current.append(char)
        index += 1
    values.append("".join(current))
    return values


def _cell(value: Any) -> str:
    if value.__class__ is str:
        return value  # type: ignore[no-any-return]
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return value
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float | Decimal):
        return format(Decimal(repr(value)) if isinstance(value, float) else value, "f")
    return json_text(value)


def guarded(cell: str) -> str:
    """The cell, with a `'` in front when a spreadsheet would run it as a formula (`=HYPERLINK(...)`,
    `+cmd|...`); a signed number or a phone number is left alone."""
    if cell.startswith(FORMULA_START) and not (cell[0] in "+-" and ONLY_NUMBERS.fullmatch(cell)):
        return "'" + cell
    return cell


# (record, names of records that custom reference fields point to) -> the cell
Getter = Callable[[Record, dict[str, str]], str]


@dataclass(frozen=True)
class Column:
    header: str
    value: Getter


def csv_columns(entity: Entity, defined: dict[str, dict[str, Any]]) -> list[Column]:
    """The CSV columns of an entity in a workspace with these custom field definitions."""
    columns: list[Column] = []
    links = {link.input: link for link in entity.links}
    for name, field in entity.fields.items():
        if name in links:
            columns += _link_columns(links[name])
        elif field.kind is Kind.custom:
            for key, definition in defined.items():
                columns += _custom_columns(key, definition["type"])
        elif field.kind is Kind.relation and field.target is not None:
            title = name.removesuffix("_id")
            if title == name or title in entity.fields:
                title = f"{name}_name"
            columns += [_plain(name), Column(title, _related_name(name))]
        elif (
            field.kind is Kind.object and isinstance(field.annotation, type) and issubclass(field.annotation, BaseModel)
        ):
            columns += [Column(f"{name}.{part}", _part(name, part)) for part in field.annotation.model_fields]
        elif field.kind in (Kind.objects, Kind.tags):
            columns.append(Column(name, _list(name)))
        else:
            columns.append(_plain(name))
    return columns


def _plain(name: str) -> Column:
    return Column(name, lambda record, _: _cell(record[name]))


def _related_name(name: str) -> Getter:
    def value(record: Record, _: dict[str, str]) -> str:
        found = record["related"].get(name)
        return found["name"] if found else ""

    return value


def _part(name: str, part: str) -> Getter:
    return lambda record, _: _cell((record[name] or {}).get(part))


def _list(name: str) -> Getter:
    def value(record: Record, _: dict[str, str]) -> str:
        items = record[name] or []
        if items and isinstance(items[0], dict):
            if "value" not in items[0]:
                return json_text(items)  # no single value to show (a field's options)
            items = sorted(items, key=lambda item: not item.get("primary"))  # stable: the others keep their order
            items = [item["value"] for item in items]
        return join_values(items)

    return value


def _link_columns(link: Link) -> list[Column]:
    ids = link.input if link.input != link.name else f"{ENTITIES[link.target].singular}_ids"
    columns = [
        Column(ids, lambda record, _: join_values(s["id"] for s in record[link.name])),
        Column(link.name, lambda record, _: join_values(s["name"] for s in record[link.name])),
    ]
    for attribute in link.attribute_defaults if link.attributes else ():
        columns.append(Column(f"{link.name}.{attribute}", _attribute(link.name, attribute)))
    return columns


def _attribute(link: str, attribute: str) -> Getter:
    def value(record: Record, _: dict[str, str]) -> str:
        values = [summary.get(attribute) for summary in record[link]]
        return join_values(values) if any(v is not None for v in values) else ""

    return value


def _custom_columns(key: str, kind: str) -> list[Column]:
    header = f"custom.{key}"
    if kind == "monetary":
        return [
            Column(f"{header}.amount", _custom(key, "amount")),
            Column(f"{header}.currency", _custom(key, "currency")),
        ]
    if kind in ("date_range", "time_range"):
        return [Column(f"{header}.start", _custom(key, "start")), Column(f"{header}.end", _custom(key, "end"))]
    if kind == "address":
        return [Column(f"{header}.{part}", _custom(key, part)) for part in Address.model_fields]
    if kind == "multiple_options":
        return [Column(header, lambda record, _: join_values((record["custom"] or {}).get(key) or []))]
    if TYPES[kind].target is not None:
        return [Column(header, _custom(key)), Column(f"{header}.name", _custom_name(key))]
    return [Column(header, _custom(key))]


def _custom(key: str, part: str | None = None) -> Getter:
    def value(record: Record, _: dict[str, str]) -> str:
        found = (record["custom"] or {}).get(key)
        if part is not None:
            found = found.get(part) if isinstance(found, dict) else None
        return _cell(found)

    return value


def _custom_name(key: str) -> Getter:
    return lambda record, names: names.get((record["custom"] or {}).get(key) or "", "")


def custom_reference_names(
    conn: Connection, workspace_id: str, defined: dict[str, dict[str, Any]], records: list[Record]
) -> dict[str, str]:
    """{id: name} of the records the page's user/contact/organization custom fields point to."""
    wanted: dict[str, set[str]] = {}
    for key, definition in defined.items():
        target = TYPES[definition["type"]].target
        if target is not None:
            wanted.setdefault(target, set()).update((r["custom"] or {}).get(key) for r in records)
    names: dict[str, str] = {}
    for target, ids in wanted.items():
        names |= titles(conn, workspace_id, ENTITIES[target], ids)
    return names


# -------------------------------------------------------------------------------------------- writing


def write(
    conn: Connection,
    actor: Actor,
    entity: Entity,
    filter: FilterNode | None,
    format: Format,
    sink: TextIO,
    progress: Callable[[int, int], None] | None = None,
    page_size: int = PAGE_SIZE,
) -> int:
    """Writes every matching record to `sink`; calls `progress(written, total)` after each page."""
    defined = definitions(conn, actor.workspace_id, entity) if "custom" in entity.fields else {}
    columns = csv_columns(entity, defined)
    references = any(TYPES[d["type"]].target for d in defined.values())
    writer = csv.writer(sink)
    written, total = 0, 0
    for page in pages(conn, actor, entity, filter, page_size):
        if page.total is not None:  # the first page: the filter is good
            total = page.total
            if format == "csv":
                writer.writerow([c.header for c in columns])
        if format == "jsonl":
            sink.write("".join(json_text(record) + "\n" for record in page.items))
        else:
            names = custom_reference_names(conn, actor.workspace_id, defined, page.items) if references else {}
            writer.writerows([guarded(c.value(record, names)) for c in columns] for record in page.items)
        written += len(page.items)
        if progress is not None:
            progress(written, max(total, written))
    return written
