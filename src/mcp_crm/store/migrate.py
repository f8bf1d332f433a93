"""Bring a database to the newest schema. The server calls this at start; it is a no-op when current."""

from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy import Connection, text
from sqlalchemy.ext.asyncio import AsyncEngine

from mcp_crm.store.engine import write_connection

MIGRATIONS = Path(__file__).parent / "migrations"


def alembic_config(connection: Connection | None = None) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.attributes["connection"] = connection
    return config


async def migrate(engine: AsyncEngine) -> None:
    async with write_connection(engine) as conn:
        if engine.dialect.name == "postgresql":
            # two servers starting at once must not both run the same migration
            await conn.execute(text("SELECT pg_advisory_xact_lock(727274)"))
        await conn.run_sync(lambda sync: command.upgrade(alembic_config(sync), "head"))
