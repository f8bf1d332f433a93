"""The store: tables, the async engine and the migrations that own the schema."""

from mcp_crm.store.engine import create_engine, is_sqlite, write_connection
from mcp_crm.store.migrate import migrate

__all__ = ["create_engine", "is_sqlite", "migrate", "write_connection"]
