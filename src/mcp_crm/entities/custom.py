"""Custom field values: checked by type on every write, shown under `custom`, filtered and sorted as
`custom.<key>` (and `custom.<key>.<part>` for a money amount or a range's start and end)."""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import date, time
from decimal import Decimal
from functools import cache
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError, model_validator
from sqlalchemy import Connection, bindparam, literal_column, select, text, update

from mcp_crm.entities.fields import CustomField
from mcp_crm.entities.spec import Entity, FieldSpec, Kind
from mcp_crm.entities.values import Address
from mcp_crm.errors import CrmError, closest

URL = Annotated[str, Field(max_length=2000, pattern=r"^https?://\S+$")]
EMAIL = Annotated[str, Field(max_length=320, pattern=r"^[^@\s]+@[^@\s]+\.[^@\s]+$")]
PHONE = Annotated[str, Field(max_length=40, pattern=r"^\+?[0-9 ()./-]{3,40}$")]
NUMBER = Annotated[Decimal, Field(ge=-(10**15), le=10**15, decimal_places=6, allow_inf_nan=False)]
ID = Annotated[str, Field(min_length=1, max_length=36)]


class _Part(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Money(_Part):
    amount: Annotated[Decimal, Field(ge=-(10**13), le=10**13, decimal_places=2, allow_inf_nan=False)]
    currency: str = Field(pattern=r"^[A-Z]{3}$", description="ISO 4217, e.g. EUR.")


class DateRange(_Part):
    start: date
    end: date

    @model_validator(mode="after")
    def _ordered(self) -> DateRange:
        if self.end < self.start:
            raise ValueError("end is before start")
        return self


class TimeRange(_Part):
    start: time
    end: time

    @model_validator(mode="after")
    def _ordered(self) -> TimeRange:
        if self.end < self.start:
            raise ValueError("end is before start")
        return self


@dataclass(frozen=True)
class FieldType:
    value: Any  # what a value must be (a pydantic type)
    hint: str  # how to write one, for error messages and *_config
    kind: Kind | None  # how custom.<key> filters and sorts; None: only its parts do
    parts: dict[str, Kind] | None = None  # custom.<key>.<part>
    target: str | None = None  # entity a reference points to


TYPES: dict[str, FieldType] = {
    "text": FieldType(Annotated[str, Field(max_length=255)], "text up to 255 characters", Kind.text),
    "long_text": FieldType(Annotated[str, Field(max_length=20_000)], "text up to 20,000 characters", Kind.long_text),
    "number": FieldType(NUMBER, "a number, e.g. 42 or 3.5", Kind.number),
    "monetary": FieldType(Money, '{"amount": "1200.50", "currency": "EUR"}', None, {"amount": Kind.number}),
    "date": FieldType(date, "a date, YYYY-MM-DD", Kind.date),
    "date_range": FieldType(
        DateRange, '{"start": "2026-01-01", "end": "2026-12-31"}', None, {"start": Kind.date, "end": Kind.date}
    ),
    "time": FieldType(time, "a time of day, HH:MM", Kind.date),
    "time_range": FieldType(
        TimeRange, '{"start": "09:00", "end": "17:30"}', None, {"start": Kind.date, "end": Kind.date}
    ),
    "boolean": FieldType(bool, "true or false", Kind.boolean),
    "single_option": FieldType(str, "one option key (or label)", Kind.enum),
    "multiple_options": FieldType(list[str], "a list of option keys (or labels)", Kind.tags),
    "phone": FieldType(PHONE, "a phone number, e.g. +49 30 1234567", Kind.text),
    "email": FieldType(EMAIL, "an email address", Kind.text),
    "url": FieldType(URL, "a URL starting with http:// or https://", Kind.text),
    "address": FieldType(Address, "{street, city, region, postal_code, country}", None),
    "user": FieldType(ID, "a user id", Kind.relation, target="users"),
    "contact": FieldType(ID, "a contact id", Kind.relation, target="contacts"),
    "organization": FieldType(ID, "an organization id", Kind.relation, target="organizations"),
}
_ANNOTATIONS = {Kind.text: str, Kind.long_text: str, Kind.number: Decimal, Kind.date: date, Kind.boolean: bool}


@cache
def _adapter(name: str) -> TypeAdapter[Any]:
    return TypeAdapter(TYPES[name].value)


def all_definitions(conn: Connection, workspace_id: str, entity: Entity | None = None) -> list[dict[str, Any]]:
    """The workspace's custom fields (of one entity), in the order they were made."""
    table = CustomField.__table__  # type: ignore[attr-defined]
    query = select(table).where(table.c.workspace_id == workspace_id).order_by(table.c.created_at, table.c.id)
    if entity is not None:
        query = query.where(table.c.entity == entity.name)
    return [dict(row) for row in conn.execute(query).mappings()]


def definitions(conn: Connection, workspace_id: str, entity: Entity) -> dict[str, dict[str, Any]]:
    """The entity's custom fields in the workspace, by key."""
    return {field["key"]: field for field in all_definitions(conn, workspace_id, entity)}


def resolve_key(name: str, defined: dict[str, dict[str, Any]], entity: Entity) -> str:
    """A field's key from its key or its label (any case)."""
    if name in defined:
        return name
    for key, field in defined.items():
        if field["label"].casefold() == name.casefold():
            return key
    if not defined:
        raise CrmError(f"{entity.name} have no custom fields yet; define one with fields_create.")
    hint = closest(name, list(defined) + [f["label"] for f in defined.values()])
    did_you_mean = f" Did you mean '{hint}'?" if hint else ""
    listed = ", ".join(f"{key} ({field['type']})" for key, field in defined.items())
    raise CrmError(f"Unknown custom field '{name}' on {entity.name}.{did_you_mean} Fields: {listed}.")


def check_values(
    conn: Connection, workspace_id: str, entity: Entity, sent: list[dict[str, Any] | None]
) -> tuple[list[dict[str, Any]], list[tuple[int, str]]]:
    """Each item's `custom` object as stored ({key: value}, null meaning clear) and its problems as (index, text)."""
    defined = definitions(conn, workspace_id, entity) if any(sent) else {}
    checked: list[dict[str, Any]] = []
    problems: list[tuple[int, str]] = []
    wanted: dict[str, set[str]] = {}
    for index, values in enumerate(sent):
        out: dict[str, Any] = {}
        for name, raw in (values or {}).items():
            try:
                key = resolve_key(name, defined, entity)
            except CrmError as exc:
                problems.append((index, str(exc)))
                continue
            field = defined[key]
            try:
                out[key] = None if raw is None else _checked(field, raw)
            except ValueError as exc:
                problems.append((index, f"{key}: {exc}"))
                continue
            target = TYPES[field["type"]].target
            if target and raw is not None:
                wanted.setdefault(target, set()).add(out[key])
        checked.append(out)
    _check_references(conn, workspace_id, entity, defined, checked, wanted, problems)
    return checked, problems


def _checked(field: dict[str, Any], raw: Any) -> Any:
    kind = field["type"]
    try:
        value = _adapter(kind).validate_python(raw)
    except ValidationError as exc:
        reason = exc.errors()[0]["msg"]
        raise ValueError(f"{raw!r} is not {TYPES[kind].hint} ({reason}).") from None
    if kind in ("single_option", "multiple_options"):
        options = {o["key"]: o["key"] for o in field["options"]} | {
            o["label"].casefold(): o["key"] for o in field["options"]
        }
        picked = [value] if kind == "single_option" else value
        keys = []
        for choice in picked:
            key = options.get(choice) or options.get(choice.casefold())
            if key is None:
                valid = ", ".join(f"{o['key']} ({o['label']})" for o in field["options"])
                raise ValueError(f"'{choice}' is not an option; options: {valid}.")
            keys.append(key)
        return keys[0] if kind == "single_option" else list(dict.fromkeys(keys))
    return _plain(value)


def _plain(value: Any) -> Any:
    """JSON as stored: numbers as numbers, dates and times as ISO text."""
    if isinstance(value, BaseModel):
        return {k: _plain(v) for k, v in value.model_dump(exclude_none=True).items()}
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    if isinstance(value, date | time):
        return value.isoformat()
    return value


def _check_references(
    conn: Connection,
    workspace_id: str,
    entity: Entity,
    defined: dict[str, dict[str, Any]],
    checked: list[dict[str, Any]],
    wanted: dict[str, set[str]],
    problems: list[tuple[int, str]],
) -> None:
    from mcp_crm.entities import ENTITIES  # the registry imports this module

    found = {}
    for target, ids in wanted.items():
        table = ENTITIES[target].table.__table__  # type: ignore[attr-defined]
        query = select(table.c.id).where(table.c.workspace_id == workspace_id, table.c.id.in_(ids))
        found[target] = set(conn.execute(query).scalars())
    for index, values in enumerate(checked):
        for key, value in values.items():
            target = TYPES[defined[key]["type"]].target if key in defined else None
            if target and value is not None and value not in found[target]:
                problems.append((index, f"{key}: no {ENTITIES[target].singular} with id '{value}'."))


def shown(stored: dict[str, Any] | None, defined: set[str]) -> dict[str, Any]:
    """The values of fields that exist (a field in the trash keeps its values, hidden)."""
    return {k: v for k, v in (stored or {}).items() if k in defined}


def field_spec(defined: dict[str, dict[str, Any]], entity: Entity, name: str) -> FieldSpec:
    """The filter/sort spec of `custom.<key>` or `custom.<key>.<part>`, from the entity's field definitions."""
    _, _, rest = name.partition(".")
    key, _, part = rest.partition(".")
    key = resolve_key(key, defined, entity)
    field = defined[key]
    kind_of = TYPES[field["type"]]
    if part:
        kind = (kind_of.parts or {}).get(part)
        if kind is None:
            parts = ", ".join(f"custom.{key}.{p}" for p in kind_of.parts or {}) or f"custom.{key}"
            raise CrmError(f"custom.{key} has no part '{part}'; use {parts}.")
        path = (key, part)
    else:
        kind = kind_of.kind
        if kind is None:
            parts = ", ".join(f"custom.{key}.{p}" for p in kind_of.parts or {})
            how = f"filter on {parts}" if parts else "it cannot be filtered or sorted"
            raise CrmError(f"custom.{key} is a {field['type']} field: {how}.")
        path = (key,)
    annotation = time if field["type"] in ("time", "time_range") else _ANNOTATIONS.get(kind, str)
    return replace(
        _BASE,
        name=f"custom.{'.'.join(path)}",
        kind=kind,
        annotation=annotation,
        description=field["label"],
        enum=tuple(o["key"] for o in field["options"]) if kind is Kind.enum else None,
        target=kind_of.target,
        sortable=kind not in (Kind.long_text, Kind.tags),
        path=path,
    )


_BASE = FieldSpec(
    name="custom", kind=Kind.text, annotation=str, required=False, nullable=True, read_only=True, description=""
)


def clear_values(conn: Connection, workspace_id: str, field: dict[str, Any], options: set[str] | None) -> None:
    """Takes a field's values out of its records: all of them, or only the given options."""
    from mcp_crm.entities import ENTITIES  # the registry imports this module

    table = ENTITIES[field["entity"]].table.__table__  # type: ignore[attr-defined]
    key = field["key"]
    query = select(table.c.id, table.c.custom).where(
        table.c.workspace_id == workspace_id, table.c.custom[key].as_string().is_not(None)
    )
    changed = []
    for rid, custom in conn.execute(query):
        value = custom.get(key)
        if options is None or value in options:
            value = None
        elif isinstance(value, list) and options & set(value):
            value = [v for v in value if v not in options] or None
        else:
            continue
        changed.append({"rid": rid, "custom": {k: v for k, v in custom.items() if k != key} | _kept(key, value)})
    if changed:
        statement = update(table).where(table.c.id == bindparam("rid")).values(custom=bindparam("custom"))
        conn.execute(statement, changed)


def _kept(key: str, value: Any) -> dict[str, Any]:
    return {} if value is None else {key: value}


def index_values(conn: Connection, field: dict[str, Any]) -> None:
    """An `indexed` field gets an index on the expression its filters and sorts use (its first part for a
    money amount or a range); turning `indexed` off drops it."""
    from mcp_crm.entities import ENTITIES  # the registry imports this module
    from mcp_crm.query.custom import CustomValue

    kind = TYPES[field["type"]]
    name = f"ix_custom_{field['entity']}_{field['key']}"
    if not field["indexed"]:
        conn.execute(text(f"DROP INDEX IF EXISTS {name}"))
        return
    part, part_kind = next(iter((kind.parts or {}).items()), (None, None))
    path = (field["key"], part) if part else (field["key"],)
    value = CustomValue(literal_column("custom"), path, kind.kind or part_kind or Kind.text)
    expression = value.compile(dialect=conn.dialect)
    table = ENTITIES[field["entity"]].table.__tablename__
    # the order lists sort by: empty values first ascending (last descending, read backwards), then the id
    nulls = " NULLS FIRST" if conn.dialect.name == "postgresql" else ""
    conn.execute(text(f"CREATE INDEX IF NOT EXISTS {name} ON {table} (workspace_id, ({expression}){nulls}, id)"))
