"""Marketing lists: a static list holds the contacts and leads put in it (lists_add_members); a dynamic list
holds a filter, and its members are whoever matches it now.

Members are rows of `list_contacts` and `list_leads`, written only by the list verbs (operations/lists.py), so a
list of 10,000 people is never loaded as a field. The trash keeps the rows naming a deleted contact or lead and a
restore puts them back; a merge moves them to the record kept (`Entity.member_tables`)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any, Literal

from pydantic import TypeAdapter, ValidationError
from sqlalchemy import JSON, Index, String, UniqueConstraint, func, select
from sqlmodel import Field, SQLModel

from mcp_crm.entities.contacts import CONTACTS
from mcp_crm.entities.custom import definitions, field_spec
from mcp_crm.entities.leads import LEADS
from mcp_crm.entities.names import reference_names
from mcp_crm.entities.spec import Entity, FieldSpec, Record, long_text, meta, workspace_indexes
from mcp_crm.errors import CrmError
from mcp_crm.query import FilterNode, compile_filter
from mcp_crm.query.filters import And, Not, Or
from mcp_crm.store.types import UTCDateTime

MEMBER_ENTITIES = {e.name: e for e in (CONTACTS, LEADS)}
MemberType = Literal["contacts", "leads"]
FILTER: TypeAdapter[FilterNode] = TypeAdapter(FilterNode)


class MarketingList(Record, table=True):
    __tablename__ = "lists"
    __table_args__ = (
        *workspace_indexes("lists", "name", "kind"),
        UniqueConstraint("workspace_id", "name", name="uq_lists_name"),
    )

    name: str = Field(
        min_length=1,
        max_length=200,
        description="e.g. Q3 webinar; unique in the workspace.",
        schema_extra=meta(unique=True),
    )
    description: str | None = long_text("What the list is for.")
    kind: Literal["static", "dynamic"] = Field(
        "static",
        sa_type=String(10),
        description="static: holds the members added with lists_add_members; dynamic: its members are whoever "
        "matches `filter` now.",
    )
    entity: MemberType | None = Field(
        None,
        sa_type=String(10),
        description="Dynamic lists: whom the filter selects, contacts or leads (static lists hold both).",
    )
    filter: dict[str, Any] | None = Field(
        None,
        sa_type=JSON,
        description="Dynamic lists: a filter tree over `entity`, exactly as in contacts_list / leads_list, e.g. "
        '{"field": "email_opt_out", "op": "eq", "value": false}.',
        schema_extra=meta(kind="object"),
    )


class ListContact(SQLModel, table=True):
    """A contact's membership in a static list."""

    __tablename__ = "list_contacts"
    __table_args__ = (Index("ix_list_contacts_contact", "contact_id", "list_id"),)

    list_id: str = Field(foreign_key="lists.id", primary_key=True, ondelete="CASCADE", max_length=36)
    contact_id: str = Field(foreign_key="contacts.id", primary_key=True, ondelete="CASCADE", max_length=36)
    added_at: datetime = Field(sa_type=UTCDateTime)


class ListLead(SQLModel, table=True):
    """A lead's membership in a static list."""

    __tablename__ = "list_leads"
    __table_args__ = (Index("ix_list_leads_lead", "lead_id", "list_id"),)

    list_id: str = Field(foreign_key="lists.id", primary_key=True, ondelete="CASCADE", max_length=36)
    lead_id: str = Field(foreign_key="leads.id", primary_key=True, ondelete="CASCADE", max_length=36)
    added_at: datetime = Field(sa_type=UTCDateTime)


# per member entity: (member table, its column holding the member's id)
MEMBER_TABLES: dict[str, tuple[Any, str]] = {
    "contacts": (ListContact.__table__, "contact_id"),  # type: ignore[attr-defined]
    "leads": (ListLead.__table__, "lead_id"),  # type: ignore[attr-defined]
}


def filter_condition(conn: Any, workspace_id: str, entity_name: str, raw: Any) -> tuple[FilterNode, Any]:
    """A stored or sent filter tree over contacts or leads, and its SQL condition on that table, checked against
    the entity's fields (custom ones included); raises CrmError saying what is wrong and what is valid."""
    entity = MEMBER_ENTITIES[entity_name]
    try:
        node: FilterNode = FILTER.validate_python(raw)
    except ValidationError as exc:
        problem = exc.errors()[0]
        where = ".".join(str(p) for p in problem["loc"]) or "filter"
        raise CrmError(
            f"not a filter tree ({where}: {problem['msg']}); write it as in {entity_name}_list, e.g. "
            '{"field": "email", "op": "ends_with", "value": "@acme.com"}.'
        ) from None
    known: dict[str, dict[str, Any]] = {}

    def custom(name: str) -> FieldSpec:
        if not known:
            known.update(definitions(conn, workspace_id, entity))
        return field_spec(known, entity, name)

    names = reference_names(conn, workspace_id)  # a lead's stage by name, as leads_list reads it
    return node, compile_filter(entity, node, entity.table.__table__, custom, names)  # type: ignore[attr-defined]


