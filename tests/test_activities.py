"""Activities: typed by the workspace's own activity types, linked to the records they concern."""

import pytest

from tests.helpers import call, fail, snapshot

pytestmark = pytest.mark.anyio


async def test_the_type_list_is_data_the_workspace_extends(client, database_url):
    keys = [t["key"] for t in (await call(client, "activity_types_list", {"sort": [{"field": "key"}]}))["items"]]
    assert keys == ["call", "deadline", "email", "lunch", "meeting", "note", "task"]
    before = await snapshot(database_url)
    error = await fail(client, "activities_create", {"type": "demo", "subject": "Show the product"})
    assert "'demo' is not an activity type here; use one of call, deadline" in error
    assert await snapshot(database_url) == before

    demo = await call(client, "activity_types_create", {"key": "demo", "name": "Product demo"})
    made = await call(client, "activities_create", {"type": "demo", "subject": "Show the product"})
    assert made["type"] == "demo"
    assert "already used" in await fail(client, "activity_types_create", {"key": "demo", "name": "Again"})
    await call(client, "activity_types_update", {"id": demo["id"], "active": False})
    assert "not an activity type" in await fail(client, "activities_create", {"type": "demo", "subject": "Another"})
    assert (await call(client, "activities_update", {"id": made["id"], "subject": "Renamed"}))["type"] == "demo"


async def test_overdue_undone_mine_and_done_stamps(client, world):
    me = await call(client, "users_me")
    items = [
        {"type": "call", "subject": "Late call", "due_at": "2020-01-01T09:00:00Z"},
        {"type": "meeting", "subject": "Future meeting", "due_at": "2099-01-01T09:00:00Z"},
        {"type": "email", "subject": "Late but done", "due_at": "2020-01-02T09:00:00Z", "done": True},
    ]
    made = await call(client, "activities_create_many", {"items": items})
    overdue_mine = {
        "and": [
            {"field": "done", "op": "eq", "value": False},
            {"field": "due_at", "op": "lt", "value": "2026-01-01T00:00:00Z"},
            {"field": "owner_id", "op": "eq", "value": me["id"]},
        ]
    }
    found = await call(client, "activities_list", {"filter": overdue_mine})
    assert [a["subject"] for a in found["items"]] == ["Late call"]
    done = await call(client, "activities_get", {"id": made["items"][2]["id"]})
    assert done["done_at"] is not None
    undone = await call(client, "activities_update", {"id": done["id"], "done": False})
    assert undone["done_at"] is None


async def test_participants_follow_their_contacts_into_the_trash_and_back(client, world):
    ada, deal = world["ada"], world["deal"]
    meeting = await call(
        client,
        "activities_create",
        {"type": "meeting", "subject": "Kickoff", "deal_id": deal["id"], "participant_ids": [ada["id"]]},
    )
    assert meeting["participants"] == [{"id": ada["id"], "name": "Ada L"}]
    await call(client, "contacts_delete", {"id": ada["id"]})
    assert (await call(client, "activities_get", {"id": meeting["id"]}))["participants"] == []
    await call(client, "contacts_restore", {"ids": [ada["id"]]})
    assert (await call(client, "activities_get", {"id": meeting["id"]}))["participants"] == [
        {"id": ada["id"], "name": "Ada L"}
    ]
