"""Deleting moves records to the trash; restoring brings them back with the links they had.

A trashed record leaves its table, so every read, summary, relation and unique check forgets it without a
filter anyone could forget. Its trash entry keeps what a restore needs: the row, every link row that named
it, and the records whose reference to it was cleared. Entries are purged after the workspace's retention."""

from __future__ import annotations

from collections import Counter, defaultdict
from datetime import UTC, datetime, timedelta
from functools import cache
from typing import Any

from pydantic import BaseModel, create_model
from sqlalchemy import Connection, Table, delete, func, insert, select, update
from sqlmodel import SQLModel

from mcp_crm.entities import ENTITIES, Entity, Kind
from mcp_crm.entities.models import update_model_for
from mcp_crm.errors import CrmError, NotFound
from mcp_crm.ids import new_id
from mcp_crm.operations.actor import Actor
from mcp_crm.operations.checks import Problems, check_restricted_links, check_revision, check_unique, existing_ids
from mcp_crm.operations.preview import journal_of
from mcp_crm.operations.records import fetch_rows, rows_by_id, table_of, title_of, to_output, with_links
from mcp_crm.operations.writes import record_events, update_records
from mcp_crm.store.tables import TRASH, WORKSPACES

PURGE_BATCH = 1000


@cache
def _link_tables() -> dict[str, type[SQLModel]]:
    """Every table of rows joining two records: the links and the member tables (a list's members)."""
    tables = [t for e in ENTITIES.values() for t in (*(link.table for link in e.links), *e.member_tables)]
    return {t.__tablename__: t for t in tables}  # type: ignore[attr-defined]


@cache
def _entity_of_table() -> dict[str, Entity]:
    return {table_of(e).name: e for e in ENTITIES.values()}


def _foreign_keys(table: Table) -> list[tuple[str, Entity]]:
    """(column, referenced entity) for each column of a link table."""
    by_table = _entity_of_table()
    return [(c.name, by_table[fk.column.table.name]) for c in table.c for fk in c.foreign_keys]


@cache
def _link_columns_naming(entity: Entity) -> tuple[tuple[Table, str], ...]:
    """(link table, column) for every link-table column that holds ids of this entity."""
    tables = (model.__table__ for model in _link_tables().values())  # type: ignore[attr-defined]
    return tuple((t, column) for t in tables for column, target in _foreign_keys(t) if target is entity)


@cache
def _fields_referencing(entity: Entity) -> tuple[tuple[Entity, str], ...]:
    """(entity, field) for every single-record reference to this entity (a task's contact_id)."""
    return tuple(
        (other, name)
        for other in ENTITIES.values()
        for name, f in other.fields.items()
        if f.kind is Kind.relation and f.target == entity.name
    )


def _chunks(ids: list[str], size: int = 500) -> list[list[str]]:
    return [ids[i : i + size] for i in range(0, len(ids), size)]


def trash_records(
    conn: Connection, actor: Actor, entity: Entity, ids: list[str], bulk: bool, expected_revision: int | None = None
) -> list[dict[str, Any]]:
    """Moves the records to the trash; returns them as they were."""
    ids = list(dict.fromkeys(ids))
    stored = fetch_rows(conn, actor, entity, ids, lock=True)
    rows = [stored[rid] for rid in ids]
    if entity.refuse_delete and (reason := entity.refuse_delete(actor.user_id, rows)):
        raise CrmError(f"{reason} Nothing was deleted.")
    problems = Problems(bulk)
    for index, row in enumerate(rows):
        check_revision(conn, entity, row, expected_revision, index, problems)
    check_restricted_links(conn, entity, ids, problems)
    _check_restricting_references(conn, actor, entity, ids, problems)
    problems.raise_if_any()

    table = table_of(entity)
    columns = [c.name for c in table.c]
    with_links(conn, entity, rows)
    records = [to_output(entity, row) for row in rows]
    links = _link_rows_naming(conn, entity, ids)
    if (journal := journal_of(conn)) is not None:
        journal.unlinked.update(_linked_entities(entity, links))
    referenced_by = _clear_references(conn, actor, entity, ids)
    now = datetime.now(UTC)
    conn.execute(
        insert(TRASH),
        [
            {
                "id": new_id(),
                "workspace_id": actor.workspace_id,
                "entity": entity.name,
                "record_id": row["id"],
                "name": title_of(entity, record)[:500],
                "deleted_at": now,
                "deleted_by": actor.user_id,
                "row": {c: row[c] for c in columns},
                "links": links.get(row["id"], {}),
                "referenced_by": referenced_by.get(row["id"], []),
            }
            for row, record in zip(rows, records, strict=True)
        ],
    )
    conn.execute(delete(table).where(table.c.id.in_(ids)))  # link rows go with it (ON DELETE CASCADE)
    record_events(conn, actor, entity, "deleted", now, [(r["id"], r, None) for r in records])
    return records


