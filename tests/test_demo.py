from datetime import date, timedelta
from decimal import Decimal
from pathlib import Path

import pytest
from mcp import Client
from typer.testing import CliRunner

from mcp_crm.catalog.server import build_server
from mcp_crm.cli import app
from mcp_crm.demo import load_demo
from mcp_crm.errors import CrmError
from tests.helpers import call, snapshot

pytestmark = pytest.mark.anyio


async def _all(client: Client, entity: str, **arguments: object) -> list[dict]:
    page = await call(client, f"{entity}_list", {"limit": 200, **arguments})
    assert not page["has_more"]
    return page["items"]


def _this_month() -> list[str]:
    first = date.today().replace(day=1)
    last = (first + timedelta(days=32)).replace(day=1) - timedelta(days=1)
    return [first.isoformat(), last.isoformat()]


async def test_counts_match_what_the_list_tools_report(database_url):
    counts = await load_demo(database_url)
    assert counts == {
        "services": 12,
        "users": 5,
        "organizations": 50,
        "contacts": 150,
        "deals": 70,
        "tasks": 120,
        "leads": 30,
        "activities": 220,
        "notes": 60,
        "lists": 2,
    }
    async with Client(build_server(database_url)) as client:
        for entity, created in counts.items():
            page = await call(client, f"{entity}_list", {"include_total": True, "limit": 1})
            assert page["total"] == created + (1 if entity == "users" else 0)  # plus the local owner


async def test_several_large_open_deals_close_this_month(database_url):
    await load_demo(database_url)
    large_this_month = {
        "and": [
            {"field": "status", "op": "eq", "value": "open"},
            {"field": "value", "op": "gt", "value": 10000},
            {"field": "expected_close_date", "op": "between", "value": _this_month()},
        ]
    }
    async with Client(build_server(database_url)) as client:
        page = await call(client, "deals_list", {"filter": large_this_month, "include_total": True})
    assert page["total"] >= 3
    assert all(float(d["value"]) > 10000 and d["status"] == "open" for d in page["items"])


async def test_records_are_related(database_url):
    await load_demo(database_url)
    async with Client(build_server(database_url)) as client:
        orphans = await call(
            client, "deals_list", {"filter": {"field": "organization_ids", "op": "is_null"}, "include_total": True}
        )
        assert orphans["total"] == 0
        contacts = await _all(client, "contacts")
        members = {c["id"]: {o["id"] for o in c["organizations"]} for c in contacts}
        assert all(members.values())
        assert all(sum(o["is_primary"] for o in c["organizations"]) == 1 for c in contacts)
        assert any(o["role"] for c in contacts for o in c["organizations"])
        for deal in await _all(client, "deals"):
            orgs = {o["id"] for o in deal["organizations"]}
            assert orgs and deal["contacts"]
            assert all(members[c["id"]] & orgs for c in deal["contacts"]), deal["name"]
        overdue = {
            "and": [
                {"field": "done", "op": "eq", "value": False},
                {"field": "due_at", "op": "lt", "value": date.today().isoformat()},
            ]
        }
        assert (await call(client, "tasks_list", {"filter": overdue, "include_total": True}))["total"] > 0
        planned = {"and": [{"field": "done", "op": "eq", "value": False}, {"field": "deal_id", "op": "is_not_null"}]}
        activities = await call(client, "activities_list", {"filter": planned, "include_total": True})
        assert activities["total"] > 0 and all(a["participants"] for a in activities["items"])
        for lead in await _all(client, "leads"):
            assert lead["organization_id"] and lead["source"]
        notes = await _all(client, "notes")
        assert {n["record_type"] for n in notes} == {"contacts", "organizations", "deals"}
        for deal in await _all(client, "deals"):
            if deal["services"]:
                assert deal["value"] == f"{sum(Decimal(s['total']) for s in deal['services']):.2f}", deal["name"]


async def test_deals_spread_over_the_pipeline_and_their_stage_matches_their_status(database_url):
    await load_demo(database_url)
    async with Client(build_server(database_url)) as client:
        kinds = {s["id"]: (s["name"], s["kind"]) for s in await _all(client, "stages")}
        deals = await _all(client, "deals")
    assert all(kinds[d["stage_id"]][1] == d["status"] for d in deals)
    assert {kinds[d["stage_id"]][0] for d in deals} == {name for name, _ in kinds.values()}  # every stage used


async def _deal_names(database_url: str) -> list[str]:
    async with Client(build_server(database_url)) as client:
        return [d["name"] for d in await _all(client, "deals", fields=["name"])]


async def test_the_same_seed_gives_the_same_deals(database_url, tmp_path: Path):
    other = f"sqlite:///{tmp_path / 'other.db'}"
    await load_demo(database_url, seed=3)
    await load_demo(other, seed=3)
    names = await _deal_names(database_url)
    assert len(names) == 70
    assert names == await _deal_names(other)
    different = f"sqlite:///{tmp_path / 'different.db'}"
    await load_demo(different, seed=4)
    assert names != await _deal_names(different)


async def test_a_second_load_is_refused_and_changes_nothing(database_url):
    await load_demo(database_url)
    before = await snapshot(database_url)
    with pytest.raises(CrmError, match=r"already loaded in this database.*nothing was changed"):
        await load_demo(database_url)
    assert await snapshot(database_url) == before


def test_the_cli_loads_once_then_refuses_in_plain_words(database_url):
    runner = CliRunner()
    first = runner.invoke(app, ["demo", "--database-url", database_url])
    assert first.exit_code == 0, first.output
    assert "Demo data loaded: 12 services, 5 users, 50 organizations, 150 contacts, 70 deals, 120 tasks" in first.stdout
    second = runner.invoke(app, ["demo", "--database-url", database_url])
    assert second.exit_code == 1
    assert "already loaded" in second.stderr
    assert "Traceback" not in second.output


async def test_a_webinar_list_holds_contacts_and_some_have_opted_out(database_url):
    await load_demo(database_url)
    async with Client(build_server(database_url)) as client:
        opted_out = await _all(client, "contacts", filter={"field": "email_opt_out", "op": "eq", "value": True})
        assert len(opted_out) == 6 and all(c["email_opt_out_reason"] and c["email_opted_out_at"] for c in opted_out)
        (webinar,) = await _all(client, "lists", filter={"field": "name", "op": "eq", "value": "Q3 webinar"})
        page = await call(client, "lists_members", {"list_id": webinar["id"], "limit": 200})
        assert page["total"] == 25 and page["email_statuses"]["opted_out"] >= 1
        (dynamic,) = await _all(client, "lists", filter={"field": "kind", "op": "eq", "value": "dynamic"})
        leads = await call(client, "lists_members", {"list_id": dynamic["id"], "limit": 200})
        assert all(m["type"] == "leads" for m in leads["items"])
