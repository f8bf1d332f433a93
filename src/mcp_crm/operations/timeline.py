"""The timeline of one contact, organization, deal or lead: one feed, newest first, of its own changes and
of the events of the records about it or linked to it. Read from the change events every write records in
its own transaction, so nothing is written twice.

Which records count as related is derived from the entity declarations: every entity with a reference field
(an activity's contact_id), a link list (a deal's contacts) or a record_type/record_id pair (a note) that can
point at the record. Activities, notes and tasks show every event of theirs that involved the record; other
related records (a lead of the contact, a deal with the organization) show only the events that linked or
unlinked them. Related records are found where they point at the record now, and in the trash (a deleted note's
events stay on the timeline until the trash is emptied). A record that pointed here once and no longer does (a
contact whose organization_ids dropped this organization) is left off: its own timeline has the change. Finding
it would take a search through every event of the workspace, since an event names only the record it changed."""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cache
from typing import Any

from sqlalchemy import Connection, Text, and_, cast, or_, select

from mcp_crm.entities import ENTITIES, Entity, Kind, Link
from mcp_crm.errors import CrmError
from mcp_crm.operations.actor import Actor
from mcp_crm.operations.records import not_found, rows_by_id, table_of, title_of
from mcp_crm.store.tables import CHANGE_EVENTS as EVENTS
from mcp_crm.store.tables import TRASH

TIMELINE_TYPES = ("contacts", "organizations", "deals", "leads")
KINDS = ("created", "change", "stage", "link", "activity", "note", "task", "deleted", "restored")
FEED_KINDS = {"activities": "activity", "notes": "note", "tasks": "task"}  # related records shown in full
OWN_ACTIONS = {
    "created": "created",
    "change": "updated",
    "stage": "updated",
    "link": "updated",
    "deleted": "deleted",
    "restored": "restored",
}
STAGE_FIELD = "stage_id"
IMPLIED_BY_STAGE = frozenset({"stage_entered_at"})  # stamped by every stage move: not a change of its own
IDS_PER_STATEMENT = 500  # record ids in one statement's IN lists (a record may have thousands of activities)
MIN_BATCH = 50  # events read per round: pages of a filtered timeline may need several rounds
BODY_CHARS = 200
MAX_PARTS = 6  # changes named in one summary


@dataclass(frozen=True, eq=False)
class Source:
    """How records of one entity point at a record of the timeline's entity."""

    entity: Entity
    kind: str  # activity, note, task, or link
    fields: tuple[str, ...]  # reference fields (an activity's contact_id)
    links: tuple[Link, ...]  # link lists (a deal's contacts)
    about: bool  # a record_type/record_id pair (a note)

    def refs(self, target: Entity, record_id: str, state: Mapping[str, Any] | None) -> frozenset[tuple[str, ...]]:
        """How a record in this state points at the target: one marker per reference or link item (with the
        link's attributes, so a changed role counts as a change)."""
        if not state:
            return frozenset()
        found = {(name,) for name in self.fields if state.get(name) == record_id}
        if self.about and state.get("record_type") == target.name and state.get("record_id") == record_id:
            found.add(("record_id",))
        for link in self.links:
            for item in state.get(link.name) or []:
                if isinstance(item, dict) and item.get("id") == record_id:
                    found.add((link.name, json.dumps(item, sort_keys=True, default=str)))
        return frozenset(found)

    def names_in_trash(self, target: Entity, record_id: str, row: Mapping[str, Any], links: Mapping[str, Any]) -> bool:
        """Whether a trashed record of this entity (its row and the link rows kept with it) pointed at the target."""
        if any(row.get(name) == record_id for name in self.fields):
            return True
        if self.about and row.get("record_type") == target.name and row.get("record_id") == record_id:
            return True
        return any(
            r.get(link.target_column) == record_id
            for link in self.links
            for r in links.get(link.table.__tablename__, [])  # type: ignore[attr-defined]
        )


@cache
def sources(target: Entity) -> tuple[Source, ...]:
    found = []
    for entity in ENTITIES.values():
        if entity is target:
            continue
        fields = tuple(
            name
            for name, f in entity.fields.items()
            if f.kind is Kind.relation and f.target == target.name and f.link is None
        )
        links = tuple(link for link in entity.links if link.target == target.name)
        record_type = entity.fields.get("record_type")
        about = record_type is not None and "record_id" in entity.fields and target.name in (record_type.enum or ())
        if fields or links or about:
            found.append(Source(entity, FEED_KINDS.get(entity.name, "link"), fields, links, about))
    return tuple(found)


