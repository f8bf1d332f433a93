"""Optimistic concurrency: every record has a revision; expected_revision makes a write conditional."""

import anyio
import pytest

from mcp_crm.catalog.models import inputs
from mcp_crm.entities import ENTITIES
from mcp_crm.entities.models import create_model_for
from mcp_crm.errors import CrmError
from mcp_crm.operations import Crm
from mcp_crm.operations.workspace import local_actor
from mcp_crm.store import Database
from tests.helpers import call, fail, snapshot

pytestmark = pytest.mark.anyio
DEALS = ENTITIES["deals"]


async def test_revision_starts_at_one_and_counts_real_changes(client):
    deal = await call(client, "deals_create", {"name": "Renewal"})
    assert deal["revision"] == 1
    changed = await call(client, "deals_update", {"id": deal["id"], "value": "100"})
    assert changed["revision"] == 2
    same = await call(client, "deals_update", {"id": deal["id"], "value": "100.00"})
    assert same["revision"] == 2  # nothing changed, nothing counted
    assert (await call(client, "deals_get", {"id": deal["id"]}))["revision"] == 2


async def test_stale_expected_revision_changes_nothing_and_says_what_changed(client, database_url):
    deal = await call(client, "deals_create", {"name": "Renewal"})
    await call(client, "deals_update", {"id": deal["id"], "value": "100", "probability": 40})
    before = await snapshot(database_url)
    text = await fail(client, "deals_update", {"id": deal["id"], "expected_revision": 1, "name": "Mine"})
    assert f"deal {deal['id']} is at revision 2, not 1; changed since: probability, value" in text
    assert "deals_get" in text
    text = await fail(client, "deals_delete", {"id": deal["id"], "expected_revision": 1})
    assert "is at revision 2, not 1" in text
    assert await snapshot(database_url) == before
    ok = await call(client, "deals_update", {"id": deal["id"], "expected_revision": 2, "name": "Mine"})
    assert ok["revision"] == 3 and ok["name"] == "Mine"
    await call(client, "deals_delete", {"id": deal["id"], "expected_revision": 3})


async def test_update_many_checks_each_expected_revision(client, database_url):
    made = (await call(client, "deals_create_many", {"items": [{"name": "A"}, {"name": "B"}]}))["items"]
    await call(client, "deals_update", {"id": made[1]["id"], "name": "B2"})
    before = await snapshot(database_url)
    text = await fail(
        client,
        "deals_update_many",
        {
            "items": [
                {"id": made[0]["id"], "expected_revision": 1, "value": "1"},
                {"id": made[1]["id"], "expected_revision": 1, "value": "1"},
            ]
        },
    )
    assert "items[1].expected_revision" in text and "items[0]" not in text
    assert await snapshot(database_url) == before


async def test_two_servers_racing_on_one_record_never_lose_an_update(database_url):
    """Two Database objects stand for two server processes on one database: both read revision 1 and
    write with expected_revision=1; exactly one wins, the other is told to re-read."""
    first, second = Database(database_url), Database(database_url)
    try:
        actor = await local_actor(first, via="cli")
        deal = await Crm(first).create(actor, DEALS, create_model_for(DEALS)(name="Contested"))
        Update = inputs(DEALS)["update"]
        outcomes: list[str] = []

        async def write(db: Database, value: str) -> None:
            try:
                await Crm(db).update(actor, DEALS, deal["id"], Update(id=deal["id"], expected_revision=1, value=value))
                outcomes.append(value)
            except CrmError as exc:
                outcomes.append(str(exc))

        async with anyio.create_task_group() as group:
            group.start_soon(write, first, "10")
            group.start_soon(write, second, "20")
        winners = [o for o in outcomes if o in ("10", "20")]
        assert len(winners) == 1, outcomes
        assert any("is at revision 2, not 1" in o for o in outcomes), outcomes
        final = await Crm(second).get(actor, DEALS, deal["id"])
        assert final["revision"] == 2 and final["value"] == f"{winners[0]}.00"
    finally:
        await first.dispose()
        await second.dispose()
