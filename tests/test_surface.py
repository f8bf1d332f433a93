"""What a model sees: --read-only, --toolsets and --tools trim the tool list; catalog --stats measures it."""

import subprocess
import sys

import pytest
from mcp import Client

from mcp_crm.catalog.server import build_server
from mcp_crm.catalog.workspace_tools import all_tools, select_tools
from mcp_crm.errors import CrmError

pytestmark = pytest.mark.anyio


async def test_read_only_serves_only_tools_that_read(database_url):
    async with Client(build_server(database_url, tools=select_tools(read_only=True))) as client:
        listed = (await client.list_tools()).tools
        names = {t.name for t in listed}
        assert names and all(t.annotations.read_only_hint for t in listed)
        assert "contacts_list" in names and "contacts_create" not in names
        refused = await client.call_tool("contacts_create", {"first_name": "A", "last_name": "B"})
        assert refused.is_error


async def test_toolsets_keep_their_entities_tools_plus_the_workspace_wide_ones(database_url):
    chosen = select_tools(toolsets=["deals", "activity_types"])
    async with Client(build_server(database_url, tools=chosen)) as client:
        names = {t.name for t in (await client.list_tools()).tools}
    assert {"deals_create", "deals_move", "activity_types_list", "users_me", "trash_list"} <= names
    assert {"crm_schema", "crm_summary", "search", "fetch"} <= names
    assert not any(n.startswith(("contacts_", "activities_")) for n in names)
    assert {t.name for t in select_tools(names=["contacts_get", "users_me"])} == {"contacts_get", "users_me"}


def test_unknown_toolsets_and_tools_are_named_with_the_closest_match():
    with pytest.raises(CrmError, match=r"Unknown toolset 'deal'\. Did you mean 'deals'"):
        select_tools(toolsets=["deal"])
    with pytest.raises(CrmError, match="Did you mean 'contacts_get'"):
        select_tools(names=["contacts_gett"])
    done = subprocess.run(
        [sys.executable, "-m", "mcp_crm", "serve", "--toolsets", "contact"], capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 2 and "Did you mean 'contacts'" in done.stderr


def test_catalog_stats_prints_the_size_of_each_surface():
    done = subprocess.run(
        [sys.executable, "-m", "mcp_crm", "catalog", "--stats"],
        capture_output=True,
        text=True,
        timeout=120,
        env={"COLUMNS": "200", "PATH": ""},
    )
    assert done.returncode == 0, done.stderr
    row = next(line for line in done.stdout.splitlines() if "all tools" in line)
    assert f" {len(all_tools())} " in row and "~" in row
    assert "--read-only" in done.stdout and "--toolsets deals" in done.stdout
