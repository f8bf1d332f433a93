"""Links between records: validated on write, summarised on read, never left dangling on delete."""

import pytest

from tests.helpers import call, fail, snapshot

pytestmark = pytest.mark.anyio


async def test_links_are_summarised_on_both_sides(client, world):
    deal = await call(client, "deals_get", {"id": world["deal"]["id"]})
    assert deal["organizations"] == [{"id": world["acme"]["id"], "name": "Acme"}]
    assert deal["contacts"] == [{"id": world["ada"]["id"], "name": "Ada L"}]
    assert deal["services"] == [
        {
            "id": world["hours"]["id"],
            "name": "Consulting",
            "unit": "hour",
            "quantity": "12.5000",
            "unit_price": "150.00",
            "discount_percent": None,
            "discount_amount": None,
            "total": "1875.00",
        }
    ]
    assert deal["value"] == "1875.00"
    membership = {"role": None, "title": None, "is_primary": False}
    acme = await call(client, "organizations_get", {"id": world["acme"]["id"]})
    assert acme["contacts"] == [{"id": world["ada"]["id"], "name": "Ada L", **membership}]
    ada = await call(client, "contacts_get", {"id": world["ada"]["id"]})
    assert ada["organizations"] == [{"id": world["acme"]["id"], "name": "Acme", **membership}]


async def test_line_items_are_replaced_as_a_whole(client, world):
    other = await call(client, "services_create", {"name": "Licence", "amount": "99", "currency": "EUR"})
    deal = await call(client, "deals_update", {"id": world["deal"]["id"], "services": [{"service_id": other["id"]}]})
    assert [(s["name"], s["quantity"]) for s in deal["services"]] == [("Licence", "1.0000")]
    deal = await call(client, "deals_update", {"id": world["deal"]["id"], "services": []})
    assert deal["services"] == []


async def test_references_to_missing_records_are_refused(client, database_url, world):
    before = await snapshot(database_url)
    text = await fail(client, "tasks_create", {"name": "x", "deal_id": "no-such-deal"})
    assert "deal_id: no deal with id 'no-such-deal' (find one with deals_list)" in text
    text = await fail(client, "deals_create", {"name": "x", "services": [{"service_id": "nope", "quantity": 1}]})
    assert "services: no service with id 'nope'" in text
    assert await snapshot(database_url) == before


async def test_deleting_an_organization_unlinks_but_keeps_contacts_deals_and_tasks(client, world):
    await call(client, "organizations_delete", {"id": world["acme"]["id"]})
    ada = await call(client, "contacts_get", {"id": world["ada"]["id"]})
    assert ada["organizations"] == []
    deal = await call(client, "deals_get", {"id": world["deal"]["id"]})
    assert deal["organizations"] == [] and deal["contacts"] != []
    task = await call(client, "tasks_get", {"id": world["task"]["id"]})
    assert task["organization_id"] is None and task["deal_id"] == world["deal"]["id"]


async def test_deleting_a_deal_removes_its_line_items_and_unlinks_tasks(client, world):
    await call(client, "deals_delete", {"id": world["deal"]["id"]})
    task = await call(client, "tasks_get", {"id": world["task"]["id"]})
    assert task["deal_id"] is None
    await call(client, "services_delete", {"id": world["hours"]["id"]})  # no longer on any deal


async def test_a_service_on_a_deal_cannot_be_deleted(client, database_url, world):
    before = await snapshot(database_url)
    text = await fail(client, "services_delete", {"id": world["hours"]["id"]})
    assert "is listed in `services` of 1 deals" in text and "inactive" in text
    assert await snapshot(database_url) == before


async def test_deleting_a_user_clears_ownership_and_you_cannot_delete_yourself(client, database_url, world):
    rep = await call(client, "users_create", {"name": "Rep", "email": "rep@example.com"})
    deal = await call(client, "deals_update", {"id": world["deal"]["id"], "owner_id": rep["id"]})
    assert deal["owner_id"] == rep["id"]
    await call(client, "users_delete", {"id": rep["id"]})
    assert (await call(client, "deals_get", {"id": world["deal"]["id"]}))["owner_id"] is None
    me = await call(client, "users_me")
    before = await snapshot(database_url)
    assert "cannot delete your own user" in await fail(client, "users_delete", {"id": me["id"]})
    assert await snapshot(database_url) == before


async def test_get_names_the_records_behind_each_reference(client, world):
    task = await call(client, "tasks_get", {"id": world["task"]["id"]})
    me = await call(client, "users_me")
    assert task["related"] == {
        "assignee_id": {"id": me["id"], "name": me["name"]},
        "contact_id": {"id": world["ada"]["id"], "name": "Ada L"},
        "organization_id": {"id": world["acme"]["id"], "name": "Acme"},
        "deal_id": {"id": world["deal"]["id"], "name": "Acme rollout"},
    }
