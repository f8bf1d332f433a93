"""The filter tree every `*_list` accepts, and its translation to a SQL condition."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Discriminator, Field, Tag, ValidationError
from sqlalchemy import and_, not_, or_
from sqlalchemy.sql.elements import ColumnElement

from mcp_crm.entities.spec import Entity, FieldSpec, Kind
from mcp_crm.entities.values import storable
from mcp_crm.errors import CrmError, unknown
from mcp_crm.query.custom import as_stored, column_of
from mcp_crm.query.operators import (
    OPERATORS,
    adapter,
    build_json_list,
    build_link,
    build_link_attribute,
    build_scalar,
    operators_for,
)

MAX_DEPTH = 8
MAX_CONDITIONS = 100
MAX_LIST_VALUES = 500
MAX_TEXT_VALUE = 20_000  # characters in one filter value (longer than any stored text; SQLite caps LIKE patterns)

OperatorName = Literal[
    "eq", "ne", "gt", "gte", "lt", "lte", "between", "in", "not_in",
    "contains", "starts_with", "ends_with", "is_null", "is_not_null",
]  # fmt: skip


class _Node(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)


class Condition(_Node):
    """One test on one field: {"field": "email", "op": "ends_with", "value": "@acme.com"}."""

    field: str = Field(description="A filterable field; see the entity's *_config tool.")
    op: OperatorName
    value: Any = Field(None, description="Omitted for is_null / is_not_null; a list for in / not_in / between.")


class And(_Node):
    and_: list[FilterNode] = Field(alias="and", min_length=1)


class Or(_Node):
    or_: list[FilterNode] = Field(alias="or", min_length=1)


class Not(_Node):
    not_: FilterNode = Field(alias="not")


def _node_kind(value: Any) -> str:
    if isinstance(value, dict):
        for key in ("and", "or", "not"):
            if key in value:
                return key.capitalize()
        return "Condition"
    return type(value).__name__


# Tagged by the key present, so a mistake is reported for the node kind the caller meant.
FilterNode = Annotated[
    Annotated[Condition, Tag("Condition")]
    | Annotated[And, Tag("And")]
    | Annotated[Or, Tag("Or")]
    | Annotated[Not, Tag("Not")],
    Discriminator(_node_kind),
]
for _model in (And, Or, Not):
    _model.model_rebuild()


CustomFields = Callable[[str], FieldSpec]  # `custom.<key>` -> its spec, from the workspace's field definitions
# a by-name reference's values (each an id or a name of a target record) -> the ids, or an error naming the valid ones
Names = Callable[[FieldSpec, list[str]], list[str]]


@dataclass(frozen=True)
class _Scope:
    entity: Entity
    table: Any
    custom: CustomFields | None
    names: Names | None


def compile_filter(
    entity: Entity, node: FilterNode, table: Any, custom: CustomFields | None = None, names: Names | None = None
) -> ColumnElement[bool]:
    """`names` resolves the values of by-name references (a lead's stage_id: an id or the stage's name); without
    it their values are taken as ids."""
    counter = [0]
    return _compile(_Scope(entity, table, custom, names), node, depth=1, counter=counter)


def _compile(scope: _Scope, node: FilterNode, depth: int, counter: list[int]) -> ColumnElement[bool]:
    if depth > MAX_DEPTH:
        raise CrmError(f"Filter is nested deeper than {MAX_DEPTH} levels; flatten it with and/or lists.")
    match node:
        case And():
            return and_(*(_compile(scope, n, depth + 1, counter) for n in node.and_))
        case Or():
            return or_(*(_compile(scope, n, depth + 1, counter) for n in node.or_))
        case Not():
            return not_(_compile(scope, node.not_, depth + 1, counter))
        case Condition():
            counter[0] += 1
            if counter[0] > MAX_CONDITIONS:
                raise CrmError(f"Filter has more than {MAX_CONDITIONS} conditions.")
            return _condition(scope, node)
    raise AssertionError(node)


def _condition(scope: _Scope, cond: Condition) -> ColumnElement[bool]:
    entity, table, custom = scope.entity, scope.table, scope.custom
    filterable = entity.filter_fields
    if custom is not None and cond.field.startswith("custom."):
        field = custom(cond.field)
    else:
        field = filterable.get(cond.field)
    if field is None:
        raise unknown("filter field", cond.field, filterable)
    allowed = operators_for(field)
    if cond.op not in allowed:
        raise CrmError(
            f"Operator '{cond.op}' does not apply to {field.kind.value} field '{field.name}'. "
            f"Operators for it: {', '.join(allowed)}."
        )
    value = as_stored(field, filter_value(field, cond.op, cond.value))
    if field.by_name and scope.names is not None and value is not None:
        value = scope.names(field, value) if isinstance(value, list) else scope.names(field, [value])[0]
    if field.kind is Kind.relations:
        return build_link(table.c.id, cond.op, value, field)
    if field.link is not None:
        return build_link_attribute(table.c.id, cond.op, value, field)
    if field.kind in (Kind.tags, Kind.objects):
        return build_json_list(column_of(table, field), cond.op, value, field)
    return build_scalar(column_of(table, field), cond.op, value, field)


def filter_value(field: FieldSpec, op: str, raw: Any) -> Any:
    """Check and convert a condition's value to the field's type, or say what was expected."""
    shape = OPERATORS[op].shape
    where = f"'{field.name}' {op}"
    if shape == "none":
        if raw is not None:
            raise CrmError(f"{where} takes no value; leave 'value' out.")
        return None
    if shape == "list":
        if not isinstance(raw, list) or not raw:
            raise CrmError(f'{where} needs a non-empty list of values, e.g. ["a", "b"].')
        if len(raw) > MAX_LIST_VALUES:
            raise CrmError(f"{where} accepts at most {MAX_LIST_VALUES} values.")
        return [_one(field, where, v) for v in raw]
    if shape == "pair":
        if not isinstance(raw, list) or len(raw) != 2:
            raise CrmError(f'{where} needs [low, high], e.g. [10, 20] or ["2026-01-01", "2026-01-31"].')
        low, high = (_one(field, where, v) for v in raw)
        if high < low:
            raise CrmError(f"{where}: low ({raw[0]}) is greater than high ({raw[1]}).")
        return [low, high]
    if shape == "text" or field.kind in (Kind.long_text, Kind.tags, Kind.objects):
        if not isinstance(raw, str) or not raw:
            raise CrmError(f"{where} needs a non-empty text value.")
        if len(raw) > MAX_TEXT_VALUE:
            raise CrmError(f"{where}: a value has at most {MAX_TEXT_VALUE:,} characters.")
        return raw
    if raw is None:
        raise CrmError(f"{where} needs a value; to find empty values use is_null.")
    return _one(field, where, raw)


def _one(field: FieldSpec, where: str, raw: Any) -> Any:
    if field.kind is Kind.enum:
        assert field.enum is not None
        if raw not in field.enum:
            raise unknown(f"value for {field.name}", str(raw), field.enum)
        return raw
    annotation: Any = str if field.kind in (Kind.relation, Kind.relations, Kind.tags) else field.annotation
    if annotation is datetime and isinstance(raw, str) and len(raw) == 10:
        raw = f"{raw}T00:00:00Z"  # a bare date means its start, in UTC
    if isinstance(raw, str) and len(raw) > MAX_TEXT_VALUE:
        raise CrmError(f"{where}: a value has at most {MAX_TEXT_VALUE:,} characters.")
    try:
        value = adapter(storable(annotation)).validate_python(raw)
    except ValidationError:
        raise CrmError(f"{where}: {raw!r} is not a valid {_type_name(field)}.") from None
    return value


def _type_name(field: FieldSpec) -> str:
    if field.annotation is datetime:
        return "date-time (ISO 8601, e.g. 2026-11-26T09:00:00Z or 2026-11-26)"
    if field.annotation is date:
        return "date (YYYY-MM-DD)"
    if field.kind in (Kind.number, Kind.money):
        return "number"
    if field.kind is Kind.boolean:
        return "boolean (true or false)"
    return "text value"
