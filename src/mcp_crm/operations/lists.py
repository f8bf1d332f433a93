"""Marketing list members: who is in a list (static: its member rows; dynamic: whoever matches its filter now),
adding and removing them set-based, and a page of members with their email status."""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Connection, String, and_, case, delete, func, insert, literal, null, or_, select, true, update

from mcp_crm.entities.lists import LISTS, MEMBER_ENTITIES, MEMBER_TABLES, filter_condition
from mcp_crm.errors import Conflict, CrmError
from mcp_crm.operations.actor import Actor
from mcp_crm.operations.records import not_found, rows_by_id, table_of, title_expression, to_output
from mcp_crm.operations.writes import record_events
from mcp_crm.store.tables import TRASH
from mcp_crm.store.types import UTCDateTime

MEMBER_TYPES = tuple(MEMBER_ENTITIES)  # members come in this order: contacts, then leads, each by id


def list_row(conn: Connection, actor: Actor, list_id: str, lock: bool = False) -> dict[str, Any]:
    """The stored list; raises NotFound for an id that is not a list of the workspace."""
    found = rows_by_id(conn, actor, LISTS, [list_id], lock)
    if list_id not in found:
        raise not_found(LISTS, [list_id])
    return found[list_id]


def dynamic_condition(conn: Connection, actor: Actor, row: dict[str, Any]) -> Any:
    """The SQL condition a dynamic list's members match, on its entity's table."""
    try:
        _, condition = filter_condition(conn, actor.workspace_id, row["entity"], row["filter"])
    except CrmError as exc:
        raise CrmError(f"The filter of list '{row['name']}' no longer works: {exc} Fix it with lists_update.") from None
    return condition


def member_ids(conn: Connection, actor: Actor, row: dict[str, Any], member_type: str) -> Any:
    """A SELECT of the ids (column `id`) of the list's members of one type, or None when it can hold none."""
    if row["kind"] == "static":
        table, column = MEMBER_TABLES[member_type]
        return select(table.c[column].label("id")).where(table.c.list_id == row["id"])
    if row["entity"] != member_type:
        return None
    table = table_of(MEMBER_ENTITIES[member_type])
    return select(table.c.id.label("id")).where(
        table.c.workspace_id == actor.workspace_id, dynamic_condition(conn, actor, row)
    )


def list_member_refs(conn: Connection, actor: Actor, list_id: str) -> list[tuple[str, str]]:
    """("contacts" | "leads", record id) for every member of the list, static or dynamic: contacts first, then
    leads, each in id order (the order lists_members pages in). Raises NotFound for an unknown list."""
    row = list_row(conn, actor, list_id)
    refs: list[tuple[str, str]] = []
    for member_type in MEMBER_TYPES:
        query = member_ids(conn, actor, row, member_type)
        if query is not None:
            ids = conn.execute(query.order_by("id")).scalars()
            refs.extend((member_type, rid) for rid in ids)
    return refs


# ------------------------------------------------------------------------------------------ adding and removing


@dataclass
class MemberRequest:
    """Whom an add or remove names: ids per member type, and a filter tree over one of them."""

    ids: dict[str, list[str]]
    filter_entity: str | None = None
    filter: Any = None


def change_members(
    conn: Connection, actor: Actor, list_id: str, request: MemberRequest, adding: bool
) -> dict[str, Any]:
    """Adds (or removes) the named and matching records as members of a static list, set-based, in the caller's
    transaction: {list, added|removed, already_there|not_there, skipped, members}. Counts are exact: a record both
    named and matched counts once."""
    row = list_row(conn, actor, list_id, lock=True)
    _refuse_dynamic(row, adding)
    condition = _filter_of(conn, actor, request)
    before = _counts(conn, row["id"])
    requested: dict[str, int] = {}
    skipped: list[dict[str, str]] = []
    now = datetime.now(UTC)
    for member_type in MEMBER_TYPES:
        wanted, missing = _existing(conn, actor, member_type, request.ids.get(member_type, []))
        skipped += missing
        matched = [condition] if condition is not None and request.filter_entity == member_type else []
        if not wanted and not matched:
            requested[member_type] = 0
            continue
        table = table_of(MEMBER_ENTITIES[member_type])
        chosen = and_(table.c.workspace_id == actor.workspace_id, or_(table.c.id.in_(wanted), *matched))
        requested[member_type] = conn.execute(select(func.count()).select_from(table).where(chosen)).scalar_one()
        if adding:
            _insert(conn, row["id"], member_type, chosen, now)
        else:
            _delete(conn, row["id"], member_type, chosen)
    after = _counts(conn, row["id"])
    changed = {t: abs(after[t] - before[t]) for t in MEMBER_TYPES}
    if any(changed.values()):
        row = _touch(conn, actor, row, before, after, now)
    done, untouched = ("added", "already_there") if adding else ("removed", "not_there")
    return {
        "list": {"id": row["id"], "name": row["name"]},
        done: changed,
        untouched: {t: requested[t] - changed[t] for t in MEMBER_TYPES},
        "skipped": skipped,
        "members": after,
    }


