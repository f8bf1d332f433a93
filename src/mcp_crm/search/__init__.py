"""Full-text search over contacts, organizations, deals, leads, notes and activities (entities declared
`searchable`): one document per record in `search_documents`, kept by the writes that change the record, matched
by SQLite FTS5 or PostgreSQL full-text search.

terms.py: words, identifiers, documents and queries; index.py: keeping the documents; match.py: the databases'
match expressions and words one typo away; ranking.py: the `search` tool's ranked results; lists.py: `q` on
*_list; snippets.py: the matched part of a result."""

from mcp_crm.search.index import index_changes, rebuild_index
from mcp_crm.search.lists import search_fields_of, text_condition
from mcp_crm.search.ranking import search_documents

__all__ = ["index_changes", "rebuild_index", "search_documents", "search_fields_of", "text_condition"]
