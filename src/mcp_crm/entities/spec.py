"""The declaration every entity is made of: a SQLModel table plus an `Entity` that names it.

Everything else (tool names and schemas, filter and sort rules, the config answer, indexes,
the catalog page) is derived from these two objects, so adding a field is one line in one module.
"""

from __future__ import annotations

import types
import typing
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import date, datetime
from decimal import Decimal
from enum import StrEnum
from functools import cached_property
from typing import Any, Literal, get_args, get_origin

from pydantic import BaseModel
from sqlalchemy import JSON, Index, Text
from sqlmodel import Field, SQLModel
from sqlmodel.main import FieldInfoMetadata

from mcp_crm.ids import new_id
from mcp_crm.store.types import UTCDateTime

SYSTEM_FIELDS = ("id", "workspace_id", "created_at", "updated_at", "revision")


class Kind(StrEnum):
    """What a field holds, as a model sees it; decides its filter operators."""

    text = "text"
    long_text = "long_text"
    number = "number"
    money = "money"
    date = "date"
    datetime = "datetime"
    boolean = "boolean"
    enum = "enum"
    relation = "relation"  # a single related record's id
    relations = "relations"  # many related records (a link table)
    tags = "tags"  # a list of short strings
    objects = "objects"  # a list of structured values (emails, phones)
    object = "object"  # one structured value (an address)
    custom = "custom"  # the workspace's own fields, {key: value}; filtered as custom.<key>


class Record(SQLModel):
    """Columns every entity row carries."""

    id: str = Field(default_factory=new_id, primary_key=True, max_length=36)
    workspace_id: str = Field(foreign_key="workspaces.id", max_length=36, ondelete="CASCADE")
    created_at: datetime = Field(sa_type=UTCDateTime, description="When the record was created (UTC).")
    updated_at: datetime = Field(sa_type=UTCDateTime, description="When the record last changed (UTC).")
    revision: int = Field(
        1,
        description="Goes up by one with every change; send it back as expected_revision to change only what you read.",
        sa_column_kwargs={"server_default": "1"},
    )


def meta(pattern: str | None = None, **facts: Any) -> dict[str, Any]:
    """For `Field(schema_extra=...)`: a value pattern (SQLModel's own `regex` is not kept) and API facts
    a column's type cannot tell (`kind="money"`, `read_only=True`, `unique=True`)."""
    return ({"pattern": pattern} if pattern else {}) | {"json_schema_extra": facts}


def owner(description: str) -> Any:
    """A user reference that defaults to the acting user and is cleared when that user is deleted."""
    return Field(
        None,
        foreign_key="users.id",
        ondelete="SET NULL",
        max_length=36,
        description=f"{description} The acting user when left out.",
        schema_extra=meta(defaults_to_actor=True),
    )


def currency_code() -> Any:
    return Field(
        "USD",
        min_length=3,
        max_length=3,
        description="ISO 4217 code, e.g. EUR.",
        schema_extra=meta(pattern=r"^[A-Z]{3}$"),
    )


def long_text(description: str | None = None) -> Any:
    """Free text up to 20,000 characters: filterable by contains, not sortable."""
    return Field(None, max_length=20_000, sa_type=Text, description=description, schema_extra=meta(kind="long_text"))


def custom_values() -> Any:
    """The `custom` column of an entity that takes custom fields (see fields.py)."""
    return Field(
        default_factory=dict,
        sa_type=JSON,
        description="Custom field values by key (or label), as defined with fields_create; see the *_config tool for "
        "each field's type and options. An update changes only the keys it sends; null clears one.",
        schema_extra=meta(kind="custom"),
    )


def workspace_indexes(table: str, *columns: str) -> tuple[Index, ...]:
    """Indexes that serve `<filter on column> order by column, id` within a workspace; the id suffix
    makes keyset pagination a single index seek. These columns (plus created_at and updated_at) are
    the ones `*_list` can sort by."""
    cols = (*columns, "created_at", "updated_at")
    return tuple(Index(f"ix_{table}_{c}", "workspace_id", c, "id") for c in cols)


@dataclass(frozen=True, eq=False)
class Link:
    """A many-to-many relation stored in a link table.

    `input` is the field a caller writes (`organization_ids`, or `services` for links with
    attributes) and filters on; `name` is the key of the summaries in the output."""

    name: str
    input: str
    target: str  # the plural name of the related entity
    table: type[SQLModel]
    own_column: str
    target_column: str
    description: str
    # input items with extra columns (a line item's quantity); a bare id stands for an item with no attributes given
    attributes: type[BaseModel] | None = None
    summary_columns: tuple[str, ...] = ()  # target columns shown beside the title in summaries
    restrict_target_delete: bool = False  # refuse to delete a target that is still linked
    max_items: int = 500

    @cached_property
    def attribute_defaults(self) -> dict[str, Any]:
        """The link table's own columns and the values a new link starts with."""
        fields = self.table.model_fields
        return {n: f.get_default() for n, f in fields.items() if n not in (self.own_column, self.target_column)}


