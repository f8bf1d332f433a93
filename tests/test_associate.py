"""`associate`: one verb to attach, detach or sync the links of a record, from either side of the link."""

import pytest

from tests.helpers import call, fail, snapshot

pytestmark = pytest.mark.anyio


def _ids(summaries):
    return sorted(s["id"] for s in summaries)


async def _people(client, n):
    return [(await call(client, "contacts_create", {"first_name": f"P{i}", "last_name": "X"}))["id"] for i in range(n)]


async def test_attach_detach_and_sync_from_the_storing_side(client, world):
    acme, ada = world["acme"]["id"], world["ada"]["id"]
    bob, cy = await _people(client, 2)
    done = await call(
        client,
        "associate",
        {"from_type": "organizations", "from_id": acme, "to_type": "contacts", "to_ids": [ada, bob, cy]},
    )
    assert (done["record"]["name"], sorted(done["attached"]), done["linked_count"]) == ("Acme", sorted([bob, cy]), 3)
    org = await call(client, "organizations_get", {"id": acme})
    assert _ids(org["contacts"]) == sorted([ada, bob, cy])
    done = await call(
        client,
        "associate",
        {"from_type": "organizations", "from_id": acme, "to_type": "contacts", "to_ids": [bob], "mode": "detach"},
    )
    assert (done["detached"], done["linked_count"]) == ([bob], 2)
    done = await call(
        client,
        "associate",
        {"from_type": "organizations", "from_id": acme, "to_type": "contacts", "to_ids": [bob], "mode": "sync"},
    )
    assert (done["attached"], sorted(done["detached"]), done["linked_count"]) == ([bob], sorted([ada, cy]), 1)
    assert _ids((await call(client, "organizations_get", {"id": acme}))["contacts"]) == [bob]


async def test_from_the_other_side_each_linked_record_is_updated(client, world):
    """Contacts do not store their deals: attaching deals to a contact updates each deal."""
    ada, deal = world["ada"]["id"], world["deal"]["id"]
    other = await call(client, "deals_create", {"name": "Second"})
    bob = (await _people(client, 1))[0]
    args = {"from_type": "contacts", "from_id": bob, "to_type": "deals", "to_ids": [deal, other["id"]]}
    done = await call(client, "associate", args)
    assert sorted(done["attached"]) == sorted([deal, other["id"]])
    first = await call(client, "deals_get", {"id": deal})
    assert _ids(first["contacts"]) == sorted([ada, bob])
    assert first["revision"] == world["deal"]["revision"] + 1
    # the same call again changes nothing: no new revision
    again = await call(client, "associate", args)
    assert (again["attached"], again["linked_count"]) == ([], 2)
    assert (await call(client, "deals_get", {"id": deal}))["revision"] == first["revision"]
    done = await call(client, "associate", args | {"to_ids": [other["id"]], "mode": "sync"})
    assert done["detached"] == [deal]
    assert _ids((await call(client, "deals_get", {"id": deal}))["contacts"]) == [ada]


async def test_attributes_of_kept_links_survive(client, world):
    acme, ada = world["acme"]["id"], world["ada"]["id"]
    membership = {"organization_id": acme, "role": "buyer", "is_primary": True}
    await call(client, "contacts_update", {"id": ada, "organization_ids": [membership]})
    bob = (await _people(client, 1))[0]
    await call(
        client, "associate", {"from_type": "organizations", "from_id": acme, "to_type": "contacts", "to_ids": [bob]}
    )
    ada_now = await call(client, "contacts_get", {"id": ada})
    assert (ada_now["organizations"][0]["role"], ada_now["organizations"][0]["is_primary"]) == ("buyer", True)
    # participants of an activity, from the contact's side
    activity = await call(client, "activities_create", {"type": "call", "subject": "Intro"})
    await call(
        client,
        "associate",
        {"from_type": "contacts", "from_id": bob, "to_type": "activities", "to_ids": [activity["id"]]},
    )
    assert _ids((await call(client, "activities_get", {"id": activity["id"]}))["participants"]) == [bob]


async def test_refusals_change_nothing(client, database_url, world):
    acme, ada, deal = world["acme"]["id"], world["ada"]["id"], world["deal"]["id"]
    before = await snapshot(database_url)
    base = {"from_type": "organizations", "from_id": acme, "to_type": "contacts"}
    text = await fail(client, "associate", base | {"to_ids": [ada, "no-such-contact"]})
    assert "No contact with id 'no-such-contact'" in text
    text = await fail(client, "associate", base | {"from_id": "nope", "to_ids": [ada]})
    assert "No organization with id 'nope'" in text
    text = await fail(client, "associate", base | {"to_type": "tasks", "to_ids": [world["task"]["id"]]})
    assert "to_type: Input should be 'activities', 'contacts', 'deals', 'organizations' or 'services'" in text
    text = await fail(client, "associate", base | {"to_type": "services", "to_ids": [world["hours"]["id"]]})
    assert "organizations and services are not linked to each other" in text and "contacts-organizations" in text
    text = await fail(client, "associate", base | {"to_ids": [], "mode": "detach"})
    assert "detach needs at least one id" in text
    text = await fail(client, "associate", base | {"to_type": "contact", "to_ids": [ada]})
    assert "contacts" in text
    text = await fail(
        client,
        "associate",
        {"from_type": "deals", "from_id": deal, "to_type": "services", "to_ids": [world["hours"]["id"], ada]},
    )
    assert "No service with id" in text
    assert await snapshot(database_url) == before


async def test_a_dry_run_previews_and_changes_nothing(client, database_url, world):
    before = await snapshot(database_url)
    bob_args = {
        "from_type": "deals",
        "from_id": world["deal"]["id"],
        "to_type": "contacts",
        "to_ids": [],
        "mode": "sync",
    }
    done = await call(client, "associate", bob_args | {"dry_run": True})
    assert done["detached"] == [world["ada"]["id"]] and done["preview"]["counts"]
    assert await snapshot(database_url) == before
