"""Lead stages: every lead sits in one of the workspace's lead stages; moving it is an ordinary update that the
timeline, the audit log and webhooks see (on SQLite and PostgreSQL)."""

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import sqlalchemy as sa
from mcp import Client

from mcp_crm.catalog.server import build_server
from mcp_crm.store import Database, migrate
from mcp_crm.store.types import UTCDateTime
from tests.helpers import call, fail, snapshot
from tests.receiver import Receiver

pytestmark = pytest.mark.anyio

DEFAULTS = [
    ("New", 1, "open", "blue", 10),
    ("Contacted", 2, "open", "yellow", 20),
    ("Qualified", 3, "open", "green", 40),
    ("Unqualified", 4, "lost", "gray", 0),
    ("Converted", 5, "won", "teal", 100),
]


async def lead_stages(client: Client) -> dict[str, dict[str, Any]]:
    listed = await call(client, "lead_stages_list", {"sort": [{"field": "position"}]})
    return {s["name"]: s for s in listed["items"]}


async def timeline(client: Client, lead_id: str, **options: Any) -> list[dict[str, Any]]:
    page = await call(client, "timeline", {"record_type": "leads", "record_id": lead_id, **options})
    return page["items"]  # type: ignore[no-any-return]


@pytest.fixture
async def acme(client: Client) -> dict[str, Any]:
    return await call(client, "organizations_create", {"name": "Acme"})  # type: ignore[no-any-return]


async def lead(client: Client, acme: dict[str, Any], title: str, **fields: Any) -> dict[str, Any]:
    return await call(client, "leads_create", {"title": title, "organization_id": acme["id"], **fields})  # type: ignore[no-any-return]


async def test_a_new_workspace_has_the_default_lead_stages(client):
    stages = await lead_stages(client)
    assert [(s["name"], s["position"], s["kind"], s["color"], s["probability"]) for s in stages.values()] == DEFAULTS
    assert {s["lead_count"] for s in stages.values()} == {0}


async def test_a_new_lead_starts_in_the_first_open_stage(client, acme, database_url):
    stages = await lead_stages(client)
    first = await lead(client, acme, "Acme: 40 seats")
    assert first["stage_id"] == stages["New"]["id"] and first["stage_entered_at"]
    assert (await call(client, "leads_get", {"id": first["id"]}))["related"]["stage_id"] == {
        "id": stages["New"]["id"],
        "name": "New",
    }
    given = await lead(client, acme, "Acme: support", stage_id=stages["Qualified"]["id"])
    assert given["stage_id"] == stages["Qualified"]["id"]

    # the first open stage by position, wherever the lost one sits
    order = ["Unqualified", "Contacted", "New", "Qualified", "Converted"]
    await call(client, "lead_stages_reorder", {"stage_ids": [stages[n]["id"] for n in order]})
    assert (await lead(client, acme, "Acme: training"))["stage_id"] == stages["Contacted"]["id"]

    # no open stage left: refused, and nothing changes
    changes = [{"id": stages[n]["id"], "kind": "lost"} for n in ("New", "Contacted", "Qualified")]
    await call(client, "lead_stages_update_many", {"items": changes})
    before = await snapshot(database_url)
    error = await fail(client, "leads_create", {"title": "Nowhere", "organization_id": acme["id"]})
    assert "no open lead stage" in error and "lead_stages_create" in error
    assert await snapshot(database_url) == before


