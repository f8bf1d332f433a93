"""Pipelines and stages: every deal sits in a stage of its pipeline, and moving it follows the stage."""

import pytest

from tests.helpers import call, fail, snapshot

pytestmark = pytest.mark.anyio


async def stages_of(client, pipeline_id: str) -> dict[str, dict]:
    listed = await call(
        client,
        "stages_list",
        {"filter": {"field": "pipeline_id", "op": "eq", "value": pipeline_id}, "sort": [{"field": "position"}]},
    )
    return {s["name"]: s for s in listed["items"]}


@pytest.fixture
async def sales(client) -> tuple[dict, dict[str, dict]]:
    (pipeline,) = (await call(client, "pipelines_list", {}))["items"]
    return pipeline, await stages_of(client, pipeline["id"])


async def test_a_new_workspace_has_a_default_pipeline(client, sales):
    pipeline, stages = sales
    assert pipeline["name"] == "Sales" and pipeline["is_default"] is True
    assert [(s["name"], s["position"], s["kind"], s["probability"]) for s in stages.values()] == [
        ("Qualified", 1, "open", 10),
        ("Contact made", 2, "open", 20),
        ("Proposal made", 3, "open", 50),
        ("Negotiation", 4, "open", 80),
        ("Won", 5, "won", 100),
        ("Lost", 6, "lost", 0),
    ]


async def test_a_deal_starts_in_the_first_open_stage_and_follows_each_move(client, sales, database_url):
    pipeline, stages = sales
    deal = await call(client, "deals_create", {"name": "Acme rollout", "value": "12000"})
    assert (deal["pipeline_id"], deal["stage_id"], deal["probability"]) == (
        pipeline["id"],
        stages["Qualified"]["id"],
        10,
    )
    assert deal["stage_entered_at"] and deal["status"] == "open"

    moved = await call(client, "deals_move", {"id": deal["id"], "stage_id": stages["Proposal made"]["id"]})
    assert (moved["stage_id"], moved["probability"], moved["status"]) == (stages["Proposal made"]["id"], 50, "open")
    assert moved["stage_entered_at"] > deal["stage_entered_at"]

    won = await call(client, "deals_move", {"id": deal["id"], "stage_id": stages["Won"]["id"]})
    assert (won["status"], won["probability"]) == ("won", 100) and won["won_at"]

    before = await snapshot(database_url)
    error = await fail(client, "deals_move", {"id": deal["id"], "stage_id": stages["Lost"]["id"]})
    assert "lost_reason" in error and "needs lost_reason" in error
    assert await snapshot(database_url) == before
    lost = await call(
        client, "deals_move", {"id": deal["id"], "stage_id": stages["Lost"]["id"], "lost_reason": "Budget cut"}
    )
    assert (lost["status"], lost["won_at"], lost["lost_reason"]) == ("lost", None, "Budget cut") and lost["lost_at"]

    reopened = await call(client, "deals_move", {"id": deal["id"], "stage_id": stages["Negotiation"]["id"]})
    assert (reopened["status"], reopened["lost_at"], reopened["lost_reason"]) == ("open", None, None)

    log = await call(client, "audit_list", {"filter": {"field": "record_id", "op": "eq", "value": deal["id"]}})
    moves = [e for e in log["items"] if e["action"] == "updated"]
    assert [m["after"]["stage_id"] for m in reversed(moves)] == [
        stages[name]["id"] for name in ("Proposal made", "Won", "Lost", "Negotiation")
    ]


async def test_a_stage_of_another_pipeline_moves_the_deal_there_but_must_match_a_given_pipeline(
    client, sales, database_url
):
    pipeline, stages = sales
    renewals = await call(client, "pipelines_create", {"name": "Renewals"})
    due = await call(client, "stages_create", {"pipeline_id": renewals["id"], "name": "Due", "probability": 70})
    deal = await call(client, "deals_create", {"name": "Globex renewal", "pipeline_id": renewals["id"]})
    assert (deal["stage_id"], deal["probability"]) == (due["id"], 70)

    before = await snapshot(database_url)
    error = await fail(
        client, "deals_update", {"id": deal["id"], "pipeline_id": renewals["id"], "stage_id": stages["Won"]["id"]}
    )
    assert f"belongs to pipeline {pipeline['id']}, not {renewals['id']}" in error
    assert await snapshot(database_url) == before

    moved = await call(client, "deals_move", {"id": deal["id"], "stage_id": stages["Contact made"]["id"]})
    assert moved["pipeline_id"] == pipeline["id"]