@dataclass(frozen=True)
class _Picked:
    row: Mapping[str, Any]
    kind: str
    source: Source | None  # None: the record's own event
    was: frozenset[tuple[str, ...]] = frozenset()  # how a related record pointed at the record before the event
    now: frozenset[tuple[str, ...]] = frozenset()  # ... and after it


def record_timeline(
    conn: Connection,
    actor: Actor,
    record_type: str,
    record_id: str,
    kinds: list[str] | None,
    limit: int,
    cursor: str | None,
) -> dict[str, Any]:
    """{"record": {type, id, title, in_trash}, "items": a page of entries newest first, "next_cursor"}."""
    if record_type not in TIMELINE_TYPES:
        raise CrmError(f"Timelines are kept for {', '.join(TIMELINE_TYPES)}; '{record_type}' is not one of them.")
    target = ENTITIES[record_type]
    record, own_entry = _the_record(conn, actor, target, record_id)
    wanted = set(kinds or KINDS)
    by_name = {s.entity.name: s for s in sources(target)}
    related: dict[str, set[str]] = {}
    if any(s.kind in wanted for s in by_name.values()):
        found = _related_ids(conn, actor, target, record_id, own_entry)
        related = {name: ids for name, ids in found.items() if by_name[name].kind in wanted}
    own_actions = {OWN_ACTIONS[k] for k in wanted if k in OWN_ACTIONS}
    statements = _statements(target, record_id, own_actions, related)

    picked: list[_Picked] = []
    upper, batch = cursor, min(max(limit * 2, MIN_BATCH), 500)
    while statements and len(picked) <= limit:
        rows, exhausted = _events(conn, actor, statements, upper, batch)
        for row in rows:
            found = _classify(target, record_id, by_name, row)
            if found is not None and found.kind in wanted:
                picked.append(found)
                if len(picked) > limit:
                    break
        if exhausted or not rows:
            break
        upper = rows[-1]["id"]
    page = picked[:limit]
    next_cursor = page[-1].row["id"] if len(picked) > limit else None
    return {"record": record, "items": _entries(conn, actor, target, record_id, page), "next_cursor": next_cursor}


def _the_record(
    conn: Connection, actor: Actor, target: Entity, record_id: str
) -> tuple[dict[str, Any], Mapping[str, Any] | None]:
    """The record (live or in the trash, never another workspace's) and its trash entry when it is deleted."""
    live = rows_by_id(conn, actor, target, [record_id]).get(record_id)
    if live is not None:
        return {"type": target.name, "id": record_id, "title": title_of(target, live), "in_trash": False}, None
    entry = (
        conn.execute(
            select(TRASH).where(
                TRASH.c.workspace_id == actor.workspace_id,
                TRASH.c.entity == target.name,
                TRASH.c.record_id == record_id,
            )
        )
        .mappings()
        .first()
    )
    if entry is None:
        raise not_found(
            target, [record_id], f"A deleted {target.singular} keeps its timeline while it is in the trash."
        )
    return {"type": target.name, "id": record_id, "title": entry["name"], "in_trash": True}, entry