async def test_moving_a_lead_is_on_its_timeline_in_the_audit_log_and_sent_as_lead_moved(database_url):
    async with Client(build_server(database_url, allow_local_webhooks=True)) as client:
        stages = await lead_stages(client)
        acme = await call(client, "organizations_create", {"name": "Acme"})
        made = await lead(client, acme, "Acme: 40 seats")
        with Receiver() as receiver:
            await call(client, "webhooks_create", {"url": receiver.url, "events": ["lead.moved"]})
            moved = await call(client, "leads_move", {"id": made["id"], "stage_id": stages["Contacted"]["id"]})
            (sent,) = await receiver.until(1)
        assert moved["stage_id"] == stages["Contacted"]["id"] and moved["revision"] == made["revision"] + 1
        assert moved["stage_entered_at"] > made["stage_entered_at"]
        assert sent.payload["event"] == "lead.moved"
        assert sent.payload["data"]["changes"]["stage_id"] == {
            "previous": stages["New"]["id"],
            "current": stages["Contacted"]["id"],
        }

        # moving it where it is changes nothing
        again = await call(client, "leads_move", {"id": made["id"], "stage_id": stages["Contacted"]["id"]})
        assert again["revision"] == moved["revision"]

        move, created = await timeline(client, made["id"])
        assert (move["kind"], move["tool"], move["summary"]) == ("stage", "leads_move", "stage New -> Contacted")
        assert move["stage"] == {
            "old": {"id": stages["New"]["id"], "name": "New"},
            "new": {"id": stages["Contacted"]["id"], "name": "Contacted"},
        }
        assert "changes" not in move  # stage_entered_at moves with the stage
        assert created["summary"] == "lead 'Acme: 40 seats' created in stage New"

        log = await call(client, "audit_list", {"filter": {"field": "record_id", "op": "eq", "value": made["id"]}})
        (event,) = [e for e in log["items"] if e["action"] == "updated"]
        assert event["before"]["stage_id"] == stages["New"]["id"]
        assert event["after"]["stage_id"] == stages["Contacted"]["id"]

        before = await snapshot(database_url)
        nowhere = {"id": made["id"], "stage_id": "0192f1c4-0000-7000-8000-000000000000"}
        assert "lead_stages" in await fail(client, "leads_move", nowhere)
        assert await snapshot(database_url) == before


async def test_lead_stages_list_counts_the_leads_in_each_stage(client, acme):
    stages = await lead_stages(client)
    for title in ("A", "B"):
        await lead(client, acme, title)
    await lead(client, acme, "C", stage_id=stages["Qualified"]["id"])
    counted = await lead_stages(client)
    assert {n: s["lead_count"] for n, s in counted.items()} == {
        "New": 2,
        "Contacted": 0,
        "Qualified": 1,
        "Unqualified": 0,
        "Converted": 0,
    }
    only_names = await call(client, "lead_stages_list", {"fields": ["name"]})
    assert all("lead_count" not in s for s in only_names["items"])
    only_counts = await call(client, "lead_stages_list", {"fields": ["lead_count"], "limit": 1})
    assert only_counts["items"] == [{"id": stages["New"]["id"], "lead_count": 2}]
    config = await call(client, "lead_stages_config")
    (count,) = [f for f in config["fields"] if f["name"] == "lead_count"]
    assert count["read_only"] and not count["filterable"]


async def test_filters_take_the_stage_by_id_or_by_name(client, acme):
    stages = await lead_stages(client)
    new = await lead(client, acme, "Fresh")
    qualified = await lead(client, acme, "Ready", stage_id=stages["Qualified"]["id"])
    lost = await lead(client, acme, "Gone", stage_id=stages["Unqualified"]["id"])

    async def titles(condition: dict[str, Any]) -> list[str]:
        page = await call(client, "leads_list", {"filter": condition, "sort": [{"field": "title"}]})
        return [item["title"] for item in page["items"]]

    assert await titles({"field": "stage_id", "op": "eq", "value": "Qualified"}) == [qualified["title"]]
    assert await titles({"field": "stage_id", "op": "eq", "value": "qualified"}) == [qualified["title"]]
    assert await titles({"field": "stage_id", "op": "eq", "value": stages["Qualified"]["id"]}) == ["Ready"]
    assert await titles({"field": "stage_id", "op": "in", "value": ["New", stages["Unqualified"]["id"]]}) == [
        new["title"],
        lost["title"],
    ]
    assert await titles({"field": "stage_id", "op": "ne", "value": "New"}) == ["Gone", "Ready"]
    assert await titles({"and": [{"not": {"field": "stage_id", "op": "not_in", "value": ["Unqualified"]}}]}) == ["Gone"]

    error = await fail(client, "leads_list", {"filter": {"field": "stage_id", "op": "eq", "value": "Qualifed"}})
    assert "'Qualifed'" in error and "Did you mean 'Qualified'?" in error
    assert "New, Contacted, Qualified, Unqualified" in error


