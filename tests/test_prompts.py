"""MCP prompts (slash commands): listed with their arguments, rendered with the values given, and every tool call
they tell the model to make matches the server's own tools/list, so the prompts cannot drift from the catalog."""

from __future__ import annotations

import json
import re
import shutil
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from mcp import Client
from mcp.shared.exceptions import MCPError
from mcp_types import INVALID_PARAMS, Tool

from mcp_crm.catalog.prompts import LONG_SUMMARY
from mcp_crm.catalog.server import build_server
from mcp_crm.entities import Kind
from mcp_crm.query.operators import operators_of

pytestmark = pytest.mark.anyio

ADA_ID = "01a2157e-5a38-73d4-867c-fa9ebd3d794e"
USER_ID = "01a2157e-5a38-73d4-867c-000000000001"
PIPELINE_ID = "01a2157e-5a38-73d4-867c-000000000002"

ARGUMENTS = {
    "pipeline_review": {"pipeline": False, "owner": False},
    "todays_follow_ups": {"owner": False},
    "prepare_meeting": {"contact": True},
    "log_call": {"contact": True, "summary": False, "outcome": False},
}

# Every shape of argument each prompt renders differently for: ids, names, emails, "me", short and long text.
VARIANTS: list[tuple[str, dict[str, str]]] = [
    ("pipeline_review", {}),
    ("pipeline_review", {"pipeline": "New business", "owner": "me"}),
    ("pipeline_review", {"pipeline": PIPELINE_ID, "owner": USER_ID}),
    ("pipeline_review", {"owner": "grace@example.com"}),
    ("todays_follow_ups", {}),
    ("todays_follow_ups", {"owner": "Grace Hopper"}),
    ("todays_follow_ups", {"owner": USER_ID}),
    ("prepare_meeting", {"contact": "Ada Lovelace"}),
    ("prepare_meeting", {"contact": "ada@acme.com"}),
    ("prepare_meeting", {"contact": ADA_ID}),
    ("prepare_meeting", {"contact": 'Ada "the countess" Lovelace'}),
    ("log_call", {"contact": "Ada Lovelace"}),
    ("log_call", {"contact": ADA_ID, "summary": "Budget approved for Q1.", "outcome": "interested"}),
    ("log_call", {"contact": "ada@acme.com", "summary": "She said: " + "more detail, " * 40, "outcome": "reached"}),
]


@pytest.fixture
async def client(tmp_path: Path, sqlite_template: Path) -> AsyncIterator[Client]:
    """Prompts need no data: one SQLite copy is enough (tools/list is the same on every database)."""
    path = tmp_path / "crm.db"
    shutil.copy(sqlite_template, path)
    async with Client(build_server(f"sqlite:///{path}", worker=False)) as connected:
        yield connected


async def render(client: Client, name: str, arguments: dict[str, str]) -> str:
    result = await client.get_prompt(name, arguments)
    assert len(result.messages) == 1
    message = result.messages[0]
    assert message.role == "user"
    assert message.content.type == "text"
    return message.content.text


def quoted(value: str) -> str:
    """A value as it appears inside the prompt's JSON arguments."""
    return json.dumps(value)[1:-1]


def tools_named(text: str) -> set[str]:
    return set(re.findall(r"`([a-z_]+)`", text))


def calls(text: str) -> list[tuple[str, dict[str, Any]]]:
    """Each "`tool` with {json}" in the text, its JSON parsed."""
    decoder = json.JSONDecoder()
    found = []
    for match in re.finditer(r"`([a-z_]+)` with ", text):
        arguments, _ = decoder.raw_decode(text, match.end())
        found.append((match.group(1), arguments))
    return found


async def test_the_four_prompts_are_listed_with_their_arguments(client: Client) -> None:
    prompts = {p.name: p for p in (await client.list_prompts()).prompts}
    assert set(prompts) == set(ARGUMENTS)
    for name, expected in ARGUMENTS.items():
        prompt = prompts[name]
        assert prompt.title and prompt.description
        assert {a.name: a.required for a in prompt.arguments or []} == expected
        assert all(a.description for a in prompt.arguments or [])


async def test_pipeline_review_reads_the_summary_then_the_stalled_deals(client: Client) -> None:
    text = await render(client, "pipeline_review", {"pipeline": PIPELINE_ID, "owner": "me"})
    assert {"crm_summary", "deals_list", "activities_list", "users_me"} <= tools_named(text)
    summary = dict(calls(text))["crm_summary"]
    assert summary["pipeline_id"] == PIPELINE_ID and summary["owner_id"] == "me"
    assert "stage_entered_at" in text and "rotten_after_days" in text
    for part in ("Per stage", "Risks", "Next steps"):
        assert part in text

    by_name = await render(client, "pipeline_review", {"pipeline": "New business", "owner": "Grace Hopper"})
    assert {"pipelines_list", "users_list", "crm_summary"} <= tools_named(by_name)
    assert "New business" in by_name and "Grace Hopper" in by_name
    assert "owner_id" not in dict(calls(await render(client, "pipeline_review", {})))["crm_summary"]


async def test_todays_follow_ups_filters_on_due_time_and_done(client: Client) -> None:
    before = datetime.now(UTC).date().isoformat()
    text = await render(client, "todays_follow_ups", {"owner": USER_ID})
    after = datetime.now(UTC).date().isoformat()
    assert {"tasks_list", "activities_list", "deals_list"} <= tools_named(text)
    assert before in text or after in text
    tasks = dict(calls(text))["tasks_list"]["filter"]["and"]
    assert {"field": "done", "op": "eq", "value": False} in tasks
    assert {"field": "assignee_id", "op": "eq", "value": USER_ID} in tasks
    assert any(c["field"] == "due_at" and c["op"] == "lt" for c in tasks)
    # without an owner it is the acting user's list
    assert "users_me" in tools_named(await render(client, "todays_follow_ups", {}))


