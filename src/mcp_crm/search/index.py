"""Keeping the index: every change event of a searchable record rewrites its document in the same transaction
(operations/writes.py `record_events` calls `index_changes`), so a search never sees a record as it was.
`rebuild_index` makes every document again from the tables (migration 0014 fills the index with it)."""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any

from sqlalchemy import Connection, MetaData, Table, delete, insert, select, text

from mcp_crm.entities import ENTITIES, Entity
from mcp_crm.search.terms import Document, document, document_fields
from mcp_crm.store.search_tables import DOCUMENTS, WORDS

CHUNK = 500
REINDEXED_ON = ("created", "updated", "restored")


def index_changes(
    conn: Connection,
    workspace_id: str,
    entity: Entity,
    action: str,
    changes: list[tuple[str, dict[str, Any] | None, dict[str, Any] | None]],
) -> None:
    """Brings the documents of changed records up to date: (record id, before, after) as change events carry them
    (an update's `before` holds the fields that changed)."""
    if not entity.searchable:
        return
    if action == "updated":
        made_of = set(document_fields(entity))
        changes = [c for c in changes if c[1] is None or made_of & c[1].keys()]
    if action != "created":  # a new record has no document yet
        _remove(conn, workspace_id, entity, [rid for rid, _, _ in changes])
    if action in REINDEXED_ON:
        _add(conn, workspace_id, entity, [(rid, document(entity, after)) for rid, _, after in changes if after])


def _remove(conn: Connection, workspace_id: str, entity: Entity, ids: list[str]) -> None:
    for start in range(0, len(ids), CHUNK):
        conn.execute(
            delete(DOCUMENTS).where(
                DOCUMENTS.c.workspace_id == workspace_id,
                DOCUMENTS.c.entity == entity.name,
                DOCUMENTS.c.record_id.in_(ids[start : start + CHUNK]),
            )
        )


def _add(conn: Connection, workspace_id: str, entity: Entity, documents: list[tuple[str, Document]]) -> None:
    if not documents:
        return
    rows = [
        {"workspace_id": workspace_id, "entity": entity.name, "record_id": rid, **doc.row()} for rid, doc in documents
    ]
    conn.execute(insert(DOCUMENTS), rows)
    add_words(conn, workspace_id, {w for _, doc in documents for w in doc.vocabulary})


def add_words(conn: Connection, workspace_id: str, words: Iterable[str]) -> None:
    """Adds to the workspace's vocabulary in one statement (in order, so concurrent writers take their locks in
    the same order); words it has are skipped."""
    ordered = sorted(words)
    if not ordered:
        return
    if conn.dialect.name == "postgresql":
        each = "unnest(CAST(:words AS text[]))"
        tail = " ON CONFLICT DO NOTHING"
        verb, bound = "INSERT", ordered
    else:
        each, tail, verb, bound = "value FROM json_each(:words)", "", "INSERT OR IGNORE", json.dumps(ordered)
    statement = f"{verb} INTO search_words (workspace_id, word) SELECT :workspace_id, {each}{tail}"
    conn.execute(text(statement), {"workspace_id": workspace_id, "words": bound})


def rebuild_index(conn: Connection, batch: int = 2000) -> int:
    """Makes every document and the vocabulary again from the records; returns how many documents there are.

    Reads the tables as the database has them (reflected), so it also serves a migration that runs before later
    ones have added the columns today's models declare."""
    conn.execute(delete(DOCUMENTS))
    conn.execute(delete(WORDS))
    tables = MetaData()
    count = 0
    for entity in (e for e in ENTITIES.values() if e.searchable):
        table = Table(entity.table.__tablename__, tables, autoload_with=conn)  # type: ignore[attr-defined]
        wanted = [table.c[n] for n in ("id", "workspace_id", *document_fields(entity)) if n in table.c]
        last = ""
        while True:
            query = select(*wanted).where(table.c.id > last).order_by(table.c.id).limit(batch)
            rows = [dict(r) for r in conn.execute(query).mappings()]
            if not rows:
                break
            by_workspace: dict[str, list[tuple[str, Document]]] = {}
            for row in rows:
                by_workspace.setdefault(row["workspace_id"], []).append((row["id"], document(entity, row)))
            for workspace_id, documents in by_workspace.items():
                _add(conn, workspace_id, entity, documents)
            count += len(rows)
            last = rows[-1]["id"]
    return count
