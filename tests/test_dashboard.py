"""crm_summary: every figure of the dashboard against a small data set computed by hand, on both databases."""

from datetime import UTC, date, datetime, timedelta

import pytest
from sqlalchemy import update

from mcp_crm.entities.deals import Deal
from mcp_crm.operations.dashboard import Period, resolve_period
from mcp_crm.store import Database
from tests.helpers import call, fail, snapshot

pytestmark = pytest.mark.anyio

DEALS = Deal.__table__
JANUARY = {"since": "2026-01-01", "until": "2026-01-31"}


def ago(days: float) -> str:
    return (datetime.now(UTC) - timedelta(days=days)).isoformat()


async def backdate(database_url: str, deal_id: str, created_days: float, in_stage_days: float) -> None:
    """created_at and stage_entered_at are stamped by the server; a dashboard test needs them in the past."""
    now = datetime.now(UTC)
    stamps = {"created_at": now - timedelta(days=created_days), "stage_entered_at": now - timedelta(days=in_stage_days)}
    db = Database(database_url)
    try:
        await db.write(lambda c: c.execute(update(DEALS).where(DEALS.c.id == deal_id).values(**stamps)))
    finally:
        await db.dispose()


@pytest.fixture
async def book(client, database_url) -> dict:
    """Two pipelines, two owners, three organizations, open deals in two currencies, deals won and lost in and
    around January 2026, and tasks and activities on both sides of now."""
    me = await call(client, "users_me")
    bob = await call(client, "users_create", {"name": "Bob", "email": "bob@example.com"})
    (sales,) = (await call(client, "pipelines_list"))["items"]
    listed = await call(client, "stages_list", {"filter": {"field": "pipeline_id", "op": "eq", "value": sales["id"]}})
    stage = {s["name"]: s["id"] for s in listed["items"]}
    await call(client, "stages_update", {"id": stage["Proposal made"], "rotten_after_days": 10})
    renewals = await call(client, "pipelines_create", {"name": "Renewals"})
    due = await call(client, "stages_create", {"pipeline_id": renewals["id"], "name": "Due", "probability": 70})
    acme, globex, initech = [
        (await call(client, "organizations_create", {"name": n}))["id"] for n in ("Acme", "Globex", "Initech")
    ]

    async def deal(name: str, **fields) -> str:
        return (await call(client, "deals_create", {"name": name, **fields}))["id"]

    d1 = await deal("Acme big", value="1000", currency="EUR", organization_ids=[acme])
    d2 = await deal(
        "Acme more", value="500.50", currency="EUR", stage_id=stage["Proposal made"], organization_ids=[acme]
    )
    d3 = await deal(
        "Globex",
        value="2000",
        currency="USD",
        stage_id=stage["Negotiation"],
        owner_id=bob["id"],
        organization_ids=[globex],
    )
    d4 = await deal("Initech, no value yet", currency="USD", organization_ids=[initech])
    d5 = await deal("Globex renewal", value="300", currency="EUR", pipeline_id=renewals["id"], owner_id=bob["id"])
    await call(client, "deals_update", {"id": d5, "organization_ids": [globex]})
    # (created, entered its stage) days ago
    for deal_id, created, in_stage in [(d1, 20, 15), (d2, 30, 15), (d3, 10, 5), (d4, 4, 4), (d5, 6, 6)]:
        await backdate(database_url, deal_id, created, in_stage)

    won, lost = stage["Won"], stage["Lost"]
    await deal("Won in January", value="400", currency="EUR", stage_id=won, won_at="2026-01-10T12:00:00Z")
    await deal(
        "Bob won in January",
        value="100",
        currency="USD",
        stage_id=won,
        won_at="2026-01-20T08:00:00Z",
        owner_id=bob["id"],
    )
    await deal("Won in December", value="999", currency="EUR", stage_id=won, won_at="2025-12-31T23:59:59Z")
    await deal(
        "Lost on the last evening",
        value="250",
        currency="EUR",
        stage_id=lost,
        lost_at="2026-01-31T23:00:00Z",
        lost_reason="Budget",
        organization_ids=[acme],
    )
    await deal(
        "Lost in February", value="50", currency="EUR", stage_id=lost, lost_at="2026-02-01T00:00:00Z", lost_reason="X"
    )

    async def activity(deal_id: str, due_days: float, done: bool = False, **fields) -> None:
        due_at = (datetime.now(UTC) + timedelta(days=due_days)).isoformat()
        item = {"type": "call", "subject": "Call", "deal_id": deal_id, "due_at": due_at, "done": done, **fields}
        await call(client, "activities_create", item)

    await activity(d1, 7)  # d1 has a next activity
    await activity(d2, -2)  # overdue: d2 has none ahead
    await activity(d3, -3, done=True)  # done: neither overdue nor next
    await activity(d3, 3, owner_id=bob["id"])  # d3 has a next activity

    async def task(due_days: float, done: bool = False, **fields) -> None:
        due_at = (datetime.now(UTC) + timedelta(days=due_days)).isoformat()
        await call(client, "tasks_create", {"name": "Do it", "due_at": due_at, "done": done, **fields})

    await task(-1, deal_id=d1)  # overdue, mine, on a Sales deal
    await task(-1, done=True)
    await task(2)
    await task(-5, assignee_id=bob["id"])  # overdue, Bob's, on no deal
    return {
        "me": me["id"],
        "bob": bob["id"],
        "sales": sales["id"],
        "renewals": renewals["id"],
        "stage": stage,
        "due": due["id"],
        "orgs": {"Acme": acme, "Globex": globex, "Initech": initech},
    }


