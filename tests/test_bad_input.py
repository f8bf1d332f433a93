"""Every tool, fed malformed arguments, answers with a tool error a model can read and changes nothing."""

import pytest

from tests.helpers import call, snapshot

pytestmark = pytest.mark.anyio

JUNK = [
    {"nonsense": 1},
    {"id": 12345},
    {"id": None},
    {"id": "x" * 5000},
    {"items": "not a list"},
    {"items": [{"id": "missing", "name": None}]},
    {"items": []},
    {"ids": [None]},
    {"ids": []},
    {"filter": {"field": "name", "op": "eq"}, "limit": "many"},
    {"filter": {"and": "x"}},
    {"filter": {"or": [{"not": {"field": 1, "op": "gt", "value": {"a": []}}}]}},
    {"sort": [{"field": "name", "direction": "sideways"}]},
    {"cursor": "\u0000\u2603" * 10},
    {"q": ""},
    {"first_name": ["a"], "last_name": {"b": 1}},
    {"name": "x" * 100_000},
    {"name": "ok", "value": "twelve", "amount": -1, "due_at": "tomorrow-ish", "email": "nope"},
]


async def test_malformed_arguments_never_crash_and_never_write(client, database_url):
    await call(client, "contacts_create", {"first_name": "Keep", "last_name": "Me"})
    before = await snapshot(database_url)
    tools = [t.name for t in (await client.list_tools()).tools]
    for tool in tools:
        for arguments in JUNK:
            result = await client.call_tool(tool, arguments)
            text = result.content[0].text if result.content else ""
            if result.is_error:
                assert text and "internal error" not in text and "Traceback" not in text, (tool, arguments, text)
            else:  # tolerated junk (e.g. an ignored empty filter) must still be a read
                assert tool.endswith(("_list", "_get", "_config", "_me")), (tool, arguments, text)
    assert await snapshot(database_url) == before
