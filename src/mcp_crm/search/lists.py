"""`q` on a *_list: a condition on the entity's table, combined with the filter tree and paged in the list's own
sort. Searchable entities match through the index (words, prefixes, emails, phone digits, domains, and words one
typo away when the text alone matches nothing); others keep a case-insensitive substring match."""

from __future__ import annotations

from typing import Any

from sqlalchemy import ARRAY, Connection, String, and_, any_, bindparam, false, literal, or_
from sqlalchemy.sql import Select
from sqlalchemy.sql.elements import ColumnElement

from mcp_crm.entities import Entity
from mcp_crm.errors import CrmError, unknown
from mcp_crm.query.operators import like_escape
from mcp_crm.search.match import Match, in_fields, matched, query_text, with_near_words
from mcp_crm.search.terms import MAX_TERMS, Term, parse, searched_fields
from mcp_crm.store.search_tables import DOCUMENTS

FEW = 500  # records a list names by id for q (see text_condition); more are matched by a subquery


def search_fields_of(entity: Entity) -> tuple[str, ...]:
    """The fields `q` looks in, which `search_fields` can narrow down to."""
    return searched_fields(entity) if entity.searchable else entity.search_columns


def text_condition(
    conn: Connection,
    workspace_id: str,
    entity: Entity,
    table: Any,
    q: str,
    fields: list[str] | None = None,
    match: Match = "all",
) -> ColumnElement[bool]:
    """The workspace's records whose search fields (or only `fields`) hold every word of `q` (any word, with
    match "any"); it stands for the list's workspace test.

    Searchable entities: up to FEW matching records are named by id, and the workspace test takes a form no index
    serves, so that they are fetched by key and then put in the list's order (left a `workspace_id = ?` test,
    SQLite would walk the whole workspace in that order instead); more are matched by a subquery while the list
    walks its sort index, where matches that common come soon."""
    valid = search_fields_of(entity)
    for name in fields or ():
        if name not in valid:
            raise unknown("search field", name, valid)
    chosen = tuple(dict.fromkeys(fields)) if fields else None
    in_workspace = table.c.workspace_id == workspace_id
    if not entity.searchable:
        return and_(in_workspace, _substring(table, q, chosen or valid, match))
    terms = parse(q)
    documents = _documents(conn, workspace_id, entity, terms, chosen, match)
    ids = list(conn.execute(documents.limit(FEW + 1)).scalars())
    if not ids and (near := with_near_words(conn, workspace_id, terms)) is not None:
        documents = _documents(conn, workspace_id, entity, near, chosen, match)
        ids = list(conn.execute(documents.limit(FEW + 1)).scalars())
    if len(ids) > FEW:
        return and_(in_workspace, table.c.id.in_(documents))
    if not ids:
        return false()
    if conn.dialect.name == "postgresql":
        named = table.c.id == any_(bindparam(None, ids, type_=ARRAY(String)))
    else:
        named = table.c.id.in_(ids)
    return and_(named, (table.c.workspace_id + literal("")) == workspace_id)


def _documents(
    conn: Connection,
    workspace_id: str,
    entity: Entity,
    terms: list[Term],
    fields: tuple[str, ...] | None,
    match: Match,
) -> Select[Any]:
    documents = matched(conn, query_text(conn.dialect.name, terms, match), DOCUMENTS.c.record_id).where(
        DOCUMENTS.c.workspace_id == workspace_id, DOCUMENTS.c.entity == entity.name
    )
    return documents.where(in_fields(terms, match, fields)) if fields else documents


def _substring(table: Any, q: str, columns: tuple[str, ...], match: Match) -> ColumnElement[bool]:
    """Each word of `q` is in one of the columns: "ada lovelace" finds Ada Lovelace."""
    words = q.split()[:MAX_TERMS]
    if not words:
        raise CrmError("q needs at least one word.")
    found = [or_(*(table.c[c].ilike(f"%{like_escape(w)}%", escape="\\") for c in columns)) for w in words]
    return and_(*found) if match == "all" else or_(*found)