def member_count(conn: Any, list_id: str) -> int:
    return sum(
        conn.execute(select(func.count()).select_from(table).where(table.c.list_id == list_id)).scalar_one()
        for table, _ in MEMBER_TABLES.values()
    )


def _check_kind(
    conn: Any, workspace_id: str, writes: list[tuple[dict[str, Any] | None, dict[str, Any]]]
) -> list[tuple[int, str, str]]:
    """A dynamic list needs an entity and a filter that works on it; a static list has neither (turning a
    dynamic list static clears them, and a static list becomes dynamic only once it is empty)."""
    problems: list[tuple[int, str, str]] = []
    for index, (before, values) in enumerate(writes):
        merged = (before or {}) | values
        try:
            if merged["kind"] == "static":
                _as_static(before, values)
            else:
                _as_dynamic(conn, workspace_id, before, values, merged)
        except _Problem as problem:
            problems.append((index, problem.field, str(problem)))
    return problems


class _Problem(CrmError):
    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field


def _as_static(before: dict[str, Any] | None, values: dict[str, Any]) -> None:
    for name in ("entity", "filter"):
        if values.get(name) is not None:
            raise _Problem(name, "only a dynamic list has one; send kind: dynamic with it, or leave it out.")
        if before is not None and before.get(name) is not None:
            values[name] = None  # a dynamic list made static starts empty


def _as_dynamic(
    conn: Any, workspace_id: str, before: dict[str, Any] | None, values: dict[str, Any], merged: dict[str, Any]
) -> None:
    if merged.get("entity") is None:
        raise _Problem("entity", "a dynamic list needs entity: contacts or leads (whom its filter selects).")
    if merged.get("filter") is None:
        raise _Problem("filter", f"a dynamic list needs a filter tree over {merged['entity']}, as in *_list.")
    if before is not None and before["kind"] == "static" and (count := member_count(conn, before["id"])):
        raise _Problem(
            "kind",
            f"the list holds {count} members; remove them first (lists_remove_members), or create a new dynamic list.",
        )
    if "filter" in values or "entity" in values:
        try:
            node, _ = filter_condition(conn, workspace_id, merged["entity"], merged["filter"])
        except CrmError as exc:
            raise _Problem("filter", str(exc)) from None
        node = _by_id(node, MEMBER_ENTITIES[merged["entity"]], reference_names(conn, workspace_id))
        values["filter"] = FILTER.dump_python(node, by_alias=True, exclude_unset=True, mode="json")


def _by_id(node: FilterNode, entity: Entity, names: Callable[[FieldSpec, list[str]], list[str]]) -> FilterNode:
    """The filter tree with the by-name references it gives (a lead's stage: "Qualified") as ids, so the list
    keeps its members when the stage is renamed (a stored name would select no one, or other leads)."""
    if isinstance(node, And):
        return node.model_copy(update={"and_": [_by_id(n, entity, names) for n in node.and_]})
    if isinstance(node, Or):
        return node.model_copy(update={"or_": [_by_id(n, entity, names) for n in node.or_]})
    if isinstance(node, Not):
        return node.model_copy(update={"not_": _by_id(node.not_, entity, names)})
    field = entity.filter_fields.get(node.field)
    if field is None or not field.by_name or node.value is None:
        return node
    if isinstance(node.value, str):
        return node.model_copy(update={"value": names(field, [node.value])[0]})
    if isinstance(node.value, list) and all(isinstance(v, str) for v in node.value):
        return node.model_copy(update={"value": names(field, node.value)})
    return node


LISTS = Entity(
    name="lists",
    singular="list",
    table=MarketingList,
    description="Marketing lists of contacts and leads, for campaigns and emails: static (members added by hand or "
    "by filter) or dynamic (whoever matches a filter now); lists_members pages through the members.",
    prepare=_check_kind,
    member_tables=(ListContact, ListLead),
    on_delete="Its memberships go with it (a restore puts them back); the contacts and leads stay.",
    example={"name": "Q3 webinar", "description": "Invitees of the September webinar", "kind": "static"},
    example_filter={"field": "kind", "op": "eq", "value": "dynamic"},
)