def _related_ids(
    conn: Connection, actor: Actor, target: Entity, record_id: str, own_entry: Mapping[str, Any] | None
) -> dict[str, set[str]]:
    """{entity: ids} of the records that point at the record now, that pointed at it when it was deleted (its
    trash entry keeps their links and references), and trashed records that pointed at it."""
    found: dict[str, set[str]] = defaultdict(set)
    for source in sources(target):
        name, table = source.entity.name, table_of(source.entity)
        for field in source.fields:
            query = select(table.c.id).where(table.c.workspace_id == actor.workspace_id, table.c[field] == record_id)
            found[name].update(conn.execute(query).scalars())
        if source.about:
            query = select(table.c.id).where(
                table.c.workspace_id == actor.workspace_id,
                table.c.record_type == target.name,
                table.c.record_id == record_id,
            )
            found[name].update(conn.execute(query).scalars())
        for link in source.links:
            links = link.table.__table__  # type: ignore[attr-defined]
            query = select(links.c[link.own_column]).where(links.c[link.target_column] == record_id)
            found[name].update(conn.execute(query).scalars())
    by_name = {s.entity.name: s for s in sources(target)}
    if own_entry is not None:
        for table_name, rows in own_entry["links"].items():
            for source in by_name.values():
                for link in source.links:
                    if link.table.__tablename__ == table_name:  # type: ignore[attr-defined]
                        found[source.entity.name].update(
                            r[link.own_column] for r in rows if r.get(link.target_column) == record_id
                        )
        for entity_name, _field, referring in own_entry["referenced_by"]:
            if entity_name in by_name:
                found[entity_name].add(referring)
    # trashed records that named it: a text search narrows the entries down, their rows decide
    query = select(TRASH.c.entity, TRASH.c.record_id, TRASH.c.row, TRASH.c.links).where(
        TRASH.c.workspace_id == actor.workspace_id,
        TRASH.c.entity.in_(sorted(by_name)),
        or_(cast(TRASH.c.row, Text).contains(record_id), cast(TRASH.c.links, Text).contains(record_id)),
    )
    for entry in conn.execute(query).mappings():
        if by_name[entry["entity"]].names_in_trash(target, record_id, entry["row"], entry["links"]):
            found[entry["entity"]].add(entry["record_id"])
    return {name: ids for name, ids in found.items() if ids}


def _statements(
    target: Entity, record_id: str, own_actions: set[str], related: dict[str, set[str]]
) -> list[tuple[list[Any], bool]]:
    """The conditions of each statement that reads events, and whether it reads the record's own events (the
    other statements name at most IDS_PER_STATEMENT related record ids)."""
    statements: list[tuple[list[Any], bool]] = []
    if own_actions:
        own = and_(
            EVENTS.c.entity == target.name,
            EVENTS.c.record_id == record_id,
            EVENTS.c.action.in_(sorted(own_actions)),
        )
        statements.append(([own], True))
    size = IDS_PER_STATEMENT
    for name, ids in sorted(related.items()):
        ordered = sorted(ids)
        for start in range(0, len(ordered), IDS_PER_STATEMENT):
            chunk = ordered[start : start + IDS_PER_STATEMENT]
            if size + len(chunk) > IDS_PER_STATEMENT:
                statements.append(([], False))
                size = 0
            statements[-1][0].append(and_(EVENTS.c.entity == name, EVENTS.c.record_id.in_(chunk)))
            size += len(chunk)
    return statements


def _events(
    conn: Connection, actor: Actor, statements: list[tuple[list[Any], bool]], upper: str | None, size: int
) -> tuple[list[Mapping[str, Any]], bool]:
    """The newest `size` events below `upper` over all statements, and whether there are no more."""
    rows: list[Mapping[str, Any]] = []
    for conditions, own in statements:
        where = [EVENTS.c.workspace_id == actor.workspace_id, or_(*conditions), EVENTS.c.action != "purged"]
        if upper is not None:
            where.append(EVENTS.c.id < upper)
        # The record's own events are one walk down ix_change_events_record. Related records' events are found
        # by that index too, then sorted: ordering by the bare id would let the planner walk the whole
        # workspace's events newest first (ix_change_events_workspace or the primary key) looking for them,
        # which costs the workspace's history when they are old. `id || ''` sorts the same but uses no index.
        order = EVENTS.c.id if own else EVENTS.c.id + ""
        query = select(EVENTS).where(*where).order_by(order.desc()).limit(size)
        rows += conn.execute(query).mappings().all()
    rows.sort(key=lambda r: r["id"], reverse=True)
    return rows[:size], len(rows) < size


def _states(row: Mapping[str, Any]) -> tuple[dict[str, Any] | None, dict[str, Any] | None]:
    """(the record before the event, after it): whole records (an update's `before` holds only what changed)."""
    before, after = row["before"], row["after"]
    match row["action"]:
        case "created" | "restored":
            return None, after
        case "deleted":
            return before, None
        case _:
            return (after or {}) | (before or {}), after