def stage_figures(summary: dict) -> dict[tuple[str, str], tuple]:
    return {
        (s["pipeline"], s["stage"]): (
            s["deals"],
            s["value"],
            s["weighted_value"],
            s["average_days_in_stage"],
            s["without_next_activity"],
            s["idle_past_stage_limit"],
        )
        for s in summary["stages"]
    }


async def test_the_whole_workspace_in_january(client, book, database_url):
    before = await snapshot(database_url)
    summary = await call(client, "crm_summary", JANUARY)
    assert await snapshot(database_url) == before  # a read

    assert summary["period"] == {"name": "custom", "since": "2026-01-01", "until": "2026-01-31"}
    assert (summary["owner_id"], summary["pipeline_id"]) == (None, None)
    assert summary["open_deals"] == {
        "deals": 5,
        "value": {"EUR": "1800.50", "USD": "2000.00"},
        "weighted_value": {"EUR": "560.25", "USD": "1600.00"},  # 1000 x 10% + 500.50 x 50% + 300 x 70%; 2000 x 80%
        "average_age_days": 14.0,  # (20 + 30 + 10 + 4 + 6) / 5
        "average_days_in_stage": 9.0,  # (15 + 15 + 5 + 4 + 6) / 5
        "without_next_activity": 3,  # d2 (only an overdue one), d4 and d5 (none)
        "idle_past_stage_limit": 1,  # d2: 15 days in Proposal made, rotten after 10
    }
    assert [(s["pipeline"], s["stage"], s["position"], s["kind"]) for s in summary["stages"]] == [
        ("Sales", "Qualified", 1, "open"),
        ("Sales", "Contact made", 2, "open"),
        ("Sales", "Proposal made", 3, "open"),
        ("Sales", "Negotiation", 4, "open"),
        ("Sales", "Won", 5, "won"),
        ("Sales", "Lost", 6, "lost"),
        ("Renewals", "Due", 1, "open"),
    ]
    assert stage_figures(summary) == {
        ("Sales", "Qualified"): (2, {"EUR": "1000.00"}, {"EUR": "100.00"}, 9.5, 1, 0),
        ("Sales", "Contact made"): (0, {}, {}, None, 0, 0),
        ("Sales", "Proposal made"): (1, {"EUR": "500.50"}, {"EUR": "250.25"}, 15.0, 1, 1),
        ("Sales", "Negotiation"): (1, {"USD": "2000.00"}, {"USD": "1600.00"}, 5.0, 0, 0),
        ("Sales", "Won"): (0, {}, {}, None, 0, 0),
        ("Sales", "Lost"): (0, {}, {}, None, 0, 0),
        ("Renewals", "Due"): (1, {"EUR": "300.00"}, {"EUR": "210.00"}, 6.0, 1, 0),
    }
    proposal = next(s for s in summary["stages"] if s["stage"] == "Proposal made")
    assert (proposal["stage_id"], proposal["probability"], proposal["rotten_after_days"]) == (
        book["stage"]["Proposal made"],
        50,
        10,
    )

    # the boundaries: 2025-12-31T23:59:59 and 2026-02-01T00:00 are outside, 2026-01-31T23:00 inside
    assert summary["won"] == {"deals": 2, "value": {"EUR": "400.00", "USD": "100.00"}}
    assert summary["lost"] == {"deals": 1, "value": {"EUR": "250.00"}}
    assert summary["conversion_rate"] == 0.6667
    assert (summary["overdue_tasks"], summary["overdue_activities"]) == (2, 1)
    assert summary["rotten"] == {"without_next_activity": 3, "idle_past_stage_limit": 1}
    orgs = book["orgs"]
    assert summary["top_organizations"] == {  # open deals only: the lost Acme deal does not count
        "EUR": [
            {"id": orgs["Acme"], "name": "Acme", "open_deals": 2, "value": "1500.50"},
            {"id": orgs["Globex"], "name": "Globex", "open_deals": 1, "value": "300.00"},
        ],
        "USD": [
            {"id": orgs["Globex"], "name": "Globex", "open_deals": 1, "value": "2000.00"},
            {"id": orgs["Initech"], "name": "Initech", "open_deals": 1, "value": "0.00"},
        ],
    }