def _link_rows_naming(conn: Connection, entity: Entity, ids: list[str]) -> dict[str, dict[str, list[Any]]]:
    """{record id: {link table: [rows naming it]}}."""
    found: dict[str, dict[str, list[Any]]] = defaultdict(lambda: defaultdict(list))
    for table, column in _link_columns_naming(entity):
        for chunk in _chunks(ids):
            for row in conn.execute(select(table).where(table.c[column].in_(chunk))).mappings():
                found[row[column]][table.name].append(dict(row))
    return found


def _linked_entities(entity: Entity, links: dict[str, dict[str, list[Any]]]) -> Counter[str]:
    """How many records of each other entity lose a link to the records."""
    counts: Counter[str] = Counter()
    for by_table in links.values():
        for table_name, rows in by_table.items():
            table = _link_tables()[table_name].__table__  # type: ignore[attr-defined]
            others = [t.name for _, t in _foreign_keys(table) if t is not entity]
            for other in others:
                counts[other] += len(rows)
    return counts


def _check_restricting_references(
    conn: Connection, actor: Actor, entity: Entity, ids: list[str], problems: Problems
) -> None:
    """A record others must point at (a stage that holds deals) stays until they point elsewhere."""
    for other, name in _fields_referencing(entity):
        if not other.fields[name].restricts_delete:
            continue
        table = table_of(other)
        counts: dict[str, int] = {}
        for chunk in _chunks(ids):
            query = (
                select(table.c[name], func.count())
                .where(table.c.workspace_id == actor.workspace_id, table.c[name].in_(chunk))
                .group_by(table.c[name])
            )
            counts.update(dict(conn.execute(query).all()))
        for index, rid in enumerate(ids):
            if counts.get(rid):
                problems.add(
                    index,
                    None,
                    f"{entity.singular} {rid} still has {counts[rid]} {other.name} (their {name}); "
                    f"move or delete those first (find them with {other.name}_list, {name} eq {rid}).",
                )


def _clear_references(conn: Connection, actor: Actor, entity: Entity, ids: list[str]) -> dict[str, list[list[str]]]:
    """Sets every reference to the records to null, as an update of the referring record (new revision, change
    event); returns {record id: [[entity, field, referring id]]}."""
    cleared: dict[str, list[list[str]]] = defaultdict(list)
    gone = set(ids)
    for other, name in _fields_referencing(entity):
        if other.fields[name].restricts_delete:
            continue  # none left: checked before
        table = table_of(other)
        changes: dict[str, dict[str, None]] = {}
        for chunk in _chunks(ids):
            query = select(table.c.id, table.c[name]).where(
                table.c.workspace_id == actor.workspace_id, table.c[name].in_(chunk)
            )
            for rid, ref in conn.execute(query):
                if other is entity and rid in gone:
                    continue
                changes[rid] = {name: None}
                cleared[ref].append([other.name, name, rid])
        if changes:
            model = update_model_for(other)
            update_records(conn, actor, other, [(rid, model(**c)) for rid, c in changes.items()], True, follow_up=True)
    return cleared


