"""Create, update and delete for any entity, inside the caller's transaction.

Each function checks everything first and reports every problem at once; only then does it write,
and it appends one change event per record to `change_events` in the same transaction. Deleting is
moving to the trash (trash.py)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from pydantic import BaseModel
from sqlalchemy import Connection, delete, insert, update

from mcp_crm.entities import Entity, FieldSpec, Kind
from mcp_crm.entities.custom import check_values
from mcp_crm.errors import Conflict, CrmError
from mcp_crm.ids import new_id
from mcp_crm.operations.actor import Actor
from mcp_crm.operations.checks import (
    Problems,
    check_link_duplicates,
    check_references,
    check_revision,
    check_unique,
)
from mcp_crm.operations.preview import journal_of
from mcp_crm.operations.records import (
    as_stored,
    as_stored_rows,
    fetch_rows,
    table_of,
    to_output,
    with_links,
    without_removed_fields,
)
from mcp_crm.search import index_changes
from mcp_crm.store.tables import CHANGE_EVENTS as EVENTS
from mcp_crm.webhooks.outbox import enqueue

CONTROL_FIELDS = {"id", "expected_revision", "idempotency_key", "dry_run", "confirm"}  # arguments, not fields


def _split(entity: Entity, values: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """(column values, link values) of a create or update."""
    link_inputs = entity.link_inputs
    columns = {k: v for k, v in values.items() if k not in link_inputs}
    links = {k: v for k, v in values.items() if k in link_inputs}
    return columns, links


def _derive(entity: Entity, before: dict[str, Any] | None, after: dict[str, Any]) -> dict[str, Any]:
    return after | (entity.derive(before, after) if entity.derive else {})


def create_records(
    conn: Connection, actor: Actor, entity: Entity, inputs: list[BaseModel], bulk: bool, check_only: bool = False
) -> list[dict[str, Any]]:
    """`check_only`: every check, no write (an import's first pass)."""
    problems = Problems(bulk)
    now = datetime.now(UTC)
    items = [_with_link_entries(entity, model, _with_actor_defaults(entity, actor, model), None) for model in inputs]
    _check_custom(conn, actor, entity, [(None, values) for values in items], problems)
    _prepare(conn, actor, entity, [(None, values) for values in items], problems)
    check_link_duplicates(entity, items, problems)
    check_references(conn, actor, entity, items, problems)
    check_unique(conn, actor, entity, items, problems, [None] * len(items))
    problems.raise_if_any()
    if check_only:
        return []

    rows, links = [], []
    for values in items:
        columns, link_values = _split(entity, values)
        row = _derive(
            entity,
            None,
            entity.derived_defaults
            | columns
            | {"id": new_id(), "workspace_id": actor.workspace_id, "created_at": now, "updated_at": now, "revision": 1},
        )
        rows.append(row)
        links.append(link_values)
    conn.execute(insert(table_of(entity)), rows)
    _write_links(conn, entity, [(row["id"], link_values) for row, link_values in zip(rows, links, strict=True)])
    stored = as_stored_rows(conn, entity, rows)
    linked = {link.name for link in entity.links if any(values.get(link.input) for values in links)}
    with_links(conn, entity, stored, only=linked)
    for row in stored:
        row.update({link.name: [] for link in entity.links if link.name not in linked})
    without_removed_fields(conn, entity, stored)
    records = [to_output(entity, row) for row in stored]
    record_events(conn, actor, entity, "created", now, [(r["id"], None, r) for r in records])
    return records


def _with_link_entries(
    entity: Entity, model: BaseModel, values: dict[str, Any], before: dict[str, Any] | None
) -> dict[str, Any]:
    """Items of links with attributes become whole link rows: what the caller gave, then what the link
    already had (a membership's role when only its id is sent), then the column defaults."""
    for link in entity.links:
        if link.attributes is None or values.get(link.input) is None:
            continue
        kept = {s["id"]: s for s in (before or {}).get(link.name, [])}
        entries = []
        for item in getattr(model, link.input):
            sent = {link.target_column: item} if isinstance(item, str) else item.model_dump(exclude_unset=True)
            base = kept.get(sent[link.target_column], link.attribute_defaults)
            entries.append({n: base[n] for n in link.attribute_defaults} | sent)
        values[link.input] = entries
    return values


def _check_custom(
    conn: Connection,
    actor: Actor,
    entity: Entity,
    writes: list[tuple[dict[str, Any] | None, dict[str, Any]]],
    problems: Problems,
) -> None:
    """Custom values are checked against the workspace's fields; an update changes only the keys it sends."""
    if "custom" not in entity.fields or not any("custom" in values for _, values in writes):
        return
    checked, found = check_values(conn, actor.workspace_id, entity, [values.get("custom") for _, values in writes])
    for index, message in found:
        problems.add(index, "custom", message)
    for (before, values), given in zip(writes, checked, strict=True):
        if "custom" in values:
            merged = ((before or {}).get("custom") or {}) | given
            values["custom"] = {key: value for key, value in merged.items() if value is not None}


def _prepare(
    conn: Connection,
    actor: Actor,
    entity: Entity,
    writes: list[tuple[dict[str, Any] | None, dict[str, Any]]],
    problems: Problems,
) -> None:
    """The entity's own rules for a write (a deal's stage and pipeline), which may fill in values."""
    if entity.prepare is not None:
        for index, field, message in entity.prepare(conn, actor.workspace_id, writes):
            problems.add(index, field, message)


def _with_actor_defaults(entity: Entity, actor: Actor, model: BaseModel) -> dict[str, Any]:
    values = model.model_dump(exclude=CONTROL_FIELDS)
    for name in entity.actor_defaults:
        if name not in model.model_fields_set:
            values[name] = actor.user_id
    return values


def update_records(
    conn: Connection,
    actor: Actor,
    entity: Entity,
    changes: list[tuple[str, BaseModel]],
    bulk: bool,
    follow_up: bool = False,
    check_only: bool = False,
) -> list[dict[str, Any]]:
    """`follow_up`: a change another write implies (a reference cleared because its target was deleted), which
    skips the entity's own rules for edits (a lead needs a contact or an organization). `check_only`: every
    check, no write; returns each record's id and the revision the write would give it."""
    ids = [rid for rid, _ in changes]
    if len(set(ids)) != len(ids):
        raise CrmError("The same id appears more than once; merge its changes into one item.")
    stored = fetch_rows(conn, actor, entity, ids, lock=True)
    with_links(conn, entity, list(stored.values()))
    problems = Problems(bulk)
    # the fields the caller sent
    sent = [
        _with_link_entries(
            entity, model, model.model_dump(include=model.model_fields_set - CONTROL_FIELDS), stored[rid]
        )
        for rid, model in changes
    ]
    for index, (rid, model) in enumerate(changes):
        check_revision(conn, entity, stored[rid], getattr(model, "expected_revision", None), index, problems)
    for index, values in enumerate(sent):
        for name, value in values.items():
            field = entity.fields[name]  # read-only fields too: internal operations set them (a lead's conversion)
            if value is None and not field.nullable:
                problems.add(index, name, f"cannot be null; {_how_to_clear(field)}.")
    writes = [(stored[rid], values) for rid, values in zip(ids, sent, strict=True)]
    _check_custom(conn, actor, entity, writes, problems)
    if not follow_up:
        _prepare(conn, actor, entity, writes, problems)
    check_link_duplicates(entity, sent, problems)
    check_references(conn, actor, entity, sent, problems)
    check_unique(conn, actor, entity, sent, problems, ids)
    problems.raise_if_any()
    table = table_of(entity)
    if check_only:
        would = [_changes(entity, table, stored[rid], values) for rid, values in zip(ids, sent, strict=True)]
        return [
            {"id": rid, "revision": stored[rid]["revision"] + bool(columns or links)}
            for rid, (_, columns, links) in zip(ids, would, strict=True)
        ]

    now = datetime.now(UTC)
    events, touched = [], []
    for rid, values in zip(ids, sent, strict=True):
        before = stored[rid]
        after, column_changes, link_changes = _changes(entity, table, before, values)
        if not column_changes and not link_changes:
            continue
        before_record = to_output(entity, before)
        column_changes |= {"updated_at": now, "revision": before["revision"] + 1}
        # conditional on the revision read above: a concurrent writer that got there first makes this match nothing
        done = conn.execute(
            update(table).where(table.c.id == rid, table.c.revision == before["revision"]).values(column_changes)
        )
        if done.rowcount != 1:
            raise Conflict(
                f"{entity.singular} {rid} was changed by someone else during this call; read it again and retry. "
                "Nothing was changed."
            )
        _write_links(conn, entity, [(rid, link_changes)], replace=True)
        stored[rid] = as_stored(conn, entity, after | column_changes)
        touched.append(rid)
        events.append((rid, before_record))
    with_links(conn, entity, [stored[rid] for rid in touched])
    without_removed_fields(conn, entity, [stored[rid] for rid in ids])
    records = {rid: to_output(entity, stored[rid]) for rid in ids}
    record_events(
        conn,
        actor,
        entity,
        "updated",
        now,
        [(rid, _changed(before, records[rid]), records[rid]) for rid, before in events],
    )
    return [records[rid] for rid in ids]


def _changes(
    entity: Entity, table: Any, before: dict[str, Any], values: dict[str, Any]
) -> tuple[dict[str, Any], dict[str, Any], dict[str, Any]]:
    """(the row after, its changed columns, its changed links) of an update."""
    columns, link_values = _split(entity, values)
    current = {k: v for k, v in before.items() if k in table.c}
    after = _derive(entity, current, current | columns)
    column_changes = {k: v for k, v in after.items() if v != current[k]}
    link_changes = {k: v for k, v in link_values.items() if not _same_links(entity, k, v, before)}
    return after, column_changes, link_changes


def _how_to_clear(field: FieldSpec) -> str:
    if field.kind in (Kind.tags, Kind.objects, Kind.relations):
        return "use [] to empty it"
    if field.kind is Kind.custom:
        return 'clear one value with {"<key>": null}'
    return "it is required" if field.required else f"set one of its values instead (default {field.default!r})"


def _same_links(entity: Entity, name: str, wanted: list[Any], stored: dict[str, Any]) -> bool:
    link = next(link for link in entity.links if link.input == name)
    columns = list(link.attribute_defaults)
    current = {(s["id"], *(s[c] for c in columns)) for s in stored.get(link.name, [])}
    new = {(w[link.target_column], *(w[c] for c in columns)) if isinstance(w, dict) else (w,) for w in wanted}
    return current == new


def _changed(before: dict[str, Any], after: dict[str, Any]) -> dict[str, Any]:
    """The previous values of the fields that changed."""
    return {k: v for k, v in before.items() if after.get(k) != v and k not in ("updated_at", "revision")}


def _write_links(
    conn: Connection, entity: Entity, changes: list[tuple[str, dict[str, Any]]], replace: bool = False
) -> None:
    """Stores the links each record was given (`replace`: instead of the ones it had), one statement per link."""
    for link in entity.links:
        given = [(own_id, values[link.input] or []) for own_id, values in changes if link.input in values]
        if not given:
            continue
        table = link.table.__table__  # type: ignore[attr-defined]
        if replace:
            conn.execute(delete(table).where(table.c[link.own_column].in_([own_id for own_id, _ in given])))
        rows = [
            {link.own_column: own_id, **entry}
            if isinstance(entry, dict)
            else {link.own_column: own_id, link.target_column: entry}
            for own_id, entries in given
            for entry in entries
        ]
        if rows:
            conn.execute(insert(table), rows)


def record_events(
    conn: Connection,
    actor: Actor,
    entity: Entity,
    action: str,
    when: datetime,
    changes: list[tuple[str, dict[str, Any] | None, dict[str, Any] | None]],
) -> None:
    if not changes:
        return
    rows = [
        {
            "id": new_id(),
            "workspace_id": actor.workspace_id,
            "entity": entity.name,
            "record_id": rid,
            "action": action,
            "user_id": actor.user_id,
            "via": actor.via,
            "tool": actor.tool,
            "credential_id": actor.credential_id,
            "before": before,
            "after": after,
            "occurred_at": when,
        }
        for rid, before, after in changes
    ]
    conn.execute(insert(EVENTS), rows)
    index_changes(conn, actor.workspace_id, entity, action, changes)  # searches see the change at once
    enqueue(conn, actor.workspace_id, entity, action, rows)  # webhooks, sent once this commits
    if (journal := journal_of(conn)) is not None:
        journal.events.extend(rows)