async def test_prepare_meeting_gathers_the_contact_and_everything_around_them(client: Client) -> None:
    text = await render(client, "prepare_meeting", {"contact": "ada@acme.com"})
    expected = {"contacts_list", "contacts_get", "timeline", "organizations_get", "deals_list", "notes_list"}
    assert expected | {"activities_list", "tasks_list"} <= tools_named(text)
    assert "ada@acme.com" in text
    by_id = await render(client, "prepare_meeting", {"contact": ADA_ID})
    assert dict(calls(by_id))["contacts_get"] == {"id": ADA_ID}
    assert "search" not in tools_named(by_id)
    assert "search" in tools_named(await render(client, "prepare_meeting", {"contact": "Ada Lovelace"}))


async def test_log_call_creates_a_call_activity_linked_to_the_contact(client: Client) -> None:
    text = await render(
        client, "log_call", {"contact": ADA_ID, "summary": "Budget approved for Q1.", "outcome": "interested"}
    )
    assert {"activity_types_list", "deals_list", "activities_create", "tasks_create"} <= tools_named(text)
    activity = dict(calls(text))["activities_create"]
    assert activity["type"] == "call" and activity["contact_id"] == ADA_ID
    assert activity["note"] == "Budget approved for Q1." and "interested" in activity["subject"]
    assert "notes_create" not in tools_named(text)

    long = "We went through the proposal line by line. " * 10
    assert len(long) > LONG_SUMMARY
    text = await render(client, "log_call", {"contact": "Ada Lovelace", "summary": long})
    assert dict(calls(text))["notes_create"]["body"] == long.strip()  # values are trimmed
    assert "note" not in dict(calls(text))["activities_create"]
    assert "Ada Lovelace" in text


@pytest.mark.parametrize(("name", "arguments"), VARIANTS)
async def test_argument_values_reach_the_rendered_text(client: Client, name: str, arguments: dict[str, str]) -> None:
    text = await render(client, name, arguments)
    for value in arguments.values():
        assert quoted(value.strip()) in text


async def test_every_tool_call_in_every_prompt_matches_tools_list(client: Client) -> None:
    tools = {t.name: t for t in (await client.list_tools()).tools}
    for name, arguments in VARIANTS:
        text = await render(client, name, arguments)
        where = f"{name}({arguments})"
        assert tools_named(text) <= set(tools), f"{where} names unknown tools"
        # a tool-like name outside backticks would escape the check above
        for word in re.findall(r"(?<![`\w])([a-z]+_[a-z_]*(?:list|get|create|update|delete|me|summary))\b", text):
            assert word in tools, f"{where} names unknown tool {word}"
        for tool, called in calls(text):
            check_call(tools[tool], called, f"{where}: {tool}")


def check_call(tool: Tool, arguments: dict[str, Any], where: str) -> None:
    jsonschema.validate(arguments, tool.input_schema)
    description = tool.description or ""
    listed = re.search(r"Filterable fields: (.*?)\. Sortable: (.*?)\. ", description)
    if "filter" in arguments or "sort" in arguments:
        assert listed, where
        kinds = dict(re.findall(r"([\w.]+) \((\w+)", listed.group(1)))
        sortable = listed.group(2).split(", ")
        for condition in conditions(arguments.get("filter")):
            field, op = condition["field"], condition["op"]
            assert field in kinds, f"{where} filters on unknown field {field}"
            assert op in operators_of(Kind(kinds[field])), f"{where}: {op} does not apply to {field}"
        for key in arguments.get("sort", []):
            assert key["field"] in sortable, f"{where} sorts on {key['field']}"
    if "fields" in arguments:
        assert tool.output_schema
        returned = tool.output_schema["properties"]["items"]["items"]["properties"]
        assert set(arguments["fields"]) <= set(returned), where


def conditions(tree: dict[str, Any] | None) -> list[dict[str, Any]]:
    if tree is None:
        return []
    if "and" in tree or "or" in tree:
        return [c for branch in tree.get("and", tree.get("or")) for c in conditions(branch)]
    if "not" in tree:
        return conditions(tree["not"])
    return [tree]


@pytest.mark.parametrize("mode", ["modern", "legacy"])
async def test_a_missing_or_unknown_argument_is_a_clear_error(tmp_path: Path, sqlite_template: Path, mode: str) -> None:
    shutil.copy(sqlite_template, tmp_path / "crm.db")
    server = build_server(f"sqlite:///{tmp_path / 'crm.db'}", worker=False)
    async with Client(server, **({"mode": "legacy"} if mode == "legacy" else {})) as client:
        assert len((await client.list_prompts()).prompts) == 4
        for arguments in ({}, {"contact": "   "}):
            with pytest.raises(MCPError, match=r"prepare_meeting needs: contact \(The contact: a name") as caught:
                await client.get_prompt("prepare_meeting", arguments)
            assert caught.value.code == INVALID_PARAMS
        with pytest.raises(MCPError, match="log_call needs: contact") as caught:
            await client.get_prompt("log_call", {"summary": "Budget approved."})
        assert caught.value.code == INVALID_PARAMS
        with pytest.raises(MCPError, match="has no argument pipline; its arguments: pipeline, owner"):
            await client.get_prompt("pipeline_review", {"pipline": "New business"})
        assert "Ada" in await render(client, "prepare_meeting", {"contact": "Ada"})