async def test_a_stage_that_has_leads_is_not_deleted(client, acme, database_url):
    stages = await lead_stages(client)
    made = [await lead(client, acme, title, stage_id=stages["Contacted"]["id"]) for title in ("A", "B")]
    before = await snapshot(database_url)
    error = await fail(client, "lead_stages_delete", {"id": stages["Contacted"]["id"]})
    assert "still has 2 leads" in error and "move or delete those first" in error
    assert await snapshot(database_url) == before

    for item in made:
        await call(client, "leads_move", {"id": item["id"], "stage_id": stages["Qualified"]["id"]})
    await call(client, "lead_stages_delete", {"id": stages["Contacted"]["id"]})
    assert list(await lead_stages(client)) == ["New", "Qualified", "Unqualified", "Converted"]


async def test_a_lead_restored_after_its_stage_was_deleted_enters_the_first_open_stage(client, acme):
    stages = await lead_stages(client)
    contacted = stages["Contacted"]["id"]
    made = await lead(client, acme, "Acme: 40 seats", stage_id=contacted)
    await call(client, "leads_delete", {"id": made["id"]})
    await call(client, "lead_stages_delete", {"id": contacted})

    restored = await call(client, "leads_restore", {"ids": [made["id"]]})
    assert restored["notes"] == [
        f"lead {made['id']}: stage_id set to {stages['New']['id']}, lead stage {contacted} is deleted."
    ]
    back = await call(client, "leads_get", {"id": made["id"]})
    assert back["stage_id"] == stages["New"]["id"] and back["stage_entered_at"] > made["stage_entered_at"]
    assert (await lead_stages(client))["New"]["lead_count"] == 1

    # restoring the stage leaves the lead where it is now
    await call(client, "lead_stages_restore", {"ids": [contacted]})
    assert (await call(client, "leads_get", {"id": made["id"]}))["stage_id"] == stages["New"]["id"]


async def test_lead_stages_reorder_takes_exactly_the_workspaces_lead_stages(client, database_url):
    stages = await lead_stages(client)
    ids = [s["id"] for s in stages.values()]
    reordered = await call(client, "lead_stages_reorder", {"stage_ids": ids[::-1]})
    assert reordered["count"] == 5
    assert list(await lead_stages(client)) == list(stages)[::-1]

    pipeline_stage = (await call(client, "stages_list", {"limit": 1}))["items"][0]
    before = await snapshot(database_url)
    error = await fail(client, "lead_stages_reorder", {"stage_ids": [*ids[:4], pipeline_stage["id"]]})
    assert f"missing: {ids[4]}" in error and f"not lead stages of this workspace: {pipeline_stage['id']}" in error
    assert "exactly once" in await fail(client, "lead_stages_reorder", {"stage_ids": ids + ids[:1]})
    assert await snapshot(database_url) == before


async def test_an_activity_logged_on_a_lead_is_on_its_timeline(client, acme):
    made = await lead(client, acme, "Acme: 40 seats")
    logged = await call(
        client,
        "activities_create",
        {"type": "call", "subject": "First call", "lead_id": made["id"], "done": True, "note": "Wants a demo."},
    )
    assert logged["lead_id"] == made["id"]
    on_lead = await call(client, "activities_list", {"filter": {"field": "lead_id", "op": "eq", "value": made["id"]}})
    assert [a["id"] for a in on_lead["items"]] == [logged["id"]]

    (entry,) = await timeline(client, made["id"], kinds=["activity"])
    assert entry["summary"] == "Call 'First call' logged"
    assert entry["record"] == {"type": "activities", "id": logged["id"], "title": "First call"}
    assert entry["body"] == "Wants a demo."


