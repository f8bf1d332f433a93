"""Drive mcp-crm over streamable HTTP with the MCP Python SDK.

Start the server first, in another terminal, and give this script an API key:

    mcp-crm workspaces create demo --owner-email you@example.com --owner-name "You"
    export MCP_CRM_API_KEY=$(mcp-crm keys create -w demo -u you@example.com --scopes read,write)
    mcp-crm serve --transport http            # http://127.0.0.1:8765/mcp, health check at /health
    python examples/client_http.py

(A server started with --no-auth, on loopback only, needs no key.)

MCP_CRM_HOST and MCP_CRM_PORT are read here as `mcp-crm serve` reads them, so one environment sets both.
The database is the server's: set MCP_CRM_DATABASE_URL (or --database-url) where the server runs.
Each run adds one organization and one contact."""

from __future__ import annotations

import asyncio
import os
from typing import Any

import httpx2
from mcp import Client
from mcp.client.streamable_http import streamable_http_client
from mcp.types import TextContent


def server_url() -> str:
    host = os.environ.get("MCP_CRM_HOST", "127.0.0.1")
    port = os.environ.get("MCP_CRM_PORT", "8765")
    return f"http://{host}:{port}/mcp"


async def call(client: Client, tool: str, arguments: dict[str, Any]) -> dict[str, Any]:
    """Call a tool; stop with the server's explanation if it refuses."""
    result = await client.call_tool(tool, arguments)
    if result.is_error:
        text = " ".join(block.text for block in result.content if isinstance(block, TextContent))
        raise SystemExit(f"{tool} failed: {text}")
    return result.structured_content or {}


async def main() -> None:
    url = server_url()
    # The API key goes in an Authorization header on our own httpx2 client (the SDK's HTTP library).
    # mode="legacy" would speak the 2025 protocol.
    key = os.environ.get("MCP_CRM_API_KEY")
    headers = {"Authorization": f"Bearer {key}"} if key else {}
    async with (
        httpx2.AsyncClient(headers=headers, timeout=30) as http,
        Client(streamable_http_client(url, http_client=http)) as client,
    ):
        tools = await client.list_tools()
        print(f"Connected to {url} (protocol {client.protocol_version}): {len(tools.tools)} tools")

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
