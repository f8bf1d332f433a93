"""Checks a write must pass before it touches a table: references exist, unique values stay unique,
required fields stay set. Every problem of a bulk call is reported at once, by item index and field."""

from __future__ import annotations

from collections import defaultdict
from functools import cache
from typing import Any

from sqlalchemy import Connection, func, select, tuple_

from mcp_crm.entities import ENTITIES, Entity, Kind
from mcp_crm.errors import CrmError
from mcp_crm.operations.actor import Actor
from mcp_crm.operations.records import ids_in_workspace, table_of
from mcp_crm.store.tables import CHANGE_EVENTS as EVENTS

MAX_REPORTED = 20


class Problems:
    """Collects what is wrong with a call's items; `raise_if_any` turns them into one error."""

    def __init__(self, bulk: bool) -> None:
        self.bulk = bulk
        self.lines: list[str] = []
        self.found: list[tuple[int, str | None, str]] = []

    def add(self, index: int, field: str | None, message: str) -> None:
        self.found.append((index, field, message))
        where = [f"items[{index}]"] if self.bulk else []
        if field:
            where.append(field)
        self.lines.append(f"{'.'.join(where)}: {message}" if where else message)

    def raise_if_any(self, nothing_changed: bool = True) -> None:
        if not self.lines:
            return
        shown = self.lines[:MAX_REPORTED]
        more = len(self.lines) - len(shown)
        head = f"{len(self.lines)} problem(s)" + ("; nothing was changed" if nothing_changed else "")
        tail = [f"... and {more} more"] if more else []
        raise InvalidItems("\n".join([f"{head}:", *(f"- {line}" for line in shown), *tail]), self.found)


class InvalidItems(CrmError):
    """Problems with some items of a write, each as (item index, field, message): an import sets those rows
    aside and writes the rest."""

    def __init__(self, text: str, found: list[tuple[int, str | None, str]]) -> None:
        super().__init__(text)
        self.found = found


def existing_ids(conn: Connection, actor: Actor, target: str, ids: set[str]) -> set[str]:
    return ids_in_workspace(conn, actor, ENTITIES[target], sorted(ids))


@cache
def _reference_fields(entity: Entity) -> tuple[tuple[str, str, str | None], ...]:
    """(field, target entity, the link column holding the target's id in an item with attributes)."""
    return tuple(
        (name, field.target, field.link.target_column if field.kind is Kind.relations and field.link else None)
        for name, field in entity.fields.items()
        if field.target is not None
        and (field.kind is Kind.relation or (field.kind is Kind.relations and field.link is not None))
    )


def _references(entity: Entity, values: dict[str, Any]) -> list[tuple[str, str, str]]:
    """(field, target entity, id) for every reference among `values`."""
    refs = []
    for name, target, column in _reference_fields(entity):
        value = values.get(name)
        if value is None:
            continue
        if column is None:
            refs.append((name, target, value))
        else:
            refs.extend((name, target, item[column] if isinstance(item, dict) else item) for item in value)
    return refs


def check_references(
    conn: Connection, actor: Actor, entity: Entity, items: list[dict[str, Any]], problems: Problems
) -> None:
    wanted: dict[str, set[str]] = defaultdict(set)
    per_item = [_references(entity, values) for values in items]
    for refs in per_item:
        for _, target, ref in refs:
            wanted[target].add(ref)
    found = {target: existing_ids(conn, actor, target, ids) for target, ids in wanted.items()}
    for index, refs in enumerate(per_item):
        for field, target, ref in refs:
            if ref not in found[target]:
                what = ENTITIES[target].singular
                problems.add(index, field, f"no {what} with id '{ref}' (find one with {target}_list).")


