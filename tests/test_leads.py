"""Leads: about a contact or an organization, converted once, atomically, into a deal."""

import pytest

from tests.helpers import call, fail, snapshot

pytestmark = pytest.mark.anyio


async def test_a_lead_needs_a_contact_or_an_organization(client, world, database_url):
    before = await snapshot(database_url)
    error = await fail(client, "leads_create", {"title": "Nobody's lead"})
    assert "needs contact_id or organization_id" in error
    assert await snapshot(database_url) == before
    lead = await call(client, "leads_create", {"title": "Acme seats", "organization_id": world["acme"]["id"]})
    assert "needs contact_id" in await fail(client, "leads_update", {"id": lead["id"], "organization_id": None})
    both = await call(client, "leads_update", {"id": lead["id"], "contact_id": world["ada"]["id"]})
    assert (await call(client, "leads_update", {"id": both["id"], "organization_id": None}))["organization_id"] is None


async def test_converting_a_lead_makes_a_deal_with_its_data_once(client, world, database_url):
    acme, ada = world["acme"], world["ada"]
    lead = await call(
        client,
        "leads_create",
        {
            "title": "Acme: 40 seats",
            "organization_id": acme["id"],
            "contact_id": ada["id"],
            "value": "12000",
            "currency": "EUR",
            "expected_close_date": "2027-01-31",
            "source": "web",
            "labels": ["hot"],
        },
    )
    converted = await call(client, "leads_convert", {"id": lead["id"]})
    deal, marked = converted["deal"], converted["lead"]
    assert (deal["name"], deal["value"], deal["currency"], deal["expected_close_date"]) == (
        "Acme: 40 seats",
        "12000.00",
        "EUR",
        "2027-01-31",
    )
    assert deal["organizations"] == [{"id": acme["id"], "name": "Acme"}]
    assert deal["contacts"] == [{"id": ada["id"], "name": "Ada L"}]
    assert deal["stage_id"] and deal["status"] == "open"
    assert (marked["converted_deal_id"], marked["archived"]) == (deal["id"], True) and marked["converted_at"]
    assert marked["revision"] == lead["revision"] + 1

    before = await snapshot(database_url)
    again = await fail(client, "leads_convert", {"id": lead["id"]})
    assert "already converted" in again and deal["id"] in again
    assert await snapshot(database_url) == before


async def test_a_refused_conversion_changes_nothing(client, world, database_url):
    lead = await call(client, "leads_create", {"title": "Ada's idea", "contact_id": world["ada"]["id"]})
    other = await call(client, "pipelines_create", {"name": "Other"})
    (stage,) = (await call(client, "stages_list", {"filter": {"field": "name", "op": "eq", "value": "Won"}}))["items"]
    before = await snapshot(database_url)
    error = await fail(client, "leads_convert", {"id": lead["id"], "pipeline_id": other["id"], "stage_id": stage["id"]})
    assert "belongs to pipeline" in error
    assert await snapshot(database_url) == before
    assert (await call(client, "leads_get", {"id": lead["id"]}))["converted_deal_id"] is None


async def test_deleting_a_leads_only_contact_clears_it_and_restoring_sets_it_back(client, world):
    ada = world["ada"]
    lead = await call(client, "leads_create", {"title": "Ada's idea", "contact_id": ada["id"]})
    await call(client, "contacts_delete", {"id": ada["id"]})
    assert (await call(client, "leads_get", {"id": lead["id"]}))["contact_id"] is None
    await call(client, "contacts_restore", {"ids": [ada["id"]]})
    assert (await call(client, "leads_get", {"id": lead["id"]}))["contact_id"] == ada["id"]
