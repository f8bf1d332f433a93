"""The tool catalog: consistent names, hints and schemas, and tool_catalog/ in step with the code."""

import json
import subprocess
import sys
from pathlib import Path

import pytest
from mcp import Client

from mcp_crm.catalog.export import render_files
from mcp_crm.catalog.server import build_server
from mcp_crm.catalog.toolsets import entity_of
from mcp_crm.entities import ENTITIES

ROOT = Path(__file__).resolve().parents[1]
VERBS = ["create", "create_many", "get", "list", "update", "update_many", "delete", "delete_many", "config"]


@pytest.fixture(scope="module")
def tools() -> list[dict]:
    return json.loads(render_files()["tools.json"])


def test_every_entity_has_the_nine_tools(tools):
    names = {t["name"] for t in tools}
    for entity in ENTITIES:
        assert {f"{entity}_{verb}" for verb in VERBS} <= names
    assert "users_me" in names


def test_every_tool_has_title_hints_and_schemas(tools):
    for tool in tools:
        hints = tool["annotations"]
        assert tool["title"] and hints["title"] == tool["title"], tool["name"]
        assert "readOnlyHint" in hints and hints["openWorldHint"] is False, tool["name"]
        assert tool["inputSchema"]["type"] == "object" and tool["inputSchema"]["additionalProperties"] is False
        assert tool["outputSchema"]["type"] == "object", tool["name"]
        entity = entity_of(tool["name"])
        verb = tool["name"][len(entity) + 1 :] if entity else tool["name"].rsplit("_", 1)[-1]
        reads = ("get", "list", "config", "me", "summary", "schema", "search", "fetch", "timeline", "find_duplicates")
        reads += ("members",)  # lists_members
        assert hints["readOnlyHint"] == (verb in reads), tool["name"]
        assert hints.get("destructiveHint", False) == (verb.startswith("delete") or verb in ("purge", "merge")), tool[
            "name"
        ]


def test_descriptions_tell_a_model_what_to_send(tools):
    by_name = {t["name"]: t for t in tools}
    assert "Required: first_name, last_name" in by_name["contacts_create"]["description"]
    assert "Required: name, amount" in by_name["services_create"]["description"]
    listing = by_name["deals_list"]["description"]
    assert '"op"' in listing and "next_cursor" in listing and "value (money)" in listing


def test_create_schema_marks_required_fields(tools):
    schema = next(t for t in tools if t["name"] == "contacts_create")["inputSchema"]
    assert schema["required"] == ["first_name", "last_name"]
    assert "email" not in schema["properties"]  # read-only, derived from emails


@pytest.mark.anyio
async def test_tools_json_is_exactly_what_tools_list_returns(tmp_path):
    async with Client(build_server(f"sqlite:///{tmp_path / 'c.db'}")) as client:
        listed = (await client.list_tools()).tools
    live = [t.model_dump(mode="json", by_alias=True, exclude_none=True) for t in listed]
    assert live == json.loads((ROOT / "tool_catalog" / "tools.json").read_text())


def test_catalog_check_passes_on_the_committed_catalog_and_fails_when_stale(tmp_path):
    ok = subprocess.run([sys.executable, "-m", "mcp_crm", "catalog", "--check"], cwd=ROOT, capture_output=True)
    assert ok.returncode == 0, ok.stderr.decode()
    stale = tmp_path / "catalog"
    stale.mkdir()
    for name, content in render_files().items():
        (stale / name).write_text(content.replace("Create one contact", "Create a contact"))
    bad = subprocess.run(
        [sys.executable, "-m", "mcp_crm", "catalog", "--check", "--dir", str(stale)], capture_output=True, text=True
    )
    assert bad.returncode == 1 and "Stale" in bad.stderr
