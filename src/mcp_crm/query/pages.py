"""Sorting and keyset pagination over any sort keys.

A cursor carries the last row's sort values and id, so page 10,000 is one index seek, like page 1.
NULL sorts as the smallest value on both databases; the id is always the last key, so ties are stable."""

from __future__ import annotations

import base64
import hashlib
import json
from collections.abc import Callable
from datetime import date, datetime
from decimal import Decimal
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import and_, false, or_, tuple_
from sqlalchemy.sql.elements import ColumnElement

from mcp_crm.entities.spec import Entity, FieldSpec
from mcp_crm.entities.values import storable
from mcp_crm.errors import CrmError, unknown
from mcp_crm.query.custom import as_stored, column_of
from mcp_crm.query.operators import adapter

MAX_SORT_KEYS = 4


class SortKey(BaseModel):
    model_config = ConfigDict(extra="forbid")

    field: str = Field(description="A sortable field; see the entity's *_config tool.")
    direction: Literal["asc", "desc"] = "asc"


def resolve_sort(
    entity: Entity, sort: list[SortKey] | None, custom: Callable[[str], FieldSpec] | None = None
) -> tuple[tuple[FieldSpec, bool], ...]:
    sort = sort or [SortKey(field="created_at", direction="asc")]
    if len(sort) > MAX_SORT_KEYS:
        raise CrmError(f"Sort by at most {MAX_SORT_KEYS} fields.")
    sortable = {n: f for n, f in entity.fields.items() if f.sortable}
    keys = []
    for key in sort:
        field = sortable.get(key.field)
        if custom is not None and key.field.startswith("custom."):
            field = custom(key.field)
            if not field.sortable:
                raise CrmError(f"{key.field} cannot be sorted by ({field.kind.value} values); filter on it instead.")
        if field is None:
            raise unknown("sort field", key.field, sortable)
        keys.append((field, key.direction == "desc"))
    last_desc = keys[-1][1] if keys else False
    return (*keys, (entity.fields["id"], last_desc))


def order_by(table: Any, keys: tuple[tuple[FieldSpec, bool], ...], dialect: str) -> list[Any]:
    clauses = []
    for field, desc in keys:
        column = column_of(table, field)
        clause = column.desc() if desc else column.asc()
        if field.nullable and dialect != "sqlite":  # SQLite already sorts NULL as smallest
            clause = clause.nulls_last() if desc else clause.nulls_first()
        clauses.append(clause)
    return clauses


def keyset_after(table: Any, keys: tuple[tuple[FieldSpec, bool], ...], values: list[Any]) -> ColumnElement[bool]:
    """Rows strictly after `values` in the order of `keys`."""
    columns = [column_of(table, f) for f, _ in keys]
    values = [as_stored(f, v) for (f, _), v in zip(keys, values, strict=True)]
    same_direction = len({desc for _, desc in keys}) == 1
    if same_direction and not any(f.nullable for f, _ in keys):
        left, right = tuple_(*columns), tuple_(*values)
        return left < right if keys[0][1] else left > right  # one row-value seek on the index

    branches, equal_so_far = [], []
    for (field, desc), column, value in zip(keys, columns, values, strict=True):
        branches.append(and_(*equal_so_far, _after(column, desc, value, field.nullable)))
        equal_so_far.append(column.is_(None) if value is None else column == value)
    condition = or_(*branches)
    (first, first_desc), first_value = keys[0], values[0]
    if first_value is not None and (not first_desc or not first.nullable):
        # a redundant bound on the leading key lets the database seek instead of scan
        bound = columns[0] <= first_value if first_desc else columns[0] >= first_value
        condition = and_(bound, condition)
    return condition


def _after(column: Any, desc: bool, value: Any, nullable: bool) -> ColumnElement[bool]:
    if value is None:  # NULL is the smallest value
        return false() if desc else column.is_not(None)
    if desc:
        return or_(column < value, column.is_(None)) if nullable else column < value
    return column > value


def fingerprint(*parts: Any) -> str:
    """Ties a cursor to the filter and sort it was made for."""
    blob = json.dumps(parts, sort_keys=True, default=str)
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


def make_cursor(row: dict[str, Any], keys: tuple[tuple[FieldSpec, bool], ...], query_id: str) -> str:
    payload = {"v": [_plain(_value(row, f)) for f, _ in keys], "q": query_id}
    return base64.urlsafe_b64encode(json.dumps(payload, separators=(",", ":")).encode()).decode().rstrip("=")


def _value(row: dict[str, Any], field: FieldSpec) -> Any:
    if not field.path:
        return row[field.name]
    value: Any = row.get("custom") or {}
    for part in field.path:
        value = value.get(part) if isinstance(value, dict) else None
    return value


def read_cursor(cursor: str, keys: tuple[tuple[FieldSpec, bool], ...], query_id: str) -> list[Any]:
    invalid = CrmError("The cursor is not valid: pass next_cursor from the previous page exactly.")
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        payload = json.loads(base64.urlsafe_b64decode(padded.encode()))
        raw_values, made_for = payload["v"], payload["q"]
    except (ValueError, KeyError, TypeError):
        raise invalid from None
    if made_for != query_id:
        raise CrmError(
            "The cursor belongs to a different filter, sort or search: repeat the same arguments with it, "
            "or start again without a cursor."
        )
    if not isinstance(raw_values, list) or len(raw_values) != len(keys):
        raise invalid
    try:
        return [
            None if v is None else adapter(storable(f.annotation)).validate_python(v)
            for (f, _), v in zip(keys, raw_values, strict=True)
        ]
    except ValueError:
        raise invalid from None


def _plain(value: Any) -> Any:
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, Decimal):
        return str(value)
    return value