def check_link_duplicates(entity: Entity, items: list[dict[str, Any]], problems: Problems) -> None:
    for index, values in enumerate(items):
        for link in entity.links:
            entries = values.get(link.input)
            if not entries:
                continue
            ids = [e[link.target_column] if isinstance(e, dict) else e for e in entries]
            if len(ids) > link.max_items:
                problems.add(index, link.input, f"at most {link.max_items} entries.")
            if len(set(ids)) != len(ids):
                problems.add(index, link.input, "lists the same id more than once.")


def check_unique(
    conn: Connection,
    actor: Actor,
    entity: Entity,
    items: list[dict[str, Any]],
    problems: Problems,
    own_ids: list[str | None],
) -> None:
    """Unique fields (and unique_together groups) stay unique: against stored records other than the item
    itself, and within the call. An item that leaves out part of a group is not checked for that group."""
    table = table_of(entity)
    groups = [(f.name,) for f in entity.fields.values() if f.unique] + list(entity.unique_together)
    for group in groups:
        seen: dict[tuple[Any, ...], int] = {}
        combos = {tuple(v[n] for n in group) for v in items if all(v.get(n) is not None for n in group)}
        if not combos:
            continue
        columns = [table.c[n] for n in group]
        query = select(*columns, table.c.id).where(
            table.c.workspace_id == actor.workspace_id, tuple_(*columns).in_(sorted(combos))
        )
        holders = {tuple(row[:-1]): row[-1] for row in conn.execute(query).all()}
        for index, item in enumerate(items):
            if not all(item.get(n) is not None for n in group):
                continue
            combo = tuple(item[n] for n in group)
            shown = " ".join(str(v) for v in combo)
            where = group[-1]
            holder = holders.get(combo)
            if holder is not None and holder != own_ids[index]:
                problems.add(index, where, f"'{shown}' is already used by {entity.singular} {holder}.")
            elif combo in seen:
                problems.add(index, where, f"'{shown}' is also given to items[{seen[combo]}].")
            seen.setdefault(combo, index)


def check_restricted_links(conn: Connection, entity: Entity, ids: list[str], problems: Problems) -> None:
    """A record that other records list with `restrict_target_delete` (a service on deals) stays."""
    for owner in ENTITIES.values():
        for link in owner.links:
            if link.target != entity.name or not link.restrict_target_delete:
                continue
            table = link.table.__table__  # type: ignore[attr-defined]
            target = table.c[link.target_column]
            query = select(target, func.count()).where(target.in_(ids)).group_by(target)
            counts = dict((conn.execute(query)).all())
            for index, rid in enumerate(ids):
                if counts.get(rid):
                    problems.add(
                        index,
                        None,
                        f"{entity.singular} {rid} is listed in `{link.input}` of {counts[rid]} {owner.name}; "
                        f"remove it there first (or keep it and mark it inactive).",
                    )


def check_revision(
    conn: Connection, entity: Entity, row: dict[str, Any], expected: int | None, index: int, problems: Problems
) -> None:
    """A caller that sends expected_revision changes the record only if nobody changed it since it was read."""
    if expected is None or expected == row["revision"]:
        return
    changed = sorted(_fields_changed_since(conn, entity, row["id"], expected))
    since = f"; changed since: {', '.join(changed)}" if changed else ""
    problems.add(
        index,
        "expected_revision",
        f"{entity.singular} {row['id']} is at revision {row['revision']}, not {expected}{since}. "
        f"Read it again with {entity.name}_get and retry.",
    )


def _fields_changed_since(conn: Connection, entity: Entity, record_id: str, revision: int) -> set[str]:
    """Fields the recorded updates after `revision` changed (their `before` holds exactly those fields)."""
    query = (
        select(EVENTS.c.before, EVENTS.c.after)
        .where(EVENTS.c.entity == entity.name, EVENTS.c.record_id == record_id, EVENTS.c.action == "updated")
        .order_by(EVENTS.c.id.desc())
        .limit(200)
    )
    fields: set[str] = set()
    for before, after in conn.execute(query):
        if (after or {}).get("revision", 0) > revision:
            fields.update(before or {})
    return fields
