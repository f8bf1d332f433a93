"""Deleting moves records to the trash: gone from every read and link, back with restore, erased by purge."""

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select, update

from mcp_crm.operations import Crm
from mcp_crm.store import Database
from mcp_crm.store.tables import CHANGE_EVENTS, TRASH
from tests.helpers import call, fail, snapshot

pytestmark = pytest.mark.anyio


async def test_a_deleted_contact_disappears_everywhere_and_comes_back_with_its_links(client, world):
    ada, acme, deal, task = world["ada"], world["acme"], world["deal"], world["task"]
    deleted = (await call(client, "contacts_delete", {"id": ada["id"]}))["deleted"]
    membership = {"id": acme["id"], "name": "Acme", "role": None, "title": None, "is_primary": False}
    assert deleted["id"] == ada["id"] and deleted["organizations"] == [membership]

    assert "No contact with id" in await fail(client, "contacts_get", {"id": ada["id"]})
    assert (await call(client, "contacts_list", {}))["items"] == []
    assert (await call(client, "organizations_get", {"id": acme["id"]}))["contacts"] == []
    assert (await call(client, "deals_get", {"id": deal["id"]}))["contacts"] == []
    unlinked = await call(client, "tasks_get", {"id": task["id"]})
    assert unlinked["contact_id"] is None and unlinked["revision"] == task["revision"] + 1
    assert "contact_id" not in unlinked["related"]

    trash = await call(client, "trash_list", {})
    assert [(t["entity"], t["id"], t["name"]) for t in trash["items"]] == [("contacts", ada["id"], "Ada L")]
    purge_after = datetime.fromisoformat(trash["items"][0]["purge_after"])
    assert purge_after - datetime.fromisoformat(trash["items"][0]["deleted_at"]) == timedelta(days=30)

    restored = await call(client, "contacts_restore", {"ids": [ada["id"]]})
    assert restored == {"items": [{"id": ada["id"], "name": "Ada L"}], "count": 1, "notes": []}
    back = await call(client, "contacts_get", {"id": ada["id"]})
    assert back["organizations"] == [membership]
    assert back["revision"] == ada["revision"] + 1
    assert {k: back[k] for k in ("emails", "first_name", "created_at")} == {
        k: ada[k] for k in ("emails", "first_name", "created_at")
    }
    assert (await call(client, "deals_get", {"id": deal["id"]}))["contacts"] == [{"id": ada["id"], "name": "Ada L"}]
    assert (await call(client, "tasks_get", {"id": task["id"]}))["contact_id"] == ada["id"]
    assert (await call(client, "trash_list", {}))["items"] == []


async def test_line_items_and_attributes_come_back_with_a_restored_deal(client, world):
    deal = world["deal"]
    await call(client, "deals_delete", {"id": deal["id"]})
    # no live deal lists the service now, so it may go too; restored first, the deal's line items come back whole
    await call(client, "services_delete", {"id": world["hours"]["id"]})
    await call(client, "services_restore", {"ids": [world["hours"]["id"]]})
    assert (await call(client, "deals_restore", {"ids": [deal["id"]]}))["notes"] == []
    back = await call(client, "deals_get", {"id": deal["id"]})
    assert back["services"] == deal["services"] and back["value"] == deal["value"]
    assert back["organizations"] == deal["organizations"] and back["contacts"] == deal["contacts"]


async def test_a_link_to_a_record_that_is_gone_is_not_restored_and_the_notes_say_so(client, world):
    ada, acme, deal = world["ada"], world["acme"], world["deal"]
    await call(client, "contacts_delete", {"id": ada["id"]})
    await call(client, "organizations_delete", {"id": acme["id"]})
    restored = await call(client, "contacts_restore", {"ids": [ada["id"]]})
    assert (
        len(restored["notes"]) == 1
        and f"organization {acme['id']} not restored, it is in the trash" in (restored["notes"][0])
    )
    back = await call(client, "contacts_get", {"id": ada["id"]})
    assert back["organizations"] == []
    assert (await call(client, "deals_get", {"id": deal["id"]}))["contacts"] == [{"id": ada["id"], "name": "Ada L"}]
    # the membership was handed to the organization's trash entry: restoring it brings the link back
    assert (await call(client, "organizations_restore", {"ids": [acme["id"]]}))["notes"] == []
    organizations = (await call(client, "contacts_get", {"id": ada["id"]}))["organizations"]
    assert [(o["id"], o["name"]) for o in organizations] == [(acme["id"], "Acme")]


async def test_a_restored_record_drops_its_reference_to_a_record_that_is_gone(client, world):
    task, ada = world["task"], world["ada"]
    await call(client, "tasks_delete", {"id": task["id"]})
    await call(client, "contacts_delete", {"id": ada["id"]})
    restored = await call(client, "tasks_restore", {"ids": [task["id"]]})
    assert len(restored["notes"]) == 1 and "contact_id left empty, contact" in restored["notes"][0]
    back = await call(client, "tasks_get", {"id": task["id"]})
    assert back["contact_id"] is None and back["deal_id"] == world["deal"]["id"]
    # handed to the contact's entry: restoring the contact sets it back
    await call(client, "contacts_restore", {"ids": [ada["id"]]})
    assert (await call(client, "tasks_get", {"id": task["id"]}))["contact_id"] == ada["id"]
    # once a record is purged, nothing can bring links to it back
    await call(client, "tasks_delete", {"id": task["id"]})
    await call(client, "contacts_delete", {"id": ada["id"]})
    await call(client, "trash_purge", {"ids": [ada["id"]]})
    restored = await call(client, "tasks_restore", {"ids": [task["id"]]})
    assert "no longer there" in restored["notes"][0]