@dataclass(frozen=True)
class Count:
    """A number each record reports in `*_list`: how many records of another entity point at it (a lead stage's
    lead_count). Counted when listed, never stored, so it is not part of the record's change events."""

    name: str  # the output key
    entity: str  # the plural name of the counted entity
    field: str  # its reference to this entity
    description: str


@dataclass(frozen=True)
class FieldSpec:
    """One field of an entity as the API presents it (derived, never written by hand)."""

    name: str
    kind: Kind
    annotation: Any  # the value's Python type, without None
    required: bool
    nullable: bool
    read_only: bool
    description: str
    enum: tuple[str, ...] | None = None
    target: str | None = None  # related entity for relation(s)
    link: Link | None = None
    metadata: tuple[Any, ...] = ()  # pydantic constraints (max length, bounds)
    default: Any = None
    unique: bool = False  # unique in the workspace (backed by a unique constraint)
    defaults_to_actor: bool = False  # left out on create: the acting user (owner, assignee)
    restricts_delete: bool = False  # a reference that keeps its target from being deleted (a deal's stage)
    by_name: bool = False  # a reference that filters take by the target's id or name (a lead's stage: a short list)
    path: tuple[str, ...] = ()  # a custom field: where its value sits in the `custom` column

    sortable: bool = False  # backed by a workspace index, so a sorted page is an index walk

    @property
    def filterable(self) -> bool:
        return self.kind not in (Kind.object, Kind.custom)

    @property
    def untrusted(self) -> bool:
        """Free text anyone may have typed, pasted or imported: shown to models as data, never as instructions."""
        return self.kind is Kind.long_text


@dataclass(frozen=True, eq=False)  # compared and hashed by identity: one object per entity
class Entity:
    name: str  # plural, the tool prefix: "contacts"
    singular: str
    table: type[Record]
    description: str
    title_columns: tuple[str, ...] = ("name",)
    search_columns: tuple[str, ...] = ("name",)
    # kept in the search index (mcp_crm/search): `search` finds it, and `q` matches its title and search columns
    # there (words, prefixes, a typo, emails, phone digits, domains); otherwise `q` is a substring match
    searchable: bool = False
    links: tuple[Link, ...] = ()
    # link tables only the entity's own verbs write (a list's members, too many for a field): the trash keeps the
    # rows naming a deleted record and a restore puts them back; a merge moves them to the record kept
    member_tables: tuple[type[SQLModel], ...] = ()
    example: dict[str, Any] = field(default_factory=dict)
    example_filter: dict[str, Any] = field(default_factory=dict)
    on_delete: str = ""  # what happens to related records, told to the model in the delete tools
    admin_writes: bool = False  # changing these records needs the admin scope (users)
    unique_together: tuple[tuple[str, ...], ...] = ()  # field groups unique in the workspace (a custom field's key)
    # fills in what a write implies and returns its problems as (item index, field, message); it may read the
    # store: (connection, workspace id, [(stored row or None, values sent)])
    prepare: (
        Callable[[Any, str, list[tuple[dict[str, Any] | None, dict[str, Any]]]], list[tuple[int, str, str]]] | None
    ) = None
    # (before or None on create, the merged new state) -> extra column values: derived fields, stamps
    derive: Callable[[dict[str, Any] | None, dict[str, Any]], dict[str, Any]] | None = None
    # (acting user id, records about to be deleted) -> why not, or None to allow
    refuse_delete: Callable[[str | None, list[dict[str, Any]]], str | None] | None = None
    counts: tuple[Count, ...] = ()  # numbers its records report beside their fields (a lead stage's lead_count)
    # field -> (connection, workspace id) -> the column values a restore puts in place of a reference it finds
    # gone, or None to leave it empty: a lead always has a stage, so it gets the first open one
    on_missing: dict[str, Callable[[Any, str], dict[str, Any] | None]] = field(default_factory=dict)

    @cached_property
    def fields(self) -> dict[str, FieldSpec]:
        indexed = _indexed_columns(self.table.__table__)  # type: ignore[attr-defined]
        specs = {name: _column_spec(name, info, name in indexed) for name, info in self.table.model_fields.items()}
        specs.pop("workspace_id")
        for link in self.links:
            specs[link.input] = FieldSpec(
                name=link.input,
                kind=Kind.relations,
                annotation=list[str | link.attributes] if link.attributes else list[str],  # type: ignore[name-defined]
                required=False,
                nullable=False,
                read_only=False,
                description=link.description,
                target=link.target,
                link=link,
            )
        return specs

    @cached_property
    def link_fields(self) -> dict[str, FieldSpec]:
        """Attributes of links, filterable as `<link>.<attribute>`: a contact's `organizations.role`."""
        specs = {}
        for link in self.links:
            for name in link.attribute_defaults if link.attributes else ():
                spec = _column_spec(f"{link.name}.{name}", link.table.model_fields[name], indexed=False)
                specs[spec.name] = replace(spec, link=link, read_only=True)
        return specs

    @cached_property
    def filter_fields(self) -> dict[str, FieldSpec]:
        return {n: f for n, f in self.fields.items() if f.filterable} | self.link_fields

    @cached_property
    def writable(self) -> dict[str, FieldSpec]:
        return {n: f for n, f in self.fields.items() if not f.read_only}

    @cached_property
    def link_inputs(self) -> frozenset[str]:
        return frozenset(link.input for link in self.links)

    @cached_property
    def derived_defaults(self) -> dict[str, Any]:
        """Starting values of the read-only fields a create does not set (a lead's converted_at)."""
        return {n: f.default for n, f in self.fields.items() if f.read_only and n not in SYSTEM_FIELDS}

    @cached_property
    def actor_defaults(self) -> tuple[str, ...]:
        """Fields that default to the acting user when a create leaves them out."""
        return tuple(n for n, f in self.writable.items() if f.defaults_to_actor)


