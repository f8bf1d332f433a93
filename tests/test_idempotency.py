"""Idempotency keys: a retried write returns the first result and writes nothing more."""

from datetime import UTC, datetime

import pytest
from sqlalchemy import update

from mcp_crm.store import Database
from mcp_crm.store.tables import IDEMPOTENCY_KEYS
from tests.helpers import call, fail, snapshot

pytestmark = pytest.mark.anyio


async def count(client, tool):
    return (await call(client, tool, {"limit": 1, "include_total": True}))["total"]


async def test_the_same_key_and_arguments_replay_the_first_result(client, database_url):
    arguments = {"first_name": "Ada", "last_name": "Lovelace", "idempotency_key": "add-ada-1"}
    first = await call(client, "contacts_create", arguments)
    before = await snapshot(database_url)
    again = await call(client, "contacts_create", arguments)
    assert again == first
    assert await snapshot(database_url) == before  # no second contact, no second change event
    assert await count(client, "contacts_list") == 1


async def test_the_same_key_with_other_arguments_is_refused(client, database_url):
    await call(client, "deals_create", {"name": "A", "idempotency_key": "k"})
    before = await snapshot(database_url)
    text = await fail(client, "deals_create", {"name": "B", "idempotency_key": "k"})
    assert "idempotency_key 'k' was already used with different arguments" in text
    text = await fail(client, "tasks_create", {"name": "A", "idempotency_key": "k"})  # another tool: another request
    assert "different arguments" in text
    assert await snapshot(database_url) == before


async def test_every_write_tool_accepts_a_key_and_replays(client):
    made = await call(client, "tasks_create_many", {"items": [{"name": "a"}, {"name": "b"}], "idempotency_key": "m"})
    assert (
        await call(client, "tasks_create_many", {"items": [{"name": "a"}, {"name": "b"}], "idempotency_key": "m"})
        == made
    )
    ids = [t["id"] for t in made["items"]]
    update_args = {"items": [{"id": ids[0], "name": "a2"}], "idempotency_key": "u"}
    assert await call(client, "tasks_update_many", update_args) == await call(client, "tasks_update_many", update_args)
    deleted = await call(client, "tasks_delete", {"id": ids[1], "idempotency_key": "d"})
    assert await call(client, "tasks_delete", {"id": ids[1], "idempotency_key": "d"}) == deleted  # not "No task"
    assert await count(client, "tasks_list") == 1


async def test_a_key_older_than_24_hours_runs_the_write_again(client, database_url):
    arguments = {"name": "Acme", "idempotency_key": "old"}
    first = await call(client, "organizations_create", arguments)
    db = Database(database_url)
    try:
        await db.write(
            lambda conn: conn.execute(update(IDEMPOTENCY_KEYS).values(created_at=datetime(2020, 1, 1, tzinfo=UTC)))
        )
    finally:
        await db.dispose()
    second = await call(client, "organizations_create", arguments)
    assert second["id"] != first["id"]
    assert await count(client, "organizations_list") == 2