# --- the migration: workspaces made before lead stages get them, and their leads go to New ------------------

WORKSPACES = sa.table(
    "workspaces", *(sa.column(c, sa.String) for c in ("id", "slug", "name")), sa.column("created_at", UTCDateTime)
)
LEADS = sa.table(
    "leads",
    *(sa.column(c, sa.String) for c in ("id", "workspace_id", "title", "currency")),
    sa.column("labels", sa.JSON),
    sa.column("archived", sa.Boolean),
    *(sa.column(c, UTCDateTime) for c in ("created_at", "updated_at")),
)
MADE = datetime(2026, 3, 1, 9, 30, tzinfo=UTC)
STAGES = sa.table(
    "lead_stages",
    *(sa.column(c, sa.String) for c in ("id", "workspace_id", "name", "kind", "color")),
    *(sa.column(c, sa.Integer) for c in ("position", "revision")),
    *(sa.column(c, UTCDateTime) for c in ("created_at", "updated_at")),
)


def _workspaces_with_leads(conn: sa.Connection) -> None:
    """As a database at revision 0016 had them: the local workspace with two leads, another with one."""
    workspaces = [("w-local", "local", "Local"), ("w-other", "other", "Other")]
    conn.execute(sa.insert(WORKSPACES), [{"id": i, "slug": s, "name": n, "created_at": MADE} for i, s, n in workspaces])
    leads = [("l-1", "w-local"), ("l-2", "w-local"), ("l-3", "w-other")]
    conn.execute(
        sa.insert(LEADS),
        [
            {
                "id": lead_id,
                "workspace_id": workspace_id,
                "title": f"Lead {lead_id}",
                "currency": "EUR",
                "labels": [],
                "archived": False,
                "created_at": MADE + timedelta(days=n),
                "updated_at": MADE + timedelta(days=n),
            }
            for n, (lead_id, workspace_id) in enumerate(leads)
        ],
    )


def _placed(conn: sa.Connection) -> dict[str, tuple[str, str, datetime]]:
    """{lead id: (its workspace, its stage's name, when it entered it)}."""
    leads = sa.table(
        "leads", *(sa.column(c) for c in ("id", "workspace_id", "stage_id")), sa.column("stage_entered_at", UTCDateTime)
    )
    stages = sa.table("lead_stages", *(sa.column(c) for c in ("id", "workspace_id", "name")))
    query = sa.select(leads.c.id, leads.c.workspace_id, stages.c.name, leads.c.stage_entered_at).join_from(
        leads, stages, sa.and_(stages.c.id == leads.c.stage_id, stages.c.workspace_id == leads.c.workspace_id)
    )
    return {lead_id: (workspace_id, name, at) for lead_id, workspace_id, name, at in conn.execute(query)}


async def test_the_migration_gives_old_workspaces_the_stages_and_puts_their_leads_in_new(empty_database_url):
    from alembic import command

    from mcp_crm.store.migrate import alembic_config

    db = Database(empty_database_url)
    try:
        await db.write(lambda conn: command.upgrade(alembic_config(conn), "0016"))
        await db.write(_workspaces_with_leads)
        await migrate(db)
        placed = await db.read(_placed)
        per_workspace = await db.read(
            lambda conn: conn.execute(
                sa.text("SELECT workspace_id, name, position, kind FROM lead_stages ORDER BY workspace_id, position")
            ).all()
        )
    finally:
        await db.dispose()
    assert placed == {
        "l-1": ("w-local", "New", MADE),
        "l-2": ("w-local", "New", MADE + timedelta(days=1)),
        "l-3": ("w-other", "New", MADE + timedelta(days=2)),
    }
    for workspace in ("w-local", "w-other"):
        assert [(n, p, k) for w, n, p, k in per_workspace if w == workspace] == [d[:3] for d in DEFAULTS]

    async with Client(build_server(empty_database_url)) as client:
        stages = await lead_stages(client)
        assert [s["name"] for s in stages.values()] == [d[0] for d in DEFAULTS]  # not seeded a second time
        assert stages["New"]["lead_count"] == 2
        moved = await call(client, "leads_move", {"id": "l-1", "stage_id": stages["Qualified"]["id"]})
        assert moved["stage_id"] == stages["Qualified"]["id"]