def _classify(target: Entity, record_id: str, by_name: dict[str, Source], row: Mapping[str, Any]) -> _Picked | None:
    """The event's kind on this timeline, or None when it does not belong there."""
    if row["entity"] == target.name:
        if row["record_id"] != record_id:
            return None
        return _Picked(row, _own_kind(target, row), None)
    source = by_name.get(row["entity"])
    if source is None:
        return None
    old, new = _states(row)
    was, now = source.refs(target, record_id, old), source.refs(target, record_id, new)
    if not was and not now:
        return None  # from before it pointed here, or after it moved elsewhere
    if source.kind == "link" and row["action"] == "updated" and was == now:
        return None  # a linked record changed in ways that do not concern this one
    return _Picked(row, source.kind, source, was, now)


def _own_kind(target: Entity, row: Mapping[str, Any]) -> str:
    if row["action"] != "updated":
        return str(row["action"])
    changed = set(row["before"] or {})
    if STAGE_FIELD in changed and STAGE_FIELD in target.fields:
        return "stage"
    if changed - {link.name for link in target.links}:
        return "change"
    return "link" if changed else "change"


# --- entries -----------------------------------------------------------------------------------------


@dataclass
class _Names:
    users: dict[str, str]
    stages: dict[str, str]
    activity_types: dict[str, str]


def _entries(
    conn: Connection, actor: Actor, target: Entity, record_id: str, page: list[_Picked]
) -> list[dict[str, Any]]:
    names = _lookup_names(conn, actor, target, page)
    return [_entry(target, record_id, p, names) for p in page]


def _lookup_names(conn: Connection, actor: Actor, target: Entity, page: list[_Picked]) -> _Names:
    users = {p.row["user_id"] for p in page}
    stages: set[str | None] = set()
    types: set[str] = set()
    for p in page:
        old, new = _states(p.row)
        if p.source is None and STAGE_FIELD in (p.row["before"] or {}) | (p.row["after"] or {}):
            stages.update(((old or {}).get(STAGE_FIELD), (new or {}).get(STAGE_FIELD)))
        if p.source is not None and p.source.entity.name == "activities":
            types.add(str((new or old or {}).get("type")))
    kinds = ENTITIES["activity_types"]
    table = table_of(kinds)
    stage_field = target.fields.get(STAGE_FIELD)  # a deal's stage, a lead's lead stage
    stage_entity = ENTITIES[stage_field.target] if stage_field and stage_field.target else None
    query = select(table.c.key, table.c.name).where(
        table.c.workspace_id == actor.workspace_id, table.c.key.in_(sorted(types))
    )
    return _Names(
        users=_titles(conn, actor, ENTITIES["users"], users),
        stages=_titles(conn, actor, stage_entity, stages) if stage_entity else {},
        activity_types=dict(conn.execute(query).all()) if types else {},  # type: ignore[arg-type]
    )


def _titles(conn: Connection, actor: Actor, entity: Entity, ids: set[str | None]) -> dict[str, str]:
    """{id: name} of records of the workspace, live or in the trash."""
    wanted = sorted(i for i in ids if i)
    if not wanted:
        return {}
    found = {rid: title_of(entity, row) for rid, row in rows_by_id(conn, actor, entity, wanted).items()}
    missing = [i for i in wanted if i not in found]
    if missing:
        query = select(TRASH.c.record_id, TRASH.c.name).where(
            TRASH.c.workspace_id == actor.workspace_id, TRASH.c.entity == entity.name, TRASH.c.record_id.in_(missing)
        )
        found.update({rid: name for rid, name in conn.execute(query).all()})
    return found


def _entry(target: Entity, record_id: str, p: _Picked, names: _Names) -> dict[str, Any]:
    row = p.row
    entity = target if p.source is None else p.source.entity
    old, new = _states(row)
    snapshot = new or old or {}
    entry: dict[str, Any] = {
        "id": row["id"],
        "occurred_at": row["occurred_at"],
        "kind": p.kind,
        "action": row["action"],
        "via": row["via"],
        "tool": row["tool"],
    }
    if row["user_id"] is not None:
        entry["user"] = {"id": row["user_id"], "name": names.users.get(row["user_id"])}
    changes, links, stage = _diff(entity, row, p.source is None) if row["action"] == "updated" else ({}, [], None)
    if p.source is not None and p.kind == "link":
        changes, links = {}, [change for change in links if change["id"] == record_id]
    if changes:
        entry["changes"] = changes
    if links:
        entry["links"] = links
    if stage is not None:
        entry["stage"] = {
            side: _stage_ref(stage_id, names) for side, stage_id in zip(("old", "new"), stage, strict=True)
        }
    if p.source is not None:
        entry["record"] = {"type": entity.name, "id": row["record_id"], "title": _title(entity, snapshot)}
        body = _body(entity, snapshot)
        if body is not None and (_title(entity, snapshot) is None or row["action"] == "created"):
            entry["body"] = body
    entry["summary"] = _summary(target, p, entity, snapshot, entry, names)
    return entry


