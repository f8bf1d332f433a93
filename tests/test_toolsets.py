"""Toolsets: over stdio a server lists the everyday toolsets at first and `toolsets_enable` lists more, telling the
client; a prompt lists the tools it asks for; `--toolsets` still fixes what is served; every tool has a toolset."""

import sys
from typing import Any

import pytest
from mcp import Client, StdioServerParameters
from mcp_types import ToolListChangedNotification

from mcp_crm.catalog.server import build_server
from mcp_crm.catalog.toolsets import DEFAULT, toolset_names, toolset_of
from mcp_crm.catalog.workspace_tools import all_tools, select_tools
from tests.helpers import call, fail

pytestmark = pytest.mark.anyio
ERAS = pytest.mark.parametrize("mode", ["legacy", "auto"], ids=["legacy", "2026"])


def test_every_tool_has_a_toolset_and_the_default_ones_exist():
    assert {toolset_of(t.name) for t in all_tools()} == set(toolset_names())
    assert set(DEFAULT) <= set(toolset_names())


class Notifications:
    def __init__(self) -> None:
        self.received: list[Any] = []

    async def __call__(self, message: Any) -> None:
        self.received.append(message)

    def tools_changed(self) -> int:
        return sum(isinstance(m, ToolListChangedNotification) for m in self.received)


async def names(client: Client) -> set[str]:
    return {t.name for t in (await client.list_tools()).tools}


@ERAS
async def test_the_list_starts_lean_and_grows_on_request(database_url: str, mode: str) -> None:
    told = Notifications()
    async with Client(build_server(database_url, dynamic=True), mode=mode, message_handler=told) as client:
        if mode == "legacy":
            assert client.server_capabilities.tools.list_changed
        first = await names(client)
        assert {"contacts_create", "deals_move", "tasks_list", "notes_create", "search", "toolsets_enable"} <= first
        assert not any(toolset_of(n) in ("webhooks", "stages", "leads", "email") for n in first)
        assert len(first) < len(all_tools()) / 2

        schema = await call(client, "crm_schema")
        on, off = schema["toolsets"]
        assert on == "on: core, contacts, organizations, deals, tasks, activities, notes"
        assert off.startswith("off (toolsets_enable lists them): ") and "; stages; " in off and not off.endswith("; ")
        assert "webhooks (subscriptions that POST each change to a URL, their delivery log)" in off

        enabled = await call(client, "toolsets_enable", {"toolsets": ["stages", "webhooks"]})
        assert {"stages_list", "webhooks_create", "webhook_deliveries_list"} <= set(enabled["enabled"])
        now = await names(client)
        assert now == first | set(enabled["enabled"])
        if mode == "legacy":
            assert told.tools_changed() == 1
        stage = (await call(client, "stages_list", {"limit": 1}))["items"][0]
        assert stage["id"]

        again = await call(client, "toolsets_enable", {"toolsets": ["stages"]})
        assert again["enabled"] == [] and "nothing changed" in again["next"]
        assert "Did you mean 'leads'" in await fail(client, "toolsets_enable", {"toolsets": ["lead"]})
        assert await names(client) == now
        if mode == "legacy":
            assert told.tools_changed() == 1

        everything = await call(client, "toolsets_enable", {"toolsets": ["all"]})
        assert await names(client) == {t.name for t in all_tools()} | {"toolsets_enable"}
        assert "email_send" in everything["enabled"]


async def test_a_prompt_lists_the_tools_it_asks_for(database_url: str) -> None:
    told = Notifications()
    async with Client(build_server(database_url, dynamic=True), mode="legacy", message_handler=told) as client:
        first = await names(client)
        assert "pipelines_list" not in first and "users_list" not in first
        await client.get_prompt("pipeline_review", {})  # asks only for listed tools
        assert await names(client) == first and told.tools_changed() == 0
        await client.get_prompt("pipeline_review", {"pipeline": "Sales", "owner": "Bob"})
        assert {"pipelines_list", "pipelines_create", "users_list", "users_create"} <= await names(client)
        assert told.tools_changed() == 1


async def test_chosen_toolsets_are_all_listed_and_nothing_else_can_be_enabled(database_url: str) -> None:
    async with Client(build_server(database_url, tools=select_tools(toolsets=["deals"]))) as client:
        listed = await names(client)
        assert "deals_create" in listed and "toolsets_enable" not in listed
        schema = await call(client, "crm_schema")
        assert schema["toolsets"] == ["on: core, deals"]


@pytest.mark.slow
async def test_mcp_crm_serve_over_stdio_starts_lean_unless_told_otherwise(database_url: str) -> None:
    def serve(*extra: str) -> StdioServerParameters:
        args = ["-m", "mcp_crm", "serve", "--database-url", database_url, "--no-worker", *extra]
        return StdioServerParameters(command=sys.executable, args=args)

    told = Notifications()
    async with Client(serve(), mode="legacy", message_handler=told) as client:
        first = await names(client)
        assert "toolsets_enable" in first and "webhooks_create" not in first
        await call(client, "toolsets_enable", {"toolsets": ["webhooks"]})
        assert "webhooks_create" in await names(client)
        assert told.tools_changed() == 1
    async with Client(serve("--toolsets", "all")) as client:
        assert await names(client) == {t.name for t in all_tools()}
