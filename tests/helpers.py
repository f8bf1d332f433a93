"""Small helpers for calling tools and checking that the database did not change."""

from __future__ import annotations

from typing import Any

from mcp import Client
from sqlalchemy import Connection, MetaData, select

from mcp_crm.store import Database


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
    db = Database(database_url)
    try:
        return await db.read(_dump)
    finally:
        await db.dispose()


def _dump(conn: Connection) -> dict[str, list[tuple[Any, ...]]]:
    metadata = MetaData()
    metadata.reflect(conn)
    return {
        name: sorted(tuple(map(repr, row)) for row in conn.execute(select(table)).all())
        for name, table in sorted(metadata.tables.items())
    }


def free_port_unused() -> int:
    """A loopback port nothing listens on (bound, then released)."""
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]
