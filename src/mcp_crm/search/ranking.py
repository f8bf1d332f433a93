"""`search`: the workspace's best records for a query, across entities.

The database ranks every matching document (bm25 on SQLite, ts_rank on PostgreSQL; a whole word counts twice,
as the word and as a prefix, so "Ada" ranks above "Adam"); the best few are then ordered by how they name the
query: a title that is exactly the query first ("Ada Lovelace" before "Ada Lovelace-Byron"), then titles holding
every term as a whole word, then the rest by the database's rank. When nothing matches, words one typo away
from the query's are tried."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection

from mcp_crm.search.match import query_text, ranked, with_near_words
from mcp_crm.search.snippets import snippet
from mcp_crm.search.terms import Term, parse

POOL = 30  # documents reordered at least


def search_documents(
    conn: Connection, workspace_id: str, query: str, entities: list[str], limit: int
) -> list[dict[str, Any]]:
    """[{entity, record_id, title, snippet, score}], best first; score is higher for better matches."""
    terms = parse(query)
    pool = max(limit * 3, POOL)
    found = ranked(conn, workspace_id, query_text(conn.dialect.name, terms, "all"), entities, pool)
    if not found and (near := with_near_words(conn, workspace_id, terms)) is not None:
        terms = near
        found = ranked(conn, workspace_id, query_text(conn.dialect.name, terms, "all"), entities, pool)
    best = max((r["rank"] for r in found), default=0.0) or 1.0
    for r in found:
        r["score"] = round(_naming(terms, r["title_terms"].split()) + r["rank"] / best, 4)
    found.sort(key=lambda r: -r["score"])  # stable: ties keep the database's order
    return [
        {
            "entity": r["entity"],
            "record_id": r["record_id"],
            "title": r["title"],
            "snippet": snippet(r["title"], r["body"], terms),
            "score": r["score"],
        }
        for r in found[:limit]
    ]


def _naming(terms: list[Term], title: list[str]) -> float:
    """3 for a title that is exactly the query, 1 for one that holds every term as whole words, else 0."""
    held = set(title)
    if not all(any(held >= set(tokens) for tokens, _ in t.alternatives()) for t in terms):
        return 0.0
    return 3.0 if len(title) == sum(len(t.parts) for t in terms) else 1.0