def _stage_ref(stage_id: str | None, names: _Names) -> dict[str, Any] | None:
    if stage_id is None:
        return None
    return {"id": stage_id, "name": names.stages.get(stage_id, stage_id)}


def _diff(
    entity: Entity, row: Mapping[str, Any], own: bool
) -> tuple[dict[str, dict[str, Any]], list[dict[str, Any]], tuple[str | None, str | None] | None]:
    """An update's (field changes, link changes, (old stage, new stage) or None)."""
    before, after = row["before"] or {}, row["after"] or {}
    relations = {link.name for link in entity.links}
    changes: dict[str, dict[str, Any]] = {}
    links: list[dict[str, Any]] = []
    stage = None
    for name, old in before.items():
        new = after.get(name)
        if name in relations:
            links += _link_changes(name, old or [], new or [])
        elif own and name == STAGE_FIELD and STAGE_FIELD in entity.fields:
            stage = (old, new)
        else:
            changes[name] = {"old": old, "new": new}
    if stage is not None:
        for name in IMPLIED_BY_STAGE:
            changes.pop(name, None)
    return changes, links, stage


def _link_changes(relation: str, old: list[Any], new: list[Any]) -> list[dict[str, Any]]:
    """Items attached, detached and changed (a link's attributes, such as a role) between two link lists."""
    before = {i["id"]: i for i in old if isinstance(i, dict) and "id" in i}
    after = {i["id"]: i for i in new if isinstance(i, dict) and "id" in i}
    found = [_link_change(relation, "added", item) for rid, item in after.items() if rid not in before]
    found += [_link_change(relation, "removed", item) for rid, item in before.items() if rid not in after]
    for rid, item in after.items():
        if rid in before and before[rid] != item:
            differs = {k for k in item.keys() | before[rid].keys() if item.get(k) != before[rid].get(k)} - {"name"}
            change = _link_change(relation, "changed", item)
            change["old"] = {k: before[rid].get(k) for k in sorted(differs)}
            change["new"] = {k: item.get(k) for k in sorted(differs)}
            found.append(change)
    return found


def _link_change(relation: str, change: str, item: dict[str, Any]) -> dict[str, Any]:
    return {"relation": relation, "change": change, "id": item["id"], "name": item.get("name")}


def _title(entity: Entity, snapshot: Mapping[str, Any]) -> str | None:
    """The record's name, unless it is free text (a note is named by its body, which goes in `body` instead)."""
    if any(entity.fields[c].untrusted for c in entity.title_columns if c in entity.fields):
        return None
    return title_of(entity, dict(snapshot)) or None


def _body(entity: Entity, snapshot: Mapping[str, Any]) -> str | None:
    """The start of the record's free text: a note's body, an activity's note, a task's description."""
    name = next((n for n, f in entity.fields.items() if f.untrusted), None)
    text = snapshot.get(name) if name else None
    if not isinstance(text, str) or not text.strip():
        return None
    return text if len(text) <= BODY_CHARS else text[: BODY_CHARS - 1] + "…"


# --- summaries: built from names, field names and short values, never from free text -------------------


def _summary(
    target: Entity,
    p: _Picked,
    entity: Entity,
    snapshot: Mapping[str, Any],
    entry: dict[str, Any],
    names: _Names,
) -> str:
    action = p.row["action"]
    if p.source is None:
        label = f"{target.singular} '{title_of(target, dict(snapshot))}'"
        if action == "created":
            stage = snapshot.get(STAGE_FIELD)
            return f"{label} created" + (f" in stage {names.stages.get(stage, stage)}" if stage else "")
        if action == "deleted":
            return f"{label} deleted (it is in the trash)"
        if action == "restored":
            return f"{label} restored from the trash"
        return _joined(_change_parts(entity, entry))
    if p.kind == "link":
        return _link_summary(target, p, entity, snapshot, entry)
    return _feed_summary(target, p, entity, snapshot, entry, names)