def _indexed_columns(table: Any) -> set[str]:
    """Columns with a (workspace_id, column, id) index: the ones a list can sort by with an index walk."""
    shapes = [[c.name for c in index.columns] for index in table.indexes]
    return {cols[1] for cols in shapes if len(cols) == 3 and cols[0] == "workspace_id" and cols[2] == "id"}


def _column_spec(name: str, info: Any, indexed: bool) -> FieldSpec:
    extra = info.json_schema_extra if isinstance(info.json_schema_extra, dict) else {}
    annotation, nullable = _strip_none(info.annotation)
    kind, enum, target = _kind_of(annotation, info, extra)
    required = info.is_required() and name not in SYSTEM_FIELDS
    return FieldSpec(
        name=name,
        kind=kind,
        annotation=annotation,
        required=required,
        nullable=nullable,
        read_only=name in SYSTEM_FIELDS or bool(extra.get("read_only")),
        description=info.description or "",
        enum=enum,
        target=target,
        metadata=tuple(m for m in info.metadata if not isinstance(m, FieldInfoMetadata)),
        default=None
        if info.is_required() or info.default_factory is new_id
        else info.get_default(call_default_factory=True),
        unique=bool(extra.get("unique")),
        defaults_to_actor=bool(extra.get("defaults_to_actor")),
        restricts_delete=getattr(info, "ondelete", None) == "RESTRICT",
        by_name=bool(extra.get("by_name")),
        sortable=indexed and kind not in (Kind.long_text, Kind.tags, Kind.objects, Kind.object),
    )


def _strip_none(annotation: Any) -> tuple[Any, bool]:
    if get_origin(annotation) in (typing.Union, types.UnionType):
        args = [a for a in get_args(annotation) if a is not type(None)]
        return (args[0] if len(args) == 1 else typing.Union[tuple(args)]), len(args) < len(  # noqa: UP007
            get_args(annotation)
        )
    return annotation, False


def _kind_of(annotation: Any, info: Any, extra: dict[str, Any]) -> tuple[Kind, tuple[str, ...] | None, str | None]:
    fk = getattr(info, "foreign_key", None)
    if getattr(info, "primary_key", None) is True:
        return Kind.relation, None, None  # ids compare by equality only
    if isinstance(fk, str):
        return Kind.relation, None, fk.split(".")[0]
    if extra.get("kind"):
        return Kind(extra["kind"]), None, None
    if get_origin(annotation) is Literal:
        return Kind.enum, tuple(get_args(annotation)), None
    if get_origin(annotation) is list:
        (item,) = get_args(annotation)
        return (Kind.tags if item is str else Kind.objects), None, None
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return Kind.object, None, None
    simple = {
        bool: Kind.boolean,
        int: Kind.number,
        float: Kind.number,
        Decimal: Kind.number,
        datetime: Kind.datetime,
        date: Kind.date,
        str: Kind.text,
    }
    for py_type, kind in simple.items():
        if annotation is py_type:
            return kind, None, None
    raise TypeError(f"no field kind for {annotation!r}")