def _refuse_dynamic(row: dict[str, Any], adding: bool) -> None:
    if row["kind"] == "dynamic":
        verb = "added to" if adding else "removed from"
        raise CrmError(
            f"'{row['name']}' is a dynamic list: its members are whoever matches its filter over {row['entity']} "
            f"now, so none can be {verb} it by hand. Change the filter with lists_update, or use a static list "
            "(kind: static). Nothing was changed."
        )


def _filter_of(conn: Connection, actor: Actor, request: MemberRequest) -> Any:
    """The SQL condition of the request's filter, or None; refuses a filter without its entity and the reverse."""
    if (request.filter is None) != (request.filter_entity is None):
        raise CrmError(
            "A filter needs its entity and the reverse: send both, e.g. "
            '"entity": "leads", "filter": {"field": "source", "op": "eq", "value": "webinar"}. Nothing was changed.'
        )
    if not any(request.ids.values()) and request.filter is None:
        raise CrmError("Name whom to change: contact_ids, lead_ids, or entity with a filter. Nothing was changed.")
    if request.filter is None:
        return None
    try:
        _, condition = filter_condition(conn, actor.workspace_id, request.filter_entity, request.filter)
    except CrmError as exc:
        raise CrmError(f"filter: {exc} Nothing was changed.") from None
    return condition


def _existing(
    conn: Connection, actor: Actor, member_type: str, ids: list[str]
) -> tuple[list[str], list[dict[str, str]]]:
    """(the ids that are records of the workspace, [{type, id, why}] for the others)."""
    entity = MEMBER_ENTITIES[member_type]
    unique = list(dict.fromkeys(ids))
    found = rows_by_id(conn, actor, entity, unique) if unique else {}
    missing = [rid for rid in unique if rid not in found]
    trashed: set[str] = set()
    if missing:
        query = select(TRASH.c.record_id).where(
            TRASH.c.workspace_id == actor.workspace_id, TRASH.c.entity == member_type, TRASH.c.record_id.in_(missing)
        )
        trashed = set(conn.execute(query).scalars())
    skipped = [
        {
            "type": member_type,
            "id": rid,
            "why": f"this {entity.singular} is in the trash ({member_type}_restore brings it back)"
            if rid in trashed
            else f"no {entity.singular} has this id (find ids with {member_type}_list)",
        }
        for rid in missing
    ]
    return [rid for rid in unique if rid in found], skipped


def _insert(conn: Connection, list_id: str, member_type: str, chosen: Any, now: datetime) -> None:
    """INSERT ... SELECT of the chosen records that are not members yet: one statement, however many."""
    members, column = MEMBER_TABLES[member_type]
    table = table_of(MEMBER_ENTITIES[member_type])
    already = select(1).where(members.c.list_id == list_id, members.c[column] == table.c.id).exists()
    rows = select(
        literal(list_id, String()).label("list_id"), table.c.id, literal(now, UTCDateTime()).label("added_at")
    ).where(chosen, ~already)
    conn.execute(insert(members).from_select(["list_id", column, "added_at"], rows))


def _delete(conn: Connection, list_id: str, member_type: str, chosen: Any) -> None:
    members, column = MEMBER_TABLES[member_type]
    table = table_of(MEMBER_ENTITIES[member_type])
    conn.execute(
        delete(members).where(members.c.list_id == list_id, members.c[column].in_(select(table.c.id).where(chosen)))
    )


def _counts(conn: Connection, list_id: str) -> dict[str, int]:
    return {
        member_type: conn.execute(
            select(func.count()).select_from(table).where(table.c.list_id == list_id)
        ).scalar_one()
        for member_type, (table, _) in MEMBER_TABLES.items()
    }


def _touch(
    conn: Connection, actor: Actor, row: dict[str, Any], before: dict[str, int], after: dict[str, int], now: datetime
) -> dict[str, Any]:
    """A change of members is a change of the list: a new revision and an `updated` event whose `members` holds
    the counts before and after (audit, webhooks and dry-run previews read it)."""
    table = table_of(LISTS)
    done = conn.execute(
        update(table)
        .where(table.c.id == row["id"], table.c.revision == row["revision"])
        .values(updated_at=now, revision=row["revision"] + 1)
    )
    if done.rowcount != 1:
        raise Conflict(f"list {row['id']} was changed by someone else during this call; retry. Nothing was changed.")
    changed = row | {"updated_at": now, "revision": row["revision"] + 1}
    record = to_output(LISTS, changed)
    record_events(conn, actor, LISTS, "updated", now, [(row["id"], {"members": before}, record | {"members": after})])
    return changed


