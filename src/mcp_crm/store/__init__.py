"""The store: tables, the database and the migrations that own the schema."""

from mcp_crm.store.database import Database
from mcp_crm.store.migrate import migrate

__all__ = ["Database", "migrate"]
