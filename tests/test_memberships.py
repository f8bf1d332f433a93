"""A contact's memberships in organizations carry a role, a title and a primary flag."""

import pytest

from tests.helpers import call, fail, snapshot

pytestmark = pytest.mark.anyio


async def test_memberships_carry_role_title_and_primary_on_both_sides(client):
    acme = await call(client, "organizations_create", {"name": "Acme"})
    globex = await call(client, "organizations_create", {"name": "Globex"})
    ada = await call(
        client,
        "contacts_create",
        {
            "first_name": "Ada",
            "last_name": "L",
            "organization_ids": [
                {"organization_id": acme["id"], "role": "decision maker", "title": "CTO", "is_primary": True},
                globex["id"],
            ],
        },
    )
    assert ada["organizations"] == [
        {"id": acme["id"], "name": "Acme", "role": "decision maker", "title": "CTO", "is_primary": True},
        {"id": globex["id"], "name": "Globex", "role": None, "title": None, "is_primary": False},
    ]
    acme = await call(client, "organizations_get", {"id": acme["id"]})
    assert acme["contacts"] == [
        {"id": ada["id"], "name": "Ada L", "role": "decision maker", "title": "CTO", "is_primary": True}
    ]


async def test_what_a_write_leaves_out_is_kept(client):
    acme = await call(client, "organizations_create", {"name": "Acme"})
    ada = await call(
        client,
        "contacts_create",
        {"first_name": "Ada", "last_name": "L", "organization_ids": [{"organization_id": acme["id"], "role": "buyer"}]},
    )
    bob = await call(client, "contacts_create", {"first_name": "Bob", "last_name": "B"})
    ada = await call(
        client,
        "contacts_update",
        {"id": ada["id"], "organization_ids": [{"organization_id": acme["id"], "is_primary": True}]},
    )
    assert (ada["organizations"][0]["role"], ada["organizations"][0]["is_primary"]) == ("buyer", True)
    # the organization side adds Bob by id and gives Ada a title; Ada's role and primary flag stay
    acme = await call(
        client,
        "organizations_update",
        {"id": acme["id"], "contact_ids": [{"contact_id": ada["id"], "title": "CTO"}, bob["id"]]},
    )
    assert [(c["name"], c["role"], c["title"], c["is_primary"]) for c in acme["contacts"]] == [
        ("Ada L", "buyer", "CTO", True),
        ("Bob B", None, None, False),
    ]
    # sending the same memberships again is no change at all
    again = await call(client, "contacts_update", {"id": ada["id"], "organization_ids": [acme["id"]]})
    assert again["revision"] == ada["revision"]


async def test_a_role_change_is_in_the_audit_log(client):
    acme = await call(client, "organizations_create", {"name": "Acme"})
    ada = await call(
        client, "contacts_create", {"first_name": "Ada", "last_name": "L", "organization_ids": [acme["id"]]}
    )
    membership = {"organization_id": acme["id"], "role": "champion"}
    ada = await call(client, "contacts_update", {"id": ada["id"], "organization_ids": [membership]})
    assert ada["revision"] == 2
    log = await call(
        client, "audit_list", {"filter": {"field": "record_id", "op": "eq", "value": ada["id"]}, "limit": 1}
    )
    change = log["items"][0]
    assert change["before"]["organizations"][0]["role"] is None
    assert change["after"]["organizations"][0]["role"] == "champion"


async def test_bad_memberships_are_refused_and_change_nothing(client, database_url):
    acme = await call(client, "organizations_create", {"name": "Acme"})
    globex = await call(client, "organizations_create", {"name": "Globex"})
    ada = await call(client, "contacts_create", {"first_name": "Ada", "last_name": "L"})
    before = await snapshot(database_url)
    two = [{"organization_id": o["id"], "is_primary": True} for o in (acme, globex)]
    text = await fail(client, "contacts_update", {"id": ada["id"], "organization_ids": two})
    assert "organization_ids: only one organization can be primary" in text
    text = await fail(
        client,
        "organizations_update",
        {"id": acme["id"], "contact_ids": [{"contact_id": ada["id"], "is_primary": True}]},
    )
    assert "is_primary" in text  # the primary flag is the contact's to set
    text = await fail(client, "contacts_update", {"id": ada["id"], "organization_ids": [{"organization_id": "nope"}]})
    assert "no organization with id 'nope'" in text
    long_role = {"organization_id": acme["id"], "role": "x" * 101}
    text = await fail(client, "contacts_update", {"id": ada["id"], "organization_ids": [long_role]})
    assert "role" in text
    assert await snapshot(database_url) == before


async def test_a_restored_organization_gets_its_memberships_back_whole(client):
    acme = await call(client, "organizations_create", {"name": "Acme"})
    membership = {"organization_id": acme["id"], "role": "buyer", "title": "CTO", "is_primary": True}
    ada = await call(
        client, "contacts_create", {"first_name": "Ada", "last_name": "L", "organization_ids": [membership]}
    )
    await call(client, "organizations_delete", {"id": acme["id"]})
    assert (await call(client, "contacts_get", {"id": ada["id"]}))["organizations"] == []
    await call(client, "organizations_restore", {"ids": [acme["id"]]})
    restored = (await call(client, "contacts_get", {"id": ada["id"]}))["organizations"]
    assert [(o["role"], o["title"], o["is_primary"]) for o in restored] == [("buyer", "CTO", True)]


async def test_filters_can_use_membership_attributes(client):
    acme = await call(client, "organizations_create", {"name": "Acme"})
    globex = await call(client, "organizations_create", {"name": "Globex"})
    buyer = {"organization_id": acme["id"], "role": "decision maker", "is_primary": True}
    ada = await call(client, "contacts_create", {"first_name": "Ada", "last_name": "L", "organization_ids": [buyer]})
    bob = await call(
        client, "contacts_create", {"first_name": "Bob", "last_name": "B", "organization_ids": [globex["id"]]}
    )
    deciders = {"field": "organizations.role", "op": "eq", "value": "decision maker"}
    page = await call(client, "contacts_list", {"filter": deciders})
    assert [c["id"] for c in page["items"]] == [ada["id"]]
    no_primary = {"not": {"field": "organizations.is_primary", "op": "eq", "value": True}}
    assert [c["id"] for c in (await call(client, "contacts_list", {"filter": no_primary}))["items"]] == [bob["id"]]
    at_acme = {"field": "contacts.role", "op": "contains", "value": "decision"}
    assert [o["id"] for o in (await call(client, "organizations_list", {"filter": at_acme}))["items"]] == [acme["id"]]
    text = await fail(client, "contacts_list", {"filter": {"field": "organizations.rol", "op": "eq", "value": "x"}})
    assert "organizations.role" in text  # the closest match is named
    config = await call(client, "contacts_config", {})
    assert {"field": "organizations.is_primary", "type": "boolean", "operators": ["eq", "ne"]} in config["link_filters"]
