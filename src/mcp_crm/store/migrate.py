"""Bring a database to the newest schema. The server calls this at start; it is a no-op when current."""

from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy import Connection, text

from mcp_crm.store.database import Database

MIGRATIONS = Path(__file__).parent / "migrations"


def alembic_config(connection: Connection | None = None) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.attributes["connection"] = connection
    return config


def _upgrade(conn: Connection) -> None:
    if conn.dialect.name == "postgresql":
        # two servers starting at once must not both run the same migration
        conn.execute(text("SELECT pg_advisory_xact_lock(727274)"))
    command.upgrade(alembic_config(conn), "head")


async def migrate(db: Database) -> None:
    await db.write(_upgrade)
