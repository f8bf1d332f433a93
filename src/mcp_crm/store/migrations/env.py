"""Alembic environment. The application passes its own connection (see mcp_crm.store.migrate);
`alembic revision --autogenerate` run by a developer gets one from MCP_CRM_DATABASE_URL."""

import asyncio
from typing import Any, Literal

from alembic import context
from sqlalchemy.types import TypeDecorator
from sqlmodel import SQLModel

import mcp_crm.entities
import mcp_crm.store.tables  # noqa: F401
from mcp_crm.store.search_tables import include_object

target_metadata = SQLModel.metadata


def render_item(kind: str, obj: Any, _context: Any) -> str | Literal[False]:
    """Migrations name plain SQLAlchemy types, never our Python-side decorators (they may change;
    a migration must not)."""
    if kind == "type" and isinstance(obj, TypeDecorator):
        return f"sa.{obj.impl!r}"
    return False


def run(connection) -> None:  # type: ignore[no-untyped-def]
    # No batch mode: its SQLite table rebuild would DROP tables while foreign keys are on, cascading deletes.
    # SQLite >= 3.35 adds, drops and renames columns natively; a change needing a rebuild is written by hand.
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        render_item=render_item,
        include_object=include_object,
    )
    with context.begin_transaction():
        context.run_migrations()


async def _run_with_own_database() -> None:
    from mcp_crm.settings import default_database_url
    from mcp_crm.store.database import Database

    db = Database(default_database_url())
    try:
        await db.write(run)
    finally:
        await db.dispose()


connection = context.config.attributes.get("connection")
if connection is not None:
    run(connection)
else:
    asyncio.run(_run_with_own_database())