async def test_owner_and_pipeline_narrow_every_figure(client, book):
    mine = await call(client, "crm_summary", JANUARY | {"owner_id": "me"})
    assert mine["owner_id"] == book["me"]
    assert (mine["open_deals"]["deals"], mine["open_deals"]["value"]) == (3, {"EUR": "1500.50"})
    assert mine["open_deals"]["average_age_days"] == 18.0  # (20 + 30 + 4) / 3
    assert mine["won"] == {"deals": 1, "value": {"EUR": "400.00"}}
    assert mine["lost"]["deals"] == 1 and mine["conversion_rate"] == 0.5
    assert (mine["overdue_tasks"], mine["overdue_activities"]) == (1, 1)
    assert mine["rotten"] == {"without_next_activity": 2, "idle_past_stage_limit": 1}
    assert list(mine["top_organizations"]) == ["EUR", "USD"]
    assert [o["name"] for o in mine["top_organizations"]["EUR"]] == ["Acme"]
    assert len(mine["stages"]) == 7  # every stage still shown, with only my deals counted
    assert await call(client, "crm_summary", JANUARY | {"owner_id": book["me"]}) | {"as_of": None} == mine | {
        "as_of": None
    }

    bobs = await call(client, "crm_summary", JANUARY | {"owner_id": book["bob"]})
    assert bobs["open_deals"]["value"] == {"EUR": "300.00", "USD": "2000.00"}
    assert (bobs["won"]["deals"], bobs["lost"]["deals"], bobs["conversion_rate"]) == (1, 0, 1.0)
    assert (bobs["overdue_tasks"], bobs["overdue_activities"]) == (1, 0)

    renewals = await call(client, "crm_summary", JANUARY | {"pipeline_id": book["renewals"]})
    assert [(s["stage_id"], s["deals"]) for s in renewals["stages"]] == [(book["due"], 1)]
    assert renewals["open_deals"]["value"] == {"EUR": "300.00"}
    assert renewals["won"] == {"deals": 0, "value": {}} and renewals["conversion_rate"] is None
    assert (renewals["overdue_tasks"], renewals["overdue_activities"]) == (0, 0)  # none on its deals
    sales = await call(client, "crm_summary", JANUARY | {"pipeline_id": book["sales"]})
    assert sales["open_deals"]["deals"] == 4 and len(sales["stages"]) == 6
    assert (sales["overdue_tasks"], sales["overdue_activities"]) == (1, 1)  # Bob's task is on no deal


async def test_named_periods_and_all_time(client, book):
    everything = await call(client, "crm_summary", {"period": "all_time"})
    assert everything["period"] == {"name": "all_time", "since": None, "until": None}
    assert everything["won"] == {"deals": 3, "value": {"EUR": "1399.00", "USD": "100.00"}}
    assert everything["lost"] == {"deals": 2, "value": {"EUR": "300.00"}}
    assert everything["conversion_rate"] == 0.6

    today = datetime.now(UTC).date()
    default = await call(client, "crm_summary")
    assert default["period"]["name"] == "this_month"
    assert default["period"]["since"] == today.replace(day=1).isoformat()
    assert (default["won"]["deals"], default["lost"]["deals"], default["conversion_rate"]) == (0, 0, None)
    assert default["open_deals"] == everything["open_deals"] | {
        "average_age_days": default["open_deals"]["average_age_days"]
    }

    until_only = await call(client, "crm_summary", {"until": "2025-12-31"})
    assert until_only["period"] == {"name": "custom", "since": None, "until": "2025-12-31"}
    assert until_only["won"] == {"deals": 1, "value": {"EUR": "999.00"}}
    last_day = await call(client, "crm_summary", {"since": "2026-02-01", "until": "9999-12-31"})
    assert last_day["lost"] == {"deals": 1, "value": {"EUR": "50.00"}} and last_day["won"]["deals"] == 0


