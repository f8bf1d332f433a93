"""The filter operator registry: which operators each kind of field allows and what SQL each builds.

Adding an operator is one entry here; error messages and the config answer read this registry."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, Literal

from pydantic import TypeAdapter
from sqlalchemy import Text, and_, cast, exists, false, not_, or_, select, true
from sqlalchemy.sql.elements import ColumnElement

from mcp_crm.entities.spec import FieldSpec, Kind
from mcp_crm.store.types import json_text

ValueShape = Literal["none", "one", "list", "pair", "text"]
Build = Callable[[Any, Any, FieldSpec], ColumnElement[bool]]


@dataclass(frozen=True)
class Operator:
    name: str
    shape: ValueShape
    summary: str


OPERATORS: dict[str, Operator] = {
    op.name: op
    for op in (
        Operator("eq", "one", "equals (text: exact, case-sensitive)"),
        Operator("ne", "one", "differs from (includes empty values)"),
        Operator("gt", "one", "greater than"),
        Operator("gte", "one", "greater than or equal"),
        Operator("lt", "one", "less than"),
        Operator("lte", "one", "less than or equal"),
        Operator("between", "pair", "within [low, high], both included"),
        Operator("in", "list", "equals one of a list"),
        Operator("not_in", "list", "equals none of a list (includes empty values)"),
        Operator("contains", "text", "contains, case-insensitive"),
        Operator("starts_with", "text", "starts with, case-insensitive"),
        Operator("ends_with", "text", "ends with, case-insensitive"),
        Operator("is_null", "none", "is empty (no value needed)"),
        Operator("is_not_null", "none", "has a value (no value needed)"),
    )
}

_TEXT = ("eq", "ne", "contains", "starts_with", "ends_with", "in", "not_in", "is_null", "is_not_null")
_ORDERED = ("eq", "ne", "gt", "gte", "lt", "lte", "between", "in", "not_in", "is_null", "is_not_null")
_BY_KIND: dict[Kind, tuple[str, ...]] = {
    Kind.text: _TEXT,
    Kind.long_text: ("contains", "starts_with", "ends_with", "is_null", "is_not_null"),
    Kind.number: _ORDERED,
    Kind.money: _ORDERED,
    Kind.date: _ORDERED,
    Kind.datetime: _ORDERED,
    Kind.boolean: ("eq", "ne"),
    Kind.enum: ("eq", "ne", "in", "not_in", "is_null", "is_not_null"),
    Kind.relation: ("eq", "ne", "in", "not_in", "is_null", "is_not_null"),
    Kind.relations: ("eq", "in", "not_in", "is_null", "is_not_null"),
    Kind.tags: ("contains", "in", "not_in", "is_null", "is_not_null"),
    Kind.objects: ("contains", "is_null", "is_not_null"),
    Kind.object: (),
    Kind.custom: (),
}


def operators_of(kind: Kind) -> tuple[str, ...]:
    return _BY_KIND[kind]


def operators_for(field: FieldSpec) -> tuple[str, ...]:
    ops = _BY_KIND[field.kind]
    if not field.nullable and field.kind not in (Kind.relations, Kind.tags, Kind.objects):
        ops = tuple(o for o in ops if o not in ("is_null", "is_not_null"))
    return ops


@lru_cache(maxsize=128)
def adapter(annotation: Any) -> TypeAdapter[Any]:
    """Converts a filter or cursor value to a field's Python type (cached: building one is slow)."""
    return TypeAdapter(annotation)


def like_escape(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def build_scalar(column: Any, op: str, value: Any, field: FieldSpec) -> ColumnElement[bool]:
    """A condition on a plain column (text, number, date, enum, boolean, single relation)."""
    with_nulls = field.nullable
    match op:
        case "eq":
            return column == value
        case "ne":
            return or_(column != value, column.is_(None)) if with_nulls else column != value
        case "gt":
            return column > value
        case "gte":
            return column >= value
        case "lt":
            return column < value
        case "lte":
            return column <= value
        case "between":
            return column.between(value[0], value[1])
        case "in":
            return column.in_(value)
        case "not_in":
            return or_(column.not_in(value), column.is_(None)) if with_nulls else column.not_in(value)
        case "contains":
            return column.ilike(f"%{like_escape(value)}%", escape="\\")
        case "starts_with":
            return column.ilike(f"{like_escape(value)}%", escape="\\")
        case "ends_with":
            return column.ilike(f"%{like_escape(value)}", escape="\\")
        case "is_null":
            return column.is_(None)
        case "is_not_null":
            return column.is_not(None)
    raise AssertionError(op)


def build_json_list(column: Any, op: str, value: Any, field: FieldSpec) -> ColumnElement[bool]:
    """Conditions on a JSON list column (tags, emails, phones), portable across SQLite and PostgreSQL
    by matching the stored JSON text."""
    as_text = cast(column, Text)

    def has(item: str) -> ColumnElement[bool]:
        needle = json_text(item) if field.kind is Kind.tags else item
        return as_text.ilike(f"%{like_escape(needle)}%", escape="\\")

    match op:
        case "contains":
            return has(value)
        case "in":
            return or_(*(has(v) for v in value)) if value else false()
        case "not_in":
            return and_(*(not_(has(v)) for v in value)) if value else true()
        case "is_null":
            return or_(column.is_(None), as_text == "[]")
        case "is_not_null":
            return and_(column.is_not(None), as_text != "[]")
    raise AssertionError(op)


def build_link(own_id: Any, op: str, value: Any, field: FieldSpec) -> ColumnElement[bool]:
    """Conditions on a many-to-many relation: "deals of organization X"."""
    link = field.link
    assert link is not None
    table = link.table.__table__  # type: ignore[attr-defined]
    own, target = table.c[link.own_column], table.c[link.target_column]

    def linked(*extra: ColumnElement[bool]) -> ColumnElement[bool]:
        return exists(select(1).select_from(table).where(own == own_id, *extra))

    match op:
        case "eq":
            return linked(target == value)
        case "in":
            return linked(target.in_(value))
        case "not_in":
            return not_(linked(target.in_(value)))
        case "is_null":
            return not_(linked())
        case "is_not_null":
            return linked()
    raise AssertionError(op)


def build_link_attribute(own_id: Any, op: str, value: Any, field: FieldSpec) -> ColumnElement[bool]:
    """A condition on an attribute of a link (`organizations.role`): some link of the record matches it."""
    link = field.link
    assert link is not None
    table = link.table.__table__  # type: ignore[attr-defined]
    column = table.c[field.name.split(".", 1)[1]]
    return exists(
        select(1).select_from(table).where(table.c[link.own_column] == own_id, build_scalar(column, op, value, field))
    )