async def test_a_pipeline_without_an_open_stage_cannot_take_new_deals(client, database_url):
    empty = await call(client, "pipelines_create", {"name": "Empty"})
    before = await snapshot(database_url)
    error = await fail(client, "deals_create", {"name": "Nowhere", "pipeline_id": empty["id"]})
    assert "has no open stage" in error
    assert await snapshot(database_url) == before


async def test_an_occupied_stage_and_a_pipeline_with_stages_are_not_deleted(client, sales, database_url):
    pipeline, stages = sales
    deals = await call(client, "deals_create_many", {"items": [{"name": f"D{i}"} for i in range(3)]})
    before = await snapshot(database_url)
    error = await fail(client, "stages_delete", {"id": stages["Qualified"]["id"]})
    assert "still has 3 deals" in error and "move or delete those first" in error
    assert "still has 6 stages" in await fail(client, "pipelines_delete", {"id": pipeline["id"]})
    assert await snapshot(database_url) == before

    for item in deals["items"]:
        await call(client, "deals_move", {"id": item["id"], "stage_id": stages["Contact made"]["id"]})
    await call(client, "stages_delete", {"id": stages["Qualified"]["id"]})
    assert "Qualified" not in await stages_of(client, pipeline["id"])


async def test_stages_reorder_takes_exactly_the_pipelines_stages(client, sales, database_url):
    pipeline, stages = sales
    ids = [s["id"] for s in stages.values()]
    reordered = await call(client, "stages_reorder", {"pipeline_id": pipeline["id"], "stage_ids": ids[::-1]})
    assert reordered["count"] == 6
    assert list(await stages_of(client, pipeline["id"])) == list(stages)[::-1]

    other = await call(client, "pipelines_create", {"name": "Other"})
    stray = await call(client, "stages_create", {"pipeline_id": other["id"], "name": "Stray"})
    before = await snapshot(database_url)
    error = await fail(client, "stages_reorder", {"pipeline_id": pipeline["id"], "stage_ids": [*ids[:5], stray["id"]]})
    assert f"missing: {ids[5]}" in error and f"not stages of this pipeline: {stray['id']}" in error
    assert "exactly once" in await fail(
        client, "stages_reorder", {"pipeline_id": pipeline["id"], "stage_ids": ids + ids[:1]}
    )
    assert await snapshot(database_url) == before


async def test_only_one_pipeline_is_the_default_and_one_call_can_move_it(client, sales, database_url):
    pipeline, _ = sales
    renewals = await call(client, "pipelines_create", {"name": "Renewals"})
    before = await snapshot(database_url)
    error = await fail(client, "pipelines_update", {"id": renewals["id"], "is_default": True})
    assert "only one pipeline is the default, and 'Sales' is" in error
    assert "only one pipeline is the default" in await fail(
        client, "pipelines_create", {"name": "Another", "is_default": True}
    )
    assert await snapshot(database_url) == before
    moved = {"items": [{"id": pipeline["id"], "is_default": False}, {"id": renewals["id"], "is_default": True}]}
    await call(client, "pipelines_update_many", moved)
    (default,) = (await call(client, "pipelines_list", {"filter": {"field": "is_default", "op": "eq", "value": True}}))[
        "items"
    ]
    assert default["id"] == renewals["id"]
    due = await call(client, "stages_create", {"pipeline_id": renewals["id"], "name": "Due"})
    new_deal = await call(client, "deals_create", {"name": "Lands in Renewals"})
    assert (new_deal["pipeline_id"], new_deal["stage_id"]) == (renewals["id"], due["id"])
