"""Small helpers for calling tools and checking that the database did not change."""

from __future__ import annotations

from typing import Any

from mcp import Client
from sqlalchemy import MetaData, select

from mcp_crm.store import create_engine


async def call(client: Client, tool: str, arguments: dict[str, Any] | None = None) -> Any:
    """Call a tool that must succeed; return its structured content."""
    result = await client.call_tool(tool, arguments or {})
    text = result.content[0].text if result.content else ""
    assert not result.is_error, f"{tool} failed: {text}"
    return result.structured_content


async def fail(client: Client, tool: str, arguments: dict[str, Any] | None = None) -> str:
    """Call a tool that must be refused; return the error text the model sees."""
    result = await client.call_tool(tool, arguments or {})
    assert result.is_error, f"{tool} should have failed but returned {result.structured_content}"
    text = result.content[0].text
    assert "Traceback" not in text
    return text


async def snapshot(database_url: str) -> dict[str, list[tuple[Any, ...]]]:
    """Every row of every table, sorted: equal snapshots mean nothing changed."""
    engine = create_engine(database_url)
    try:
        async with engine.connect() as conn:
            metadata = MetaData()
            await conn.run_sync(metadata.reflect)
            dump = {}
            for name, table in sorted(metadata.tables.items()):
                rows = (await conn.execute(select(table))).all()
                dump[name] = sorted(tuple(map(repr, row)) for row in rows)
            return dump
    finally:
        await engine.dispose()