def restore_records(conn: Connection, actor: Actor, entity: Entity, ids: list[str], bulk: bool) -> dict[str, Any]:
    """{"records": the restored records, "notes": links and references that could not come back, and why}."""
    ids = list(dict.fromkeys(ids))
    entries = {
        e["record_id"]: e
        for chunk in _chunks(ids)
        for e in conn.execute(
            select(TRASH).where(
                TRASH.c.workspace_id == actor.workspace_id,
                TRASH.c.entity == entity.name,
                TRASH.c.record_id.in_(chunk),
            )
        ).mappings()
    }
    _refuse_missing(conn, actor, entity, [rid for rid in ids if rid not in entries])
    notes: list[str] = []
    rows = [_revive(entity.table, entries[rid]["row"]) for rid in ids]
    _clear_missing_references(conn, actor, entity, rows, notes)
    problems = Problems(bulk)
    check_unique(conn, actor, entity, rows, problems, [None] * len(rows))
    problems.raise_if_any()

    now = datetime.now(UTC)
    for row in rows:
        row.update(revision=row["revision"] + 1, updated_at=now)
    conn.execute(insert(table_of(entity)), rows)
    conn.execute(delete(TRASH).where(TRASH.c.id.in_([entries[rid]["id"] for rid in ids])))
    _restore_links(conn, actor, entity, [entries[rid] for rid in ids], notes)
    _restore_references(conn, actor, entity, [entries[rid] for rid in ids], notes)

    restored = fetch_rows(conn, actor, entity, ids)
    with_links(conn, entity, list(restored.values()))
    records = [to_output(entity, restored[rid]) for rid in ids]
    record_events(conn, actor, entity, "restored", now, [(r["id"], None, r) for r in records])
    return {"records": records, "notes": notes}


def _refuse_missing(conn: Connection, actor: Actor, entity: Entity, missing: list[str]) -> None:
    if not missing:
        return
    live = rows_by_id(conn, actor, entity, missing)
    lines = [
        f"{entity.singular} {rid} is not deleted."
        if rid in live
        else f"{entity.singular} {rid} is not in the trash (trash_list shows what is; "
        "the trash is emptied after the workspace's retention period)."
        for rid in missing[:20]
    ]
    raise NotFound(" ".join(lines) + " Nothing was restored.")


@cache
def _row_model(table_model: type[SQLModel]) -> type[BaseModel]:
    """Validates a row kept as JSON back into column values (dates, decimals, nested values)."""
    fields: dict[str, Any] = {name: (info.annotation, None) for name, info in table_model.model_fields.items()}
    return create_model(f"{table_model.__name__}Row", **fields)


def _revive(table_model: type[SQLModel], data: dict[str, Any]) -> dict[str, Any]:
    return _row_model(table_model).model_validate(data).model_dump()


def _clear_missing_references(
    conn: Connection, actor: Actor, entity: Entity, rows: list[dict[str, Any]], notes: list[str]
) -> None:
    """A restored record's own references to records that are gone now are cleared (and said so), or set as the
    entity says (`Entity.on_missing`: a lead whose stage is gone enters the first open stage)."""
    for name, f in entity.fields.items():
        if f.kind is not Kind.relation or f.target is None:
            continue
        target = ENTITIES[f.target]
        found = existing_ids(conn, actor, f.target, {r[name] for r in rows if r[name] is not None})
        instead: list[dict[str, Any] | None] = []  # read once, when a row needs it
        for row in rows:
            if row[name] is not None and row[name] not in found:
                if not instead:
                    fallback = entity.on_missing.get(name)
                    instead.append(fallback(conn, actor.workspace_id) if fallback else None)
                if instead[0] is not None:
                    notes.append(
                        f"{entity.singular} {row['id']}: {name} set to {instead[0][name]}, {target.singular} "
                        f"{row[name]} is deleted."
                    )
                    row.update(instead[0])
                    continue
                kept = _hand_over(conn, actor, target, row[name], reference=[entity.name, name, row["id"]])
                notes.append(
                    f"{entity.singular} {row['id']}: {name} left empty, {target.singular} {row[name]} is "
                    + (f"in the trash ({target.name}_restore sets it back)." if kept else "no longer there.")
                )
                row[name] = None