async def test_a_reference_changed_since_the_delete_is_left_alone(client, world):
    task, ada = world["task"], world["ada"]
    await call(client, "contacts_delete", {"id": ada["id"]})
    grace = await call(client, "contacts_create", {"first_name": "Grace", "last_name": "H"})
    await call(client, "tasks_update", {"id": task["id"], "contact_id": grace["id"]})
    restored = await call(client, "contacts_restore", {"ids": [ada["id"]]})
    assert len(restored["notes"]) == 1 and f"now set to {grace['id']}" in restored["notes"][0]
    assert (await call(client, "tasks_get", {"id": task["id"]}))["contact_id"] == grace["id"]


async def test_deleting_a_user_clears_what_they_own_and_restoring_sets_it_back(client):
    sam = await call(client, "users_create", {"name": "Sam", "email": "sam@example.com"})
    owned = await call(client, "contacts_create", {"first_name": "Owned", "last_name": "C", "owner_id": sam["id"]})
    await call(client, "users_delete", {"id": sam["id"]})
    assert (await call(client, "contacts_get", {"id": owned["id"]}))["owner_id"] is None
    await call(client, "users_restore", {"ids": [sam["id"]]})
    assert (await call(client, "contacts_get", {"id": owned["id"]}))["owner_id"] == sam["id"]


async def test_unique_values_ignore_the_trash_and_a_clashing_restore_changes_nothing(client, database_url):
    old = await call(client, "services_create", {"name": "Audit", "amount": "10", "sku": "AUD-1"})
    await call(client, "services_delete", {"id": old["id"]})
    new = await call(client, "services_create", {"name": "Audit v2", "amount": "12", "sku": "AUD-1"})
    before = await snapshot(database_url)
    error = await fail(client, "services_restore", {"ids": [old["id"]]})
    assert "'AUD-1' is already used by service " + new["id"] in error and "nothing was changed" in error
    assert await snapshot(database_url) == before
    await call(client, "services_update", {"id": new["id"], "sku": "AUD-2"})
    assert (await call(client, "services_restore", {"ids": [old["id"]]}))["count"] == 1


async def test_restore_and_purge_refuse_ids_that_are_not_in_the_trash(client, world, database_url):
    ada = world["ada"]
    before = await snapshot(database_url)
    assert "is not deleted" in await fail(client, "contacts_restore", {"ids": [ada["id"]]})
    assert "is not in the trash" in await fail(client, "deals_restore", {"ids": [ada["id"]]})
    assert "Not in the trash" in await fail(client, "trash_purge", {"ids": [ada["id"]]})
    assert await snapshot(database_url) == before


async def test_purge_erases_for_good(client, world, database_url):
    ada = world["ada"]
    await call(client, "contacts_delete", {"id": ada["id"]})
    purged = await call(client, "trash_purge", {"ids": [ada["id"]]})
    assert purged == {"items": [{"entity": "contacts", "id": ada["id"], "name": "Ada L"}], "count": 1}
    assert "is not in the trash" in await fail(client, "contacts_restore", {"ids": [ada["id"]]})
    db = Database(database_url)
    try:
        actions = await db.read(
            lambda c: (
                c.execute(
                    select(CHANGE_EVENTS.c.action)
                    .where(CHANGE_EVENTS.c.record_id == ada["id"])
                    .order_by(CHANGE_EVENTS.c.id)
                )
                .scalars()
                .all()
            )
        )
    finally:
        await db.dispose()
    assert actions == ["created", "deleted", "purged"]


async def test_entries_past_the_retention_period_are_purged(client, world, database_url):
    await call(client, "contacts_delete", {"id": world["ada"]["id"]})
    await call(client, "deals_delete", {"id": world["deal"]["id"]})
    db = Database(database_url)
    try:
        crm = Crm(db)
        assert await crm.purge_expired() == 0  # both are fresh
        long_ago = datetime.now(UTC) - timedelta(days=31)
        await db.write(
            lambda c: c.execute(update(TRASH).where(TRASH.c.entity == "contacts").values(deleted_at=long_ago))
        )
        assert await crm.purge_expired() == 1
        left = await db.read(lambda c: c.execute(select(TRASH.c.entity)).scalars().all())
    finally:
        await db.dispose()
    assert left == ["deals"]


async def test_trash_list_pages_and_filters_by_entity(client):
    made = await call(
        client, "contacts_create_many", {"items": [{"first_name": f"P{i}", "last_name": "X"} for i in range(5)]}
    )
    ids = [item["id"] for item in made["items"]]
    await call(client, "contacts_delete_many", {"ids": ids})
    org = await call(client, "organizations_create", {"name": "Gone Inc"})
    await call(client, "organizations_delete", {"id": org["id"]})

    seen, cursor = [], None
    while True:
        page = await call(client, "trash_list", {"entity": "contacts", "limit": 2, "cursor": cursor})
        seen += [item["id"] for item in page["items"]]
        if not page["has_more"]:
            break
        cursor = page["next_cursor"]
    assert sorted(seen) == sorted(ids)
    everything = await call(client, "trash_list", {"limit": 10})
    assert everything["items"][0]["id"] == org["id"] and len(everything["items"]) == 6
    assert "Input should be" in await fail(client, "trash_list", {"entity": "contact"})
