"""Dry runs preview exactly what a write would do and change nothing; big bulk writes need their confirm token."""

import time

import pytest

from mcp_crm.operations.preview import confirm_token, confirmed
from tests.helpers import call, fail, snapshot

pytestmark = pytest.mark.anyio


async def test_a_dry_run_create_returns_the_record_it_would_make_and_writes_nothing(client, database_url):
    before = await snapshot(database_url)
    made = await call(client, "contacts_create", {"first_name": "Ada", "last_name": "L", "dry_run": True})
    assert made["first_name"] == "Ada" and made["revision"] == 1
    assert made["preview"]["applied"] is False
    assert made["preview"]["counts"] == {"contacts": {"created": 1}}
    assert made["preview"]["changes"] == [
        {"action": "created", "entity": "contacts", "id": made["id"], "name": "Ada L"}
    ]
    assert await snapshot(database_url) == before
    assert "preview" not in await call(client, "contacts_create", {"first_name": "Ada", "last_name": "L"})


async def test_a_dry_run_update_shows_each_field_before_and_after(client, world, database_url):
    ada = world["ada"]
    before = await snapshot(database_url)
    result = await call(client, "contacts_update", {"id": ada["id"], "job_title": "CTO", "dry_run": True})
    assert result["job_title"] == "CTO" and result["revision"] == ada["revision"] + 1
    (change,) = result["preview"]["changes"]
    assert change["fields"] == {"job_title": {"before": None, "after": "CTO"}}
    assert await snapshot(database_url) == before
    assert (await call(client, "contacts_get", {"id": ada["id"]}))["job_title"] is None


async def test_deleting_an_organization_previews_the_records_it_touches(client, world, database_url):
    before = await snapshot(database_url)
    result = await call(client, "organizations_delete", {"id": world["acme"]["id"], "dry_run": True})
    assert result["preview"]["counts"] == {
        "organizations": {"deleted": 1},
        "contacts": {"unlinked": 1},
        "deals": {"unlinked": 1},
        "tasks": {"updated": 1},
    }
    task_change = next(c for c in result["preview"]["changes"] if c["entity"] == "tasks")
    assert task_change["fields"] == {"organization_id": {"before": world["acme"]["id"], "after": None}}
    assert await snapshot(database_url) == before


async def test_a_dry_run_reports_the_same_problems_as_the_real_call(client, world, database_url):
    before = await snapshot(database_url)
    arguments = {"items": [{"name": "ok", "amount": "1"}, {"name": "bad", "amount": "1", "sku": "A"}] * 1}
    await call(client, "services_create", {"name": "Taken", "amount": "5", "sku": "A"})
    before = await snapshot(database_url)
    dry = await fail(client, "services_create_many", arguments | {"dry_run": True})
    real = await fail(client, "services_create_many", arguments)
    assert dry == real and "items[1].sku" in dry
    assert await snapshot(database_url) == before


async def test_a_dry_run_ignores_and_keeps_free_its_idempotency_key(client, database_url):
    arguments = {"first_name": "Once", "last_name": "Only", "idempotency_key": "k-1"}
    await call(client, "contacts_create", arguments | {"dry_run": True})
    made = await call(client, "contacts_create", arguments)
    assert (await call(client, "contacts_get", {"id": made["id"]}))["first_name"] == "Once"


async def test_restore_and_purge_can_be_previewed(client, world, database_url):
    ada = world["ada"]
    await call(client, "contacts_delete", {"id": ada["id"]})
    before = await snapshot(database_url)
    restore = await call(client, "contacts_restore", {"ids": [ada["id"]], "dry_run": True})
    assert restore["preview"]["counts"] == {"contacts": {"restored": 1}, "tasks": {"updated": 1}}
    purge = await call(client, "trash_purge", {"ids": [ada["id"]], "dry_run": True})
    assert purge["preview"]["counts"] == {"contacts": {"purged": 1}}
    assert await snapshot(database_url) == before


async def _contacts(client, count: int) -> list[str]:
    made = await call(
        client, "contacts_create_many", {"items": [{"first_name": f"P{i}", "last_name": "X"} for i in range(count)]}
    )
    return [item["id"] for item in made["items"]]


async def test_a_bulk_update_of_more_than_50_records_needs_the_token_of_its_dry_run(client, database_url):
    ids = await _contacts(client, 60)
    arguments = {"items": [{"id": rid, "tags": ["cold"]} for rid in ids]}
    before = await snapshot(database_url)
    refused = await fail(client, "contacts_update_many", arguments)
    assert "Not done: this call would update 60 contacts" in refused and "confirm" in refused
    assert await snapshot(database_url) == before

    preview = (await call(client, "contacts_update_many", arguments | {"dry_run": True}))["preview"]
    assert preview["counts"] == {"contacts": {"updated": 60}} and len(preview["changes"]) == 60
    token = preview["confirm"]
    other = {"items": [{"id": rid, "tags": ["hot"]} for rid in ids]}
    assert "Not done" in await fail(client, "contacts_update_many", other | {"confirm": token})
    assert await snapshot(database_url) == before

    done = await call(client, "contacts_update_many", arguments | {"confirm": token})
    assert done["count"] == 60
    assert (await call(client, "contacts_get", {"id": ids[0]}))["tags"] == ["cold"]


async def test_a_bulk_delete_of_50_records_needs_no_token_but_51_do(client, database_url):
    ids = await _contacts(client, 101)
    assert (await call(client, "contacts_delete_many", {"ids": ids[:50]}))["count"] == 50
    refused = await fail(client, "contacts_delete_many", {"ids": ids[50:]})
    token = refused.split('confirm: "')[1].split('"')[0]
    assert (await call(client, "contacts_delete_many", {"ids": ids[50:], "confirm": token}))["count"] == 51
    assert (await call(client, "contacts_list", {}))["items"] == []


def test_tokens_expire_and_are_bound_to_their_request():
    token = confirm_token("secret", "request")
    assert confirmed("secret", "request", token)
    assert not confirmed("secret", "other request", token)
    assert not confirmed("other secret", "request", token)
    assert not confirmed("secret", "request", confirm_token("secret", "request", now=time.time() - 601))
    assert not confirmed("secret", "request", "garbage")
