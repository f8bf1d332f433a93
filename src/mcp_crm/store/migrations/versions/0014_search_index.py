"""the search index: a document per searchable record, the workspaces' vocabularies, and each database's
full-text index over them (SQLite: an FTS5 table kept by triggers; PostgreSQL: a generated tsvector column with a
GIN index); filled from the records that exist

Revision ID: 0014
Revises: 0013
Create Date: 2026-11-26 15:10:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0014"
down_revision: str | None = "0013"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TERMS = ("title_terms", "id_terms", "body_terms")

COLUMNS = ", ".join(TERMS)
ADD = f"INSERT INTO search_fts(rowid, {COLUMNS}) VALUES (new.id, {', '.join(f'new.{t}' for t in TERMS)});"
REMOVE = (
    f"INSERT INTO search_fts(search_fts, rowid, {COLUMNS}) VALUES ('delete', old.id, "
    f"{', '.join(f'old.{t}' for t in TERMS)});"
)
SQLITE = (  # an FTS5 table over the token columns, kept in step with them by triggers
    f"CREATE VIRTUAL TABLE search_fts USING fts5({COLUMNS}, content='search_documents', content_rowid='id', "
    "tokenize='unicode61 remove_diacritics 2', prefix='2 3')",
    f"CREATE TRIGGER search_documents_ai AFTER INSERT ON search_documents BEGIN {ADD} END",
    f"CREATE TRIGGER search_documents_ad AFTER DELETE ON search_documents BEGIN {REMOVE} END",
    f"CREATE TRIGGER search_documents_au AFTER UPDATE ON search_documents BEGIN {REMOVE} {ADD} END",
)

POSTGRES = (
    "ALTER TABLE search_documents ADD COLUMN vector tsvector GENERATED ALWAYS AS ("
    "setweight(to_tsvector('simple'::regconfig, title_terms), 'A') || "
    "setweight(to_tsvector('simple'::regconfig, id_terms), 'B') || "
    "setweight(to_tsvector('simple'::regconfig, body_terms), 'D')) STORED",
    "CREATE INDEX ix_search_documents_vector ON search_documents USING gin (vector)",
)


def upgrade() -> None:
    op.create_table(
        "search_documents",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("workspace_id", sa.String(length=36), nullable=False),
        sa.Column("entity", sa.String(length=40), nullable=False),
        sa.Column("record_id", sa.String(length=36), nullable=False),
        sa.Column("title", sa.Text(), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        *(sa.Column(name, sa.Text(), nullable=False) for name in (*TERMS, "field_terms")),
        sa.ForeignKeyConstraint(["workspace_id"], ["workspaces.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index(
        "ix_search_documents_record", "search_documents", ["workspace_id", "entity", "record_id"], unique=True
    )
    op.create_table(
        "search_words",
        sa.Column("workspace_id", sa.String(length=36), nullable=False),
        sa.Column("word", sa.String(length=60), nullable=False),
        sa.ForeignKeyConstraint(["workspace_id"], ["workspaces.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("workspace_id", "word"),
    )
    statements = POSTGRES if op.get_bind().dialect.name == "postgresql" else SQLITE
    for statement in statements:
        op.execute(statement)

    from mcp_crm.search.index import rebuild_index  # reads the tables as they are at this revision

    rebuild_index(op.get_bind())


def downgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":
        op.execute("DROP TABLE search_fts")
    op.drop_table("search_words")
    op.drop_index("ix_search_documents_record", table_name="search_documents")
    op.drop_table("search_documents")  # with its triggers, or its generated column and that column's index