def _link_summary(
    target: Entity, p: _Picked, entity: Entity, snapshot: Mapping[str, Any], entry: dict[str, Any]
) -> str:
    label = f"{entity.singular} '{title_of(entity, dict(snapshot))}'"
    match p.row["action"]:
        case "created":
            return f"{label} created, linked to this {target.singular}"
        case "deleted":
            return f"{label} deleted (it was linked to this {target.singular})"
        case "restored":
            return f"{label} restored, linked to this {target.singular}"
    if p.now and not p.was:
        return f"{label} linked to this {target.singular}"
    if p.was and not p.now:
        return f"{label} unlinked from this {target.singular}"
    changed = [c for link in entry.get("links", []) for c in link.get("new", {})]
    return f"{label}: link changed" + (f" ({', '.join(changed)})" if changed else "")


def _feed_summary(
    target: Entity,
    p: _Picked,
    entity: Entity,
    snapshot: Mapping[str, Any],
    entry: dict[str, Any],
    names: _Names,
) -> str:
    action, kind = p.row["action"], p.kind
    if kind == "note":
        label = "note"
    elif kind == "activity":
        type_key = str(snapshot.get("type"))
        label = f"{names.activity_types.get(type_key, type_key.capitalize())} '{snapshot.get('subject')}'"
    else:
        label = f"{entity.singular} '{title_of(entity, dict(snapshot))}'"
    due = _when(snapshot.get("due_at"))
    if action == "created":
        if kind == "note":
            return "note added"
        if snapshot.get("done"):
            return f"{label} " + ("logged" if kind == "activity" else "created, already done")
        if due:
            return f"{label} " + ("scheduled for " if kind == "activity" else "created, due ") + due
        return f"{label} created"
    if action == "deleted":
        return f"{label} deleted"
    if action == "restored":
        return f"{label} restored"
    changes = entry.get("changes", {})
    if p.now and not p.was:
        return f"{label} linked to this {target.singular}"
    if p.was and not p.now:
        return f"{label} moved off this {target.singular}"
    if "done" in changes:
        return f"{label} " + ("marked done" if changes["done"]["new"] else "reopened")
    if kind == "note" and set(changes) == {"pinned"}:
        return "note " + ("pinned" if changes["pinned"]["new"] else "unpinned")
    if kind == "note" and set(changes) <= {"body", "pinned"}:
        return "note edited"
    if set(changes) == {"due_at"} and due:
        return f"{label} " + ("rescheduled to " if kind == "activity" else "now due ") + due
    return f"{label} updated: " + _joined(_change_parts(entity, entry))


def _change_parts(entity: Entity, entry: dict[str, Any]) -> list[str]:
    parts = []
    if (stage := entry.get("stage")) is not None:
        old, new = stage["old"], stage["new"]
        parts.append(f"stage {old['name'] if old else '(none)'} -> {new['name'] if new else '(none)'}")
    for name, change in entry.get("changes", {}).items():
        field = entity.fields.get(name)
        old, new = _short(change["old"]), _short(change["new"])
        if field is None or field.untrusted or old is None or new is None:
            parts.append(f"{name} changed")
        else:
            parts.append(f"{name} {old} -> {new}")
    by_relation: dict[str, dict[str, list[str]]] = defaultdict(lambda: defaultdict(list))
    for link in entry.get("links", []):
        by_relation[link["relation"]][link["change"]].append(str(link["name"] or link["id"]))
    for relation, changed in by_relation.items():
        said = "; ".join(f"{change} {', '.join(items)}" for change, items in changed.items())
        parts.append(f"{relation}: {said}")
    return parts or ["no visible change"]


def _joined(parts: list[str]) -> str:
    if len(parts) > MAX_PARTS:
        parts = [*parts[:MAX_PARTS], f"and {len(parts) - MAX_PARTS} more"]
    return "; ".join(parts)


def _short(value: Any) -> str | None:
    """A value short enough to quote in a summary, or None for a structured or long one."""
    if value is None or value == "" or value == []:
        return "(empty)"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float | str):
        text = str(value)
        return text if len(text) <= 60 else None
    return None


def _when(value: Any) -> str | None:
    """An ISO date-time as '2026-12-01 10:00 UTC' (dates stay as they are)."""
    if not isinstance(value, str) or not value:
        return None
    if "T" not in value:
        return value
    return value[:16].replace("T", " ") + " UTC"
