"""The search index's tables (kept by mcp_crm.search, created by migration 0014).

`search_documents` holds one document per searchable record: what results show (title, body) and the record's
text as normalised tokens, by weight (title, identifiers, other text), plus every token tagged with its field for
field-targeted search. Each database indexes the token columns its own way, with objects the models below do not
declare: SQLite an FTS5 table (`search_fts`, kept by triggers on search_documents), PostgreSQL a generated
tsvector column (`vector`) with a GIN index. `search_words` is each workspace's vocabulary, where a word with a
typo finds the words one edit away."""

from typing import Any

from sqlalchemy import BigInteger, Index, Integer, Text
from sqlmodel import Field, SQLModel

# An integer key SQLite uses as the rowid (the FTS5 tables' content_rowid); 64-bit on PostgreSQL.
DOCUMENT_ID = BigInteger().with_variant(Integer(), "sqlite")


class SearchDocument(SQLModel, table=True):
    __tablename__ = "search_documents"
    __table_args__ = (Index("ix_search_documents_record", "workspace_id", "entity", "record_id", unique=True),)

    id: int | None = Field(default=None, primary_key=True, sa_type=DOCUMENT_ID)
    workspace_id: str = Field(foreign_key="workspaces.id", max_length=36, ondelete="CASCADE")
    entity: str = Field(max_length=40)
    record_id: str = Field(max_length=36)
    title: str = Field(sa_type=Text)  # as results show it
    body: str = Field(sa_type=Text)  # "field: value" lines of the other searched fields, for snippets
    title_terms: str = Field(sa_type=Text)  # tokens, space separated (search/terms.py)
    id_terms: str = Field(sa_type=Text)  # emails, phones (and their digits), web addresses
    body_terms: str = Field(sa_type=Text)
    field_terms: str = Field(sa_type=Text)  # every token behind its field's tag: " emails0ada emails0acme ..."


class SearchWord(SQLModel, table=True):
    __tablename__ = "search_words"

    workspace_id: str = Field(foreign_key="workspaces.id", primary_key=True, max_length=36, ondelete="CASCADE")
    word: str = Field(primary_key=True, max_length=60)


DOCUMENTS = SearchDocument.__table__  # type: ignore[attr-defined]
WORDS = SearchWord.__table__  # type: ignore[attr-defined]

# What migration 0014 creates beside the tables above, on one database only.
SQLITE_FTS = "search_fts"  # an FTS5 table, with its shadow tables search_fts_data, _idx, _docsize, _config
POSTGRES_COLUMNS = ("vector",)  # the generated tsvector column of search_documents
POSTGRES_INDEXES = ("ix_search_documents_vector",)


def include_object(obj: Any, name: str | None, type_: str, reflected: bool, compare_to: Any) -> bool:
    """For Alembic's autogenerate and schema comparisons: leaves out the database-specific search objects and
    the indexes of indexed custom fields (made when a workspace defines one, not by a migration)."""
    if type_ == "index" and name is not None and name.startswith("ix_custom_"):
        return False
    if type_ == "table" and name is not None and name.startswith(SQLITE_FTS):
        return False
    if type_ == "column" and name in POSTGRES_COLUMNS and getattr(obj, "table", None) is not None:
        return bool(obj.table.name != DOCUMENTS.name)
    return not (type_ == "index" and name in POSTGRES_INDEXES)
