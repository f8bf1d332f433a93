"""create_many / update_many / delete_many are atomic and report every bad item by index."""

import pytest

from tests.helpers import call, fail, snapshot

pytestmark = pytest.mark.anyio


async def test_create_many_writes_all_items(client):
    items = [{"first_name": f"F{i}", "last_name": "L"} for i in range(120)]
    result = await call(client, "contacts_create_many", {"items": items})
    assert result["count"] == 120
    assert [c["name"] for c in result["items"]] == [f"F{i} L" for i in range(120)]
    first = await call(client, "contacts_get", {"id": result["items"][0]["id"]})
    assert first["first_name"] == "F0"
    page = await call(client, "contacts_list", {"include_total": True, "limit": 1})
    assert page["total"] == 120


async def test_create_many_with_bad_items_writes_nothing_and_names_each(client, database_url):
    org = await call(client, "organizations_create", {"name": "Acme"})
    before = await snapshot(database_url)
    items = [
        {"first_name": "Ok", "last_name": "One", "organization_ids": [org["id"]]},
        {"first_name": "Bad", "last_name": "Ref", "organization_ids": ["missing-org"]},
        {"first_name": "Ok", "last_name": "Two"},
        {"first_name": "Bad", "last_name": "Dup", "organization_ids": [org["id"], org["id"]]},
    ]
    text = await fail(client, "contacts_create_many", {"items": items})
    assert "items[1].organization_ids: no organization with id 'missing-org'" in text
    assert "items[3].organization_ids: lists the same id more than once" in text
    assert "items[0]" not in text and "items[2]" not in text
    assert await snapshot(database_url) == before


async def test_schema_errors_in_bulk_are_reported_by_index(client, database_url):
    before = await snapshot(database_url)
    items = [
        {"first_name": "Ok", "last_name": "A"},
        {"first_name": "No last name"},
        {"last_name": "x", "frist_name": "y"},
    ]
    text = await fail(client, "contacts_create_many", {"items": items})
    assert "items[1].last_name: required, but missing" in text
    assert "items[2].frist_name: unknown field. Did you mean 'first_name'?" in text
    assert await snapshot(database_url) == before


async def test_bulk_limit_is_500(client):
    text = await fail(client, "contacts_create_many", {"items": [{"first_name": "a", "last_name": "b"}] * 501})
    assert "items" in text and "500" in text


async def test_unique_values_clash_inside_one_call(client, database_url):
    before = await snapshot(database_url)
    items = [{"name": "A", "email": "same@example.com"}, {"name": "B", "email": "same@example.com"}]
    text = await fail(client, "users_create_many", {"items": items})
    assert "items[1].email: 'same@example.com' is also given to items[0]" in text
    assert await snapshot(database_url) == before


async def test_update_many_is_atomic(client, database_url):
    made = (await call(client, "deals_create_many", {"items": [{"name": f"D{i}"} for i in range(3)]}))["items"]
    changed = await call(
        client,
        "deals_update_many",
        {"items": [{"id": made[0]["id"], "value": "10"}, {"id": made[1]["id"], "status": "won"}]},
    )
    assert changed == {"items": [{"id": made[0]["id"], "name": "D0"}, {"id": made[1]["id"], "name": "D1"}], "count": 2}
    assert (await call(client, "deals_get", {"id": made[1]["id"]}))["won_at"] is not None
    before = await snapshot(database_url)
    text = await fail(
        client,
        "deals_update_many",
        {"items": [{"id": made[0]["id"], "value": "20"}, {"id": made[2]["id"], "owner_id": "ghost"}]},
    )
    assert "items[1].owner_id: no user with id 'ghost'" in text
    text = await fail(
        client, "deals_update_many", {"items": [{"id": made[0]["id"], "value": "20"}, {"id": "nope", "value": "1"}]}
    )
    assert "No deal with id 'nope'" in text
    assert await snapshot(database_url) == before


async def test_delete_many_is_atomic(client, database_url):
    made = (await call(client, "tasks_create_many", {"items": [{"name": f"T{i}"} for i in range(3)]}))["items"]
    before = await snapshot(database_url)
    text = await fail(client, "tasks_delete_many", {"ids": [made[0]["id"], "nope"]})
    assert "No task with id 'nope'" in text
    assert await snapshot(database_url) == before
    result = await call(client, "tasks_delete_many", {"ids": [m["id"] for m in made[:2]]})
    assert result == {"deleted_ids": [made[0]["id"], made[1]["id"]], "count": 2}
    assert [t["id"] for t in (await call(client, "tasks_list"))["items"]] == [made[2]["id"]]