def _restore_links(conn: Connection, actor: Actor, entity: Entity, entries: list[Any], notes: list[str]) -> None:
    """Link rows come back when every record they join is there."""
    by_table: dict[str, list[tuple[str, dict[str, Any]]]] = defaultdict(list)
    for entry in entries:
        for table_name, link_rows in entry["links"].items():
            by_table[table_name].extend((entry["record_id"], r) for r in link_rows)
    for table_name, owned in by_table.items():
        model = _link_tables()[table_name]
        table = model.__table__  # type: ignore[attr-defined]
        keys = _foreign_keys(table)
        wanted: dict[str, set[str]] = defaultdict(set)
        for _, r in owned:
            for column, target in keys:
                wanted[target.name].add(r[column])
        found = {name: existing_ids(conn, actor, name, refs) for name, refs in wanted.items()}
        rows = []
        for rid, r in owned:
            gone = [(t, r[c]) for c, t in keys if r[c] not in found[t.name]]
            if not gone:
                rows.append(_revive(model, r))
            for t, ref in gone:
                kept = len(gone) == 1 and _hand_over(conn, actor, t, ref, link=(table_name, r))
                notes.append(
                    f"{entity.singular} {rid}: link to {t.singular} {ref} not restored, it is "
                    + (f"in the trash ({t.name}_restore brings the link back)." if kept else "no longer there.")
                )
        if rows:
            conn.execute(insert(table), rows)


def _hand_over(
    conn: Connection,
    actor: Actor,
    entity: Entity,
    record_id: str,
    link: tuple[str, dict[str, Any]] | None = None,
    reference: list[str] | None = None,
) -> bool:
    """Gives a link or reference that cannot come back to the trash entry of the record it needs, so
    restoring that record brings it back; False when that record is not in the trash either."""
    where = (TRASH.c.workspace_id == actor.workspace_id, TRASH.c.entity == entity.name, TRASH.c.record_id == record_id)
    entry = conn.execute(select(TRASH.c.links, TRASH.c.referenced_by).where(*where)).first()
    if entry is None:
        return False
    links, referenced_by = dict(entry.links), list(entry.referenced_by)
    if link is not None:
        links[link[0]] = [*links.get(link[0], []), link[1]]
    if reference is not None:
        referenced_by.append(reference)
    conn.execute(update(TRASH).where(*where).values(links=links, referenced_by=referenced_by))
    return True


def _restore_references(conn: Connection, actor: Actor, entity: Entity, entries: list[Any], notes: list[str]) -> None:
    """References cleared by the delete are set back where the referring record is still there and still empty."""
    per_entity: dict[str, list[tuple[str, str, str]]] = defaultdict(list)
    for entry in entries:
        for other, name, referring in entry["referenced_by"]:
            per_entity[other].append((name, referring, entry["record_id"]))
    for other_name, refs in per_entity.items():
        other = ENTITIES[other_name]
        current = rows_by_id(conn, actor, other, [referring for _, referring, _ in refs])
        changes: dict[str, dict[str, str]] = defaultdict(dict)
        for name, referring, rid in refs:
            row = current.get(referring)
            if row is not None and row[name] is None:
                changes[referring][name] = rid
            else:
                why = "no longer there" if row is None else f"now set to {row[name]}"
                notes.append(f"{entity.singular} {rid}: {other.singular} {referring}.{name} not set back ({why}).")
        if changes:
            model = update_model_for(other)
            update_records(conn, actor, other, [(r, model(**c)) for r, c in changes.items()], True, follow_up=True)


