"""Drive mcp-crm over stdio with the MCP Python SDK, the way Claude Desktop and Cursor do.

    python examples/client_stdio.py

The script starts `mcp-crm serve` itself and stops it at the end. MCP_CRM_DATABASE_URL chooses the
database (default: crm.db in your user data folder, the same one Claude Desktop uses without an `env`).
Each run adds one organization and one contact."""

from __future__ import annotations

import asyncio
import os
import sys
from typing import Any

from mcp import Client, StdioServerParameters
from mcp.types import TextContent


def server() -> StdioServerParameters:
    # The server starts with a minimal environment (PATH, HOME, ...): pass on what it needs.
    env = {name: value for name in ("MCP_CRM_DATABASE_URL",) if (value := os.environ.get(name))}
    # command="mcp-crm", args=["serve"] works as well when mcp-crm is on PATH; this form runs the
    # package with the Python running this script, which has it installed.
    return StdioServerParameters(command=sys.executable, args=["-m", "mcp_crm", "serve"], env=env)


async def call(client: Client, tool: str, arguments: dict[str, Any]) -> dict[str, Any]:
    """Call a tool; stop with the server's explanation if it refuses."""
    result = await client.call_tool(tool, arguments)
    if result.is_error:
        text = " ".join(block.text for block in result.content if isinstance(block, TextContent))
        raise SystemExit(f"{tool} failed: {text}")
    return result.structured_content or {}


async def main() -> None:
    async with Client(server()) as client:
        tools = await client.list_tools()
        print(f"Connected over stdio (protocol {client.protocol_version}): {len(tools.tools)} tools")

        org = await call(client, "organizations_create", {"name": "Acme Corp", "domain": "acme.example"})
        print(f"Created organization {org['name']} ({org['id']})")

        contact = await call(
            client,
            "contacts_create",
            {
                "first_name": "Ada",
                "last_name": "Lovelace",
                "job_title": "CTO",
                "emails": [{"value": "ada@acme.example", "label": "work", "primary": True}],
                "organization_ids": [org["id"]],
            },
        )
        print(f"Created contact {contact['first_name']} {contact['last_name']} ({contact['id']})")

        page = await call(
            client,
            "contacts_list",
            {"filter": {"field": "organization_ids", "op": "eq", "value": org["id"]}, "include_total": True},
        )
        print(f"Contacts of {org['name']}: {page['total']}")
        for person in page["items"]:
            print(f"- {person['first_name']} {person['last_name']} <{person['email']}>, {person['job_title']}")


if __name__ == "__main__":
    asyncio.run(main())