# --------------------------------------------------------------------------------------------- reading members

EMAIL_STATUSES = ("ok", "opted_out", "no_email")


def list_members(conn: Connection, actor: Actor, list_id: str, limit: int, cursor: str | None) -> dict[str, Any]:
    """A page of members, contacts first then leads, each with its email (a lead's is its contact's) and email
    status: {list, items, has_more, next_cursor, total, email_statuses}."""
    row = list_row(conn, actor, list_id)
    after = _read_cursor(cursor, list_id)
    start = MEMBER_TYPES.index(after[0]) if after else 0  # the page goes on from that type's last id
    items: list[dict[str, Any]] = []
    statuses = dict.fromkeys(EMAIL_STATUSES, 0)
    for position, member_type in enumerate(MEMBER_TYPES):
        source = _member_source(conn, actor, row, member_type)
        if source is None:
            continue
        for status, count in conn.execute(_status_counts(source)).all():
            statuses[status] += count
        if position >= start and len(items) <= limit:
            last = after[1] if after and position == start else None
            items += _page(conn, source, member_type, last, limit + 1 - len(items))
    has_more = len(items) > limit
    items = items[:limit]
    return {
        "list": {"id": row["id"], "name": row["name"], "kind": row["kind"]},
        "items": items,
        "has_more": has_more,
        "next_cursor": _make_cursor(list_id, items[-1]) if has_more else None,
        "total": sum(statuses.values()),
        "email_statuses": statuses,
    }


@dataclass(frozen=True)
class _Source:
    """Where one type of member is read from: the joined tables, the member's id column, the conditions that pick
    the list's members, and the columns shown."""

    joined: Any
    id: Any
    where: tuple[Any, ...]
    columns: tuple[Any, ...]
    status: Any


def _member_source(conn: Connection, actor: Actor, row: dict[str, Any], member_type: str) -> _Source | None:
    entity = MEMBER_ENTITIES[member_type]
    table, people = table_of(entity), table_of(MEMBER_ENTITIES["contacts"])
    if member_type == "contacts":
        joined, person = table, table
        contact_id: Any = null()
    else:
        joined, person = table.outerjoin(people, people.c.id == table.c.contact_id), people
        contact_id = table.c.contact_id
    if row["kind"] == "static":
        members, column = MEMBER_TABLES[member_type]
        joined = members.join(joined, table.c.id == members.c[column])
        where: tuple[Any, ...] = (members.c.list_id == row["id"],)
        added_at: Any = members.c.added_at
    elif row["entity"] == member_type:
        where = (table.c.workspace_id == actor.workspace_id, dynamic_condition(conn, actor, row))
        added_at = null()
    else:
        return None
    status = case((person.c.email_opt_out == true(), "opted_out"), (person.c.email.is_(None), "no_email"), else_="ok")
    columns = (
        table.c.id.label("id"),
        title_expression(entity).label("name"),
        person.c.email.label("email"),
        status.label("email_status"),
        contact_id.label("contact_id"),
        added_at.label("added_at"),
    )
    return _Source(joined, table.c.id, where, columns, status)


def _status_counts(source: _Source) -> Any:
    return select(source.status, func.count()).select_from(source.joined).where(*source.where).group_by(source.status)


def _page(conn: Connection, source: _Source, member_type: str, last: str | None, limit: int) -> list[dict[str, Any]]:
    where = [*source.where, source.id > last] if last is not None else list(source.where)
    query = select(*source.columns).select_from(source.joined).where(*where).order_by(source.id).limit(limit)
    return [{"type": member_type, **item} for item in conn.execute(query).mappings()]


def _make_cursor(list_id: str, item: dict[str, Any]) -> str:
    payload = json.dumps({"list": list_id, "type": item["type"], "id": item["id"]}, separators=(",", ":"))
    return base64.urlsafe_b64encode(payload.encode()).decode().rstrip("=")


def _read_cursor(cursor: str | None, list_id: str) -> tuple[str, str] | None:
    if cursor is None:
        return None
    try:
        payload = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
        made_for, member_type, last = payload["list"], payload["type"], payload["id"]
    except (ValueError, KeyError, TypeError):
        raise CrmError("The cursor is not valid: pass next_cursor from the previous page exactly.") from None
    if made_for != list_id or member_type not in MEMBER_TYPES or not isinstance(last, str):
        raise CrmError("The cursor belongs to another list: repeat the call with the list it came from.")
    return member_type, last
