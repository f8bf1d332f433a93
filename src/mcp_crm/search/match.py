"""Finding documents: a parsed query as each database's match expression, and words one typo away.

SQLite: an FTS5 query string over `search_fts` (title, identifier and other tokens; bm25 weighs the title
highest). PostgreSQL: tsquery text for to_tsquery('simple', ...) over the `vector` column (ts_rank, weights A, B,
D). Tokens are letters and digits only (terms.py), so quoting them is all the escaping either syntax needs.
Field-targeted search keeps the same match and checks each term's tokens, tagged with the chosen fields, in
`field_terms` (a LIKE on the few documents the index found), so no second full-text index has to be kept."""

from __future__ import annotations

from dataclasses import replace
from typing import Any, Literal

from sqlalchemy import (
    ARRAY,
    Connection,
    String,
    and_,
    any_,
    bindparam,
    column,
    func,
    literal,
    literal_column,
    or_,
    select,
    table,
)
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql import Select
from sqlalchemy.sql.elements import ColumnElement
from sqlalchemy.sql.selectable import Join

from mcp_crm.search.terms import Term, edits, fuzzable, tag
from mcp_crm.store.search_tables import DOCUMENTS, WORDS

Match = Literal["all", "any"]
WEIGHTS = (10.0, 5.0, 1.0)  # bm25 weights of title, identifier and other tokens (PostgreSQL: A, B, D)
MAX_NEAR = 5  # words one typo away tried per word
VARIANTS_PER_STATEMENT = 10_000  # a typo lookup's words per statement (SQLite takes 32,766 parameters)

FTS = table("search_fts", column("rowid"))


def _fts5(term: Term) -> str:
    alternatives = [f'"{" ".join(tokens)}"' + ("*" if prefix else "") for tokens, prefix in term.alternatives()]
    return "(" + " OR ".join(alternatives) + ")"


def _tsquery(term: Term) -> str:
    alternatives = [
        " <-> ".join(f"'{t}'" for t in tokens) + (":*" if prefix else "") for tokens, prefix in term.alternatives()
    ]
    return "(" + " | ".join(alternatives) + ")"


def query_text(dialect: str, terms: list[Term], match: Match) -> str:
    """The match expression: every term (any term, with match "any")."""
    if dialect == "postgresql":
        return (" & " if match == "all" else " | ").join(_tsquery(t) for t in terms)
    return (" AND " if match == "all" else " OR ").join(_fts5(t) for t in terms)


def in_fields(terms: list[Term], match: Match, fields: tuple[str, ...]) -> ColumnElement[bool]:
    """A condition on search_documents: every term (any, with match "any") is in one of the fields. Tokens sit in
    `field_terms` in order, one space apart, each behind its field's tag: " emails0ada emails0acme emails0com "
    holds the term "ada@acme" as " emails0ada emails0acme" (a prefix) or " emails0ada emails0acme " (whole)."""
    spaced = literal(" ") + DOCUMENTS.c.field_terms + literal(" ")
    found = [
        or_(
            *(
                spaced.like(bindparam(None, f"% {' '.join(tag(f) + t for t in tokens)}{'' if prefix else ' '}%"))
                for tokens, prefix in term.alternatives()
                for f in fields
            )
        )
        for term in terms
    ]
    return and_(*found) if match == "all" else or_(*found)


def _tsquery_of(text: str) -> Any:
    return func.to_tsquery(literal_column("'simple'"), bindparam(None, text))


def matched(conn: Connection, text: str, *columns: Any) -> Select[Any]:
    """SELECT `columns` FROM the documents that match an expression. On SQLite the FTS5 table leads and each
    match's document is read by its rowid."""
    if conn.dialect.name == "postgresql":
        return select(*columns).where(literal_column("search_documents.vector").op("@@")(_tsquery_of(text)))
    return (
        select(*columns)
        .select_from(FtsFirst(FTS, DOCUMENTS, DOCUMENTS.c.id == FTS.c.rowid))
        .where(literal_column(FTS.name).match(bindparam(None, text)))
    )


class FtsFirst(Join):
    """A join SQLite must run with its left side as the outer loop (a CROSS JOIN): the full-text matches lead
    and each one's document is read by rowid. Left to itself, the planner may walk the workspace's documents
    and run the full-text query once per document."""

    inherit_cache = True


@compiles(FtsFirst, "sqlite")
def _cross_join(join: FtsFirst, compiler: Any, **kw: Any) -> str:
    return str(compiler.visit_join(join, **kw)).replace(" JOIN ", " CROSS JOIN ", 1)


def ranked(conn: Connection, workspace_id: str, text: str, entities: list[str], limit: int) -> list[dict[str, Any]]:
    """The best `limit` documents of the workspace for a match expression, best first, each with its `rank`
    (higher is better)."""
    d = DOCUMENTS.c
    if conn.dialect.name == "postgresql":
        rank = func.ts_rank(literal_column("search_documents.vector"), _tsquery_of(text))
        order = rank.desc()
    else:
        bm25 = func.bm25(literal_column(FTS.name), *WEIGHTS)  # lower is better
        rank, order = -bm25, bm25
    query = (
        matched(conn, text, d.entity, d.record_id, d.title, d.body, d.title_terms, rank.label("rank"))
        .where(d.workspace_id == workspace_id, d.entity.in_(entities))
        .order_by(order, d.id)
        .limit(limit)
    )
    return [dict(row) for row in conn.execute(query).mappings()]


def with_near_words(conn: Connection, workspace_id: str, terms: list[Term]) -> list[Term] | None:
    """The terms with the workspace's words one typo away from theirs (one lookup in the vocabulary for all of
    them); None when there are none."""
    variants = {word: edits(word) for term in terms for word in term.parts if fuzzable(word)}
    if not variants:
        return None
    candidates = sorted(set().union(*variants.values()))
    found: set[str] = set()
    for start in range(0, len(candidates), VARIANTS_PER_STATEMENT):
        chunk = candidates[start : start + VARIANTS_PER_STATEMENT]
        if conn.dialect.name == "postgresql":  # one array parameter instead of thousands
            among = WORDS.c.word == any_(bindparam(None, chunk, type_=ARRAY(String)))
        else:
            among = WORDS.c.word.in_(chunk)
        found.update(conn.execute(select(WORDS.c.word).where(WORDS.c.workspace_id == workspace_id, among)).scalars())
    near = {word: sorted(found & edits_of)[:MAX_NEAR] for word, edits_of in variants.items()}
    if not any(near.values()):
        return None
    return [replace(t, near=tuple(tuple(near.get(p, ())) for p in t.parts)) for t in terms]