def test_periods_are_whole_utc_days():
    today = date(2026, 2, 14)
    expected = {
        "this_month": (date(2026, 2, 1), date(2026, 2, 28)),
        "last_month": (date(2026, 1, 1), date(2026, 1, 31)),
        "this_quarter": (date(2026, 1, 1), date(2026, 3, 31)),
        "last_quarter": (date(2025, 10, 1), date(2025, 12, 31)),
        "this_year": (date(2026, 1, 1), date(2026, 12, 31)),
        "last_year": (date(2025, 1, 1), date(2025, 12, 31)),
        "last_30_days": (date(2026, 1, 16), today),
        "last_90_days": (date(2025, 11, 17), today),
        "all_time": (None, None),
    }
    for name, (since, until) in expected.items():
        assert resolve_period(name, None, None, today) == Period(name, since, until), name
    assert resolve_period(None, None, None, date(2024, 12, 31)) == Period(
        "this_month", date(2024, 12, 1), date(2024, 12, 31)
    )
    assert resolve_period("last_month", None, None, date(2024, 3, 31)).until == date(2024, 2, 29)
    assert resolve_period("this_quarter", None, None, date(2026, 11, 26)) == Period(
        "this_quarter", date(2026, 10, 1), date(2026, 12, 31)
    )
    january = resolve_period(None, date(2026, 1, 1), date(2026, 1, 31), today)
    assert (january.start, january.end) == (datetime(2026, 1, 1, tzinfo=UTC), datetime(2026, 2, 1, tzinfo=UTC))
    assert resolve_period(None, date(2026, 1, 1), date.max, today).end is None


async def test_refusals_name_what_is_wrong(client, book, database_url):
    before = await snapshot(database_url)
    text = await fail(client, "crm_summary", {"pipeline_id": book["stage"]["Won"]})
    assert f"No pipeline with id '{book['stage']['Won']}'" in text and "pipelines_list" in text
    text = await fail(client, "crm_summary", {"owner_id": book["orgs"]["Acme"]})
    assert f"No user with id '{book['orgs']['Acme']}'" in text and "users_list" in text
    assert "since (2026-02-01) is after until (2026-01-31)" in await fail(
        client, "crm_summary", {"since": "2026-02-01", "until": "2026-01-31"}
    )
    assert "not both" in await fail(client, "crm_summary", {"period": "this_year", "since": "2026-01-01"})
    assert "this_quarter" in await fail(client, "crm_summary", {"period": "this_quater"})
    assert "until" in await fail(client, "crm_summary", {"until": "2026-13-01"})
    assert await snapshot(database_url) == before


async def test_an_empty_workspace_shows_its_pipeline_with_zeros(client):
    summary = await call(client, "crm_summary", {"period": "all_time"})
    assert summary["open_deals"] == {
        "deals": 0,
        "value": {},
        "weighted_value": {},
        "average_age_days": None,
        "average_days_in_stage": None,
        "without_next_activity": 0,
        "idle_past_stage_limit": 0,
    }
    assert [s["stage"] for s in summary["stages"]] == [
        "Qualified",
        "Contact made",
        "Proposal made",
        "Negotiation",
        "Won",
        "Lost",
    ]
    assert all(s["deals"] == 0 and s["value"] == {} for s in summary["stages"])
    assert (summary["won"]["deals"], summary["conversion_rate"], summary["top_organizations"]) == (0, None, {})
    assert (summary["overdue_tasks"], summary["overdue_activities"]) == (0, 0)


async def test_top_organizations_are_the_five_largest_in_each_currency(client):
    made = await call(client, "organizations_create_many", {"items": [{"name": f"Org {i}"} for i in range(1, 8)]})
    org = {item["name"]: item["id"] for item in made["items"]}
    deals = [
        {"name": f"Deal {i}", "value": str(100 * i), "currency": "EUR", "organization_ids": [org[f"Org {i}"]]}
        for i in range(1, 7)
    ]
    deals.append({"name": "Small", "value": "1", "currency": "USD", "organization_ids": [org["Org 7"]]})
    deals.append({"name": "Org 1 again", "value": "550", "currency": "EUR", "organization_ids": [org["Org 1"]]})
    await call(client, "deals_create_many", {"items": deals})
    top = (await call(client, "crm_summary", {}))["top_organizations"]
    assert [(o["name"], o["open_deals"], o["value"]) for o in top["EUR"]] == [
        ("Org 1", 2, "650.00"),
        ("Org 6", 1, "600.00"),
        ("Org 5", 1, "500.00"),
        ("Org 4", 1, "400.00"),
        ("Org 3", 1, "300.00"),
    ]
    assert top["USD"] == [{"id": org["Org 7"], "name": "Org 7", "open_deals": 1, "value": "1.00"}]
