"""`custom.<key>` as SQL: the value at a path of the `custom` JSON column, typed for comparison.

The path is written into the SQL text (keys are checked slugs), never bound, so an index on the same
expression serves filters and sorts on both databases."""

from __future__ import annotations

from datetime import date, time
from typing import Any

from sqlalchemy import Boolean, Float, String
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.functions import FunctionElement
from sqlalchemy.sql.visitors import InternalTraversal

from mcp_crm.entities.spec import FieldSpec, Kind

_TYPES = {Kind.number: Float(), Kind.boolean: Boolean()}


class CustomValue(FunctionElement[Any]):
    # the path and kind are part of the SQL text, so they are part of the compiled-statement cache key
    _traverse_internals = [
        *FunctionElement._traverse_internals,
        ("path", InternalTraversal.dp_plain_obj),
        ("kind", InternalTraversal.dp_plain_obj),
    ]
    inherit_cache = True

    def __init__(self, column: Any, path: tuple[str, ...], kind: Kind) -> None:
        self.path, self.kind = path, kind
        self.type = _TYPES.get(kind, String())
        super().__init__(column)


@compiles(CustomValue, "sqlite")
def _sqlite(element: CustomValue, compiler: SQLCompiler, **kw: Any) -> str:
    column = compiler.process(element.clauses, **kw)
    path = "$" + "".join(f'."{part}"' for part in element.path)
    return f"json_extract({column}, '{path}')"


@compiles(CustomValue, "postgresql")
def _postgresql(element: CustomValue, compiler: SQLCompiler, **kw: Any) -> str:
    column = compiler.process(element.clauses, **kw)
    if element.kind is Kind.tags:
        return f"({column} #> '{{{','.join(element.path)}}}')::text"
    text = f"({column} #>> '{{{','.join(element.path)}}}')"
    casts = {Kind.number: "double precision", Kind.boolean: "boolean"}
    return f"CAST({text} AS {casts[element.kind]})" if element.kind in casts else text


def custom_column(table: Any, field: FieldSpec) -> Any:
    return CustomValue(table.c.custom, field.path, field.kind)


def column_of(table: Any, field: FieldSpec) -> Any:
    """The SQL a field filters and sorts by: its column, or its place in `custom`."""
    return custom_column(table, field) if field.path else table.c[field.name]


def as_stored(field: FieldSpec, value: Any) -> Any:
    """A filter or cursor value as `custom` holds it: dates and times as ISO text."""
    if not field.path:
        return value
    if isinstance(value, list):
        return [as_stored(field, v) for v in value]
    return value.isoformat() if isinstance(value, date | time) else value