async def test_converting_a_lead_moves_it_to_the_won_stage_converted_of_a_new_workspace(client, acme):
    stages = await lead_stages(client)
    made = await lead(client, acme, "Acme: rollout", stage_id=stages["Qualified"]["id"])
    converted = await call(client, "leads_convert", {"id": made["id"]})
    assert converted["lead"]["stage_id"] == stages["Converted"]["id"] and converted["lead"]["archived"] is True
    assert (await lead_stages(client))["Converted"]["lead_count"] == 1
    (move,) = await timeline(client, made["id"], kinds=["stage"])
    assert move["summary"].startswith("stage Qualified -> Converted;")

    # a workspace without a won lead stage: the converted lead stays where it was
    await call(client, "lead_stages_update", {"id": stages["Converted"]["id"], "kind": "lost"})
    kept = await lead(client, acme, "Acme: pilot", stage_id=stages["Contacted"]["id"])
    converted = await call(client, "leads_convert", {"id": kept["id"]})
    assert converted["lead"]["stage_id"] == stages["Contacted"]["id"]


def _stages_at_0019(conn: sa.Connection) -> None:
    """Workspaces as a database at revision 0019 could hold them: the defaults of then (no won stage), its own won
    stage, an open stage named Converted, and stages up to the last position."""
    conn.execute(
        sa.insert(WORKSPACES),
        [{"id": i, "slug": i, "name": i, "created_at": MADE} for i in ("w-plain", "w-won", "w-named", "w-full")],
    )
    given = {
        "w-plain": [("New", 1, "open"), ("Contacted", 2, "open"), ("Qualified", 3, "open"), ("Unqualified", 4, "lost")],
        "w-won": [("New", 1, "open"), ("Signed", 2, "won")],
        "w-named": [("New", 1, "open"), ("Converted", 2, "open")],
        "w-full": [("New", 1, "open"), ("Last", 1000, "lost")],
    }
    conn.execute(
        sa.insert(STAGES),
        [
            {"id": f"{workspace}-{position}", "workspace_id": workspace, "name": name, "position": position}
            | {"kind": kind, "color": "gray", "revision": 1, "created_at": MADE, "updated_at": MADE}
            for workspace, stages in given.items()
            for name, position, kind in stages
        ],
    )


async def test_the_migration_gives_workspaces_without_a_won_lead_stage_converted(empty_database_url):
    from alembic import command

    from mcp_crm.store.migrate import alembic_config

    db = Database(empty_database_url)
    try:
        await db.write(lambda conn: command.upgrade(alembic_config(conn), "0019"))
        await db.write(_stages_at_0019)
        await migrate(db)
        rows = await db.read(
            lambda conn: conn.execute(
                sa.select(STAGES.c.workspace_id, STAGES.c.name, STAGES.c.position, STAGES.c.kind, STAGES.c.color)
                .where(STAGES.c.name == "Converted")
                .order_by(STAGES.c.workspace_id)
            ).all()
        )
    finally:
        await db.dispose()
    assert [tuple(row) for row in rows] == [
        ("w-full", "Converted", 1000, "won", "teal"),
        ("w-named", "Converted", 2, "open", "gray"),  # its own stage of that name, left as it was
        ("w-plain", "Converted", 5, "won", "teal"),
    ]
