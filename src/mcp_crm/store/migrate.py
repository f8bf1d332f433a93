"""Bring a database to the newest schema. The server calls this at start; when the database is current (every
start but the first after an upgrade) it costs one query, and Alembic is not even imported."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy import Connection, text

from mcp_crm.store.database import Database

if TYPE_CHECKING:
    from alembic.config import Config

MIGRATIONS = Path(__file__).parent / "migrations"
# The newest revision: each migration file is named after its revision, 0001_..., 0002_..., in order.
HEAD = max(path.name.split("_", 1)[0] for path in (MIGRATIONS / "versions").glob("[0-9]*_*.py"))


def alembic_config(connection: Connection | None = None) -> Config:
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.attributes["connection"] = connection
    return config


def current_revision(conn: Connection) -> str | None:
    """The database's revision; None for a database no migration has touched."""
    if conn.dialect.name == "postgresql":
        exists = conn.execute(text("SELECT to_regclass('alembic_version') IS NOT NULL")).scalar_one()
    else:
        exists = conn.execute(text("SELECT 1 FROM sqlite_master WHERE name = 'alembic_version'")).first()
    return conn.execute(text("SELECT version_num FROM alembic_version")).scalar() if exists else None


def _upgrade(conn: Connection) -> None:
    if current_revision(conn) == HEAD:
        return
    from alembic import command

    if conn.dialect.name == "postgresql":
        # two servers starting at once must not both run the same migration
        conn.execute(text("SELECT pg_advisory_xact_lock(727274)"))
    command.upgrade(alembic_config(conn), "head")


async def migrate(db: Database) -> None:
    await db.write(_upgrade)