def list_trash(
    conn: Connection, actor: Actor, entity: Entity | None, limit: int, cursor: str | None
) -> tuple[list[dict[str, Any]], str | None]:
    """Trashed records, most recently deleted first; (page, next cursor)."""
    retention = _retention(conn, actor.workspace_id)
    where = [TRASH.c.workspace_id == actor.workspace_id]
    if entity is not None:
        where.append(TRASH.c.entity == entity.name)
    if cursor is not None:
        where.append(TRASH.c.id < cursor)
    query = (
        select(TRASH.c.id, TRASH.c.entity, TRASH.c.record_id, TRASH.c.name, TRASH.c.deleted_at, TRASH.c.deleted_by)
        .where(*where)
        .order_by(TRASH.c.id.desc())
        .limit(limit + 1)
    )
    found = conn.execute(query).all()
    items = [
        {
            "entity": e.entity,
            "id": e.record_id,
            "name": e.name,
            "deleted_at": e.deleted_at,
            "deleted_by": e.deleted_by,
            "purge_after": e.deleted_at + retention,
        }
        for e in found[:limit]
    ]
    return items, (found[limit - 1].id if len(found) > limit else None)


def _retention(conn: Connection, workspace_id: str) -> timedelta:
    days = conn.execute(select(WORKSPACES.c.trash_retention_days).where(WORKSPACES.c.id == workspace_id)).scalar()
    return timedelta(days=days or 30)


def purge(conn: Connection, actor: Actor, ids: list[str]) -> list[dict[str, str]]:
    """Deletes trashed records for good (any entity); returns [{entity, id, name}]."""
    ids = list(dict.fromkeys(ids))
    entries = [
        e
        for chunk in _chunks(ids)
        for e in conn.execute(
            select(TRASH).where(TRASH.c.workspace_id == actor.workspace_id, TRASH.c.record_id.in_(chunk))
        ).mappings()
    ]
    missing = set(ids) - {e["record_id"] for e in entries}
    if missing:
        listed = ", ".join(sorted(missing)[:20])
        raise NotFound(f"Not in the trash: {listed} (trash_list shows what is). Nothing was purged.")
    return _purge_entries(conn, actor, entries)


def _purge_entries(conn: Connection, actor: Actor, entries: list[Any]) -> list[dict[str, str]]:
    for chunk in _chunks([e["id"] for e in entries]):
        conn.execute(delete(TRASH).where(TRASH.c.id.in_(chunk)))
    now = datetime.now(UTC)
    by_entity: dict[str, list[Any]] = defaultdict(list)
    for e in entries:
        by_entity[e["entity"]].append(e)
    for name, purged in by_entity.items():
        record_events(conn, actor, ENTITIES[name], "purged", now, [(e["record_id"], e["row"], None) for e in purged])
    return [{"entity": e["entity"], "id": e["record_id"], "name": e["name"]} for e in entries]


def purge_expired(conn: Connection, via: str = "worker") -> int:
    """Purges entries older than their workspace's retention (at most PURGE_BATCH per call); returns how many."""
    now, purged = datetime.now(UTC), 0
    for workspace_id, days in conn.execute(select(WORKSPACES.c.id, WORKSPACES.c.trash_retention_days)).all():
        query = (
            select(TRASH)
            .where(TRASH.c.workspace_id == workspace_id, TRASH.c.deleted_at < now - timedelta(days=days))
            .limit(PURGE_BATCH - purged)
        )
        if conn.dialect.name == "postgresql":  # two servers purging at once each take different entries
            query = query.with_for_update(skip_locked=True)
        expired = conn.execute(query).mappings().all()
        if expired:
            purged += len(_purge_entries(conn, Actor(workspace_id=workspace_id, user_id=None, via=via), expired))
        if purged >= PURGE_BATCH:
            break
    return purged
