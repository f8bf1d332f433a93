"""Webhooks end to end against a real receiver on 127.0.0.1, on SQLite and PostgreSQL: every event type arrives
signed with the documented payload; a failing receiver gets retries with growing delays (a stepped clock, no
sleeps); resend; nothing for rolled-back writes; targets that must be refused; two dispatchers on one database."""

from __future__ import annotations

import itertools
import logging
import random
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import anyio
import pytest
from mcp import Client
from sqlalchemy import select
from standardwebhooks.webhooks import Webhook as Verifier
from typer.testing import CliRunner

from mcp_crm.catalog.server import build_server
from mcp_crm.catalog.workspace_tools import all_tools
from mcp_crm.cli import app
from mcp_crm.entities import ENTITIES
from mcp_crm.entities.models import create_model_for
from mcp_crm.operations import Actor, Crm
from mcp_crm.operations.workspace import local_actor
from mcp_crm.store import Database
from mcp_crm.store.tables import CHANGE_EVENTS, DELIVERIES, WEBHOOKS
from mcp_crm.webhooks import dispatcher as dispatching
from mcp_crm.webhooks import targets
from mcp_crm.webhooks.dispatcher import Dispatcher
from tests.helpers import call, fail, snapshot
from tests.receiver import Received, Receiver

pytestmark = pytest.mark.anyio
CONTACTS = ENTITIES["contacts"]
runner = CliRunner(env={"COLUMNS": "300"})


def verified(request: Received, secret: str) -> dict[str, Any]:
    """The payload, once the reference Standard Webhooks library accepts its signature."""
    return Verifier(secret).verify(request.body, request.headers)  # type: ignore[no-any-return]


async def settled(client: Client, webhook_id: str) -> dict[str, Any]:
    """The subscription once the worker has recorded how its deliveries went (it answers after the receiver)."""
    with anyio.fail_after(10):
        while True:
            detail = await call(client, "webhooks_get", {"webhook_id": webhook_id})
            if detail["deliveries"]["pending"] + detail["deliveries"]["sending"] == 0:
                return detail  # type: ignore[no-any-return]
            await anyio.sleep(0.02)


@pytest.fixture
async def local_client(database_url: str) -> AsyncIterator[Client]:
    async with Client(build_server(database_url, allow_local_webhooks=True)) as connected:
        yield connected


async def test_every_event_arrives_signed_with_the_documented_payload(local_client: Client) -> None:
    client = local_client
    with Receiver() as receiver:
        hook = await call(client, "webhooks_create", {"url": receiver.url, "events": ["*"], "description": "all"})
        secret = hook["secret"]
        assert secret.startswith("whsec_")

        acme = await call(client, "organizations_create", {"name": "Acme"})
        ada = await call(client, "contacts_create", {"first_name": "Ada", "last_name": "L", "job_title": "CTO"})
        await call(client, "contacts_update", {"id": ada["id"], "job_title": "CEO", "last_name": "Lovelace"})
        lead = await call(client, "leads_create", {"title": "Acme expansion", "organization_id": acme["id"]})
        converted = await call(client, "leads_convert", {"id": lead["id"]})
        deal = converted["deal"]
        stages = (await call(client, "stages_list", {"sort": [{"field": "position", "direction": "asc"}]}))["items"]
        other = next(s for s in stages if s["pipeline_id"] == deal["pipeline_id"] and s["id"] != deal["stage_id"])
        await call(client, "deals_move", {"id": deal["id"], "stage_id": other["id"]})
        await call(client, "tasks_create", {"name": "Call Ada", "contact_id": ada["id"]})
        await call(
            client, "notes_create", {"body": "Met at the fair", "record_type": "contacts", "record_id": ada["id"]}
        )
        await call(client, "contacts_delete", {"id": ada["id"]})
        await call(client, "contacts_restore", {"ids": [ada["id"]]})

        changes = (await call(client, "audit_list", {"limit": 100}))["items"][::-1]
        since = [c["record_id"] for c in changes].index(hook["id"]) + 1  # what was seeded before is not sent
        expected = [f"{ENTITIES[c['entity']].singular.replace(' ', '_')}.{c['action']}" for c in changes[since:]]
        moved = expected.index("deal.updated", expected.index("deal.created") + 1)
        expected.insert(moved + 1, "deal.moved")
        converted_at = expected.index("lead.updated") + 1  # converting also moves the lead to the stage Converted
        expected[converted_at:converted_at] = ["lead.moved", "lead.converted"]
        got = await receiver.until(len(expected))

    payloads = [verified(r, secret) for r in got]
    assert [p["event"] for p in payloads] == expected  # every event, in commit order
    assert {"contact.created", "contact.updated", "contact.deleted", "contact.restored", "organization.created"} <= {
        p["event"] for p in payloads
    }
    for request, payload in zip(got, payloads, strict=True):
        assert request.headers["webhook-id"] == payload["id"]
        assert set(payload) == {"id", "event", "occurred_at", "workspace_id", "actor", "data"}
        assert payload["actor"]["via"] == "stdio" and payload["actor"]["user_id"]
        assert payload["actor"]["tool"]
    update = next(p for p in payloads if p["event"] == "contact.updated")
    assert update["data"]["changes"] == {
        "job_title": {"previous": "CTO", "current": "CEO"},
        "last_name": {"previous": "L", "current": "Lovelace"},
    }
    assert update["data"]["record"]["job_title"] == "CEO"
    assert update["actor"]["tool"] == "contacts_update"
    deleted = next(p for p in payloads if p["event"] == "contact.deleted")
    assert deleted["data"]["record"]["id"] == ada["id"] and "changes" not in deleted["data"]
    move = next(p for p in payloads if p["event"] == "deal.moved")
    assert move["data"]["changes"]["stage_id"] == {"previous": deal["stage_id"], "current": other["id"]}
    conversion = next(p for p in payloads if p["event"] == "lead.converted")
    assert conversion["data"]["record"]["converted_deal_id"] == deal["id"]
    assert len({p["id"] for p in payloads}) == len(payloads)


async def test_the_secret_is_returned_once_and_never_after(
    local_client: Client, database_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    client = local_client
    with Receiver() as receiver:
        hook = await call(client, "webhooks_create", {"url": receiver.url, "events": ["contact.created"]})
        secret = hook["secret"]
        shown = [
            await call(client, "webhooks_list"),
            await call(client, "webhooks_get", {"webhook_id": hook["id"]}),
            await call(client, "webhooks_update", {"webhook_id": hook["id"], "description": "CRM to n8n"}),
            await call(client, "audit_list", {"limit": 50}),
        ]
        assert all(secret not in repr(result) for result in shown)
        rotated = await call(client, "webhooks_rotate_secret", {"webhook_id": hook["id"]})
        assert rotated["secret"] != secret and rotated["secret"].startswith("whsec_")
        assert rotated["secret"] not in repr(await call(client, "audit_list", {"limit": 50}))

        await call(client, "contacts_create", {"first_name": "Grace", "last_name": "Hopper"})
        (request,) = await receiver.until(1)
    # for a day after a rotation both secrets sign, so a receiver with either accepts the event
    assert len(request.headers["webhook-signature"].split(" ")) == 2
    assert verified(request, secret)["event"] == verified(request, rotated["secret"])["event"] == "contact.created"
    db = Database(database_url)
    try:
        events = await db.read(lambda c: c.execute(select(CHANGE_EVENTS.c.before, CHANGE_EVENTS.c.after)).all())
    finally:
        await db.dispose()
    assert secret not in repr(events) and rotated["secret"] not in repr(events)
    assert caplog.records and secret not in caplog.text and rotated["secret"] not in caplog.text


async def test_ping_reports_the_answer_and_is_logged(local_client: Client) -> None:
    client = local_client
    with Receiver(lambda r: (418, {})) as receiver:
        hook = await call(client, "webhooks_create", {"url": receiver.url, "events": ["deal.*"]})
        result = await call(client, "webhooks_test", {"webhook_id": hook["id"]})
        (request,) = receiver.received
    assert result["delivered"] is False and result["status_code"] == 418 and result["response"] == "ok"
    payload = verified(request, hook["secret"])
    assert payload["event"] == "ping" and payload["data"]["webhook_id"] == hook["id"]
    (logged,) = (await call(client, "webhook_deliveries_list", {"webhook_id": hook["id"]}))["items"]
    assert logged["id"] == result["delivery_id"] == request.message_id
    assert logged["status"] == "failed" and logged["attempt_log"][0]["status_code"] == 418


async def test_bad_subscriptions_are_refused_and_change_nothing(database_url: str) -> None:
    async with Client(build_server(database_url)) as client:  # the default: public https targets only
        before = await snapshot(database_url)
        cases = {
            "https://127.0.0.1/hook": "loopback",
            "https://10.1.2.3/hook": "private",
            "https://169.254.169.254/latest/meta-data/": "link-local",
            "https://[::1]/hook": "loopback",
            "https://metadata.google.internal/computeMetadata/v1/": "metadata",
            "http://93.184.215.14/hook": "https",
            "ftp://example.com/": "https",
        }
        for url, reason in cases.items():
            message = await fail(client, "webhooks_create", {"url": url, "events": ["*"]})
            assert reason in message, (url, message)
        message = await fail(
            client, "webhooks_create", {"url": "https://93.184.215.14/", "events": ["contact.craeted"]}
        )
        assert "contact.created" in message
        assert await snapshot(database_url) == before


# --- the dispatcher, driven step by step --------------------------------------------------------------------


class Clock:
    def __init__(self) -> None:
        self.now = datetime.now(UTC)

    def __call__(self) -> datetime:
        return self.now


async def _setup(
    database_url: str, url: str, events: list[str] | None = None
) -> tuple[Database, Crm, Actor, dict[str, Any]]:
    db = Database(database_url)
    crm = Crm(db, allow_local_webhooks=True)
    actor = (await local_actor(db, via="stdio")).using("contacts_create")
    hook = await crm.webhooks_create(actor, url, events or ["contact.*"])
    return db, crm, actor, hook


async def _contacts(crm: Crm, actor: Actor, *names: str) -> list[dict[str, Any]]:
    model = create_model_for(CONTACTS)
    return await crm.create_many(actor, CONTACTS, [model(first_name=name, last_name="X") for name in names])


async def _deliveries(db: Database) -> list[dict[str, Any]]:
    rows = await db.read(lambda c: c.execute(select(DELIVERIES).order_by(DELIVERIES.c.sequence)).mappings().all())
    return [dict(row) for row in rows]


async def test_a_failing_receiver_gets_retries_with_growing_delays(database_url: str) -> None:
    with Receiver(lambda r: (503, {})) as receiver:
        db, crm, actor, hook = await _setup(database_url, receiver.url)
        try:
            await _contacts(crm, actor, "Ada", "Grace")
            clock = Clock()
            dispatcher = Dispatcher(db, allow_local=True, clock=clock, rng=random.Random(7))
            waits = []
            for attempt in range(1, dispatching.MAX_ATTEMPTS + 1):
                assert await dispatcher.run_once() == 1  # only the first in line; the second waits behind it
                first, second = await _deliveries(db)
                assert first["attempts"] == attempt and second["attempts"] == 0
                if attempt < dispatching.MAX_ATTEMPTS:
                    assert first["status"] == "pending"
                    waits.append(first["next_attempt_at"] - clock.now)
                    assert await dispatcher.run_once() == 0  # not due yet: nothing is sent early
                    clock.now = first["next_attempt_at"]
            assert first["status"] == "failed" and first["last_status_code"] == 503
            for wait, planned in zip(waits, dispatching.RETRY_AFTER, strict=True):
                assert planned * (1 - dispatching.JITTER) <= wait <= planned * (1 + dispatching.JITTER)
            assert all(a < b for a, b in itertools.pairwise(waits[:6]))  # growing (the last two are both 10 h)
            assert {r.message_id for r in receiver.received} == {first["id"]}
            assert len(receiver.received) == dispatching.MAX_ATTEMPTS

            log, _ = await crm.webhook_deliveries(actor, hook["id"], "failed", 10, None)
            assert [a["attempt"] for a in log[0]["attempt_log"]] == list(range(1, dispatching.MAX_ATTEMPTS + 1))
            assert all(a["status_code"] == 503 and a["error"] == "answered 503" for a in log[0]["attempt_log"])

            # the failed one no longer holds the line: the next goes now; then a resend sends the first again
            receiver.answer = lambda r: (204, {})
            assert await dispatcher.run_once() == 1
            assert receiver.received[-1].message_id == second["id"]
            body = receiver.received[0].body
            # a resend gets the whole retry schedule again, not one last try
            receiver.answer = lambda r: (503, {})
            await crm.webhook_deliveries_resend(actor, [first["id"]])
            assert await dispatcher.run_once() == 1
            (resent,) = [d for d in await _deliveries(db) if d["id"] == first["id"]]
            assert resent["status"] == "pending" and resent["attempts"] == dispatching.MAX_ATTEMPTS + 1
            wait = resent["next_attempt_at"] - clock.now
            assert dispatching.RETRY_AFTER[0] * 0.9 <= wait <= dispatching.RETRY_AFTER[0] * 1.1
            receiver.answer = lambda r: (204, {})
            clock.now = resent["next_attempt_at"]
            assert await dispatcher.run_once() == 1
            assert receiver.received[-1].message_id == first["id"] and receiver.received[-1].body == body
            assert {d["status"] for d in await _deliveries(db)} == {"succeeded"}
        finally:
            await db.dispose()


async def test_only_writes_that_queued_deliveries_wake_the_dispatcher(database_url: str) -> None:
    """A workspace without a subscription that wants a write's events costs the dispatcher nothing after it."""
    with Receiver() as receiver:
        db, crm, actor, hook = await _setup(database_url, receiver.url, ["contact.*"])
        woken: list[str] = []
        crm.on_queued.append(lambda: woken.append("woken"))
        try:
            await _contacts(crm, actor, "Ada")
            assert woken == ["woken"]
            organizations = ENTITIES["organizations"]
            await crm.create(actor, organizations, create_model_for(organizations)(name="Acme"))  # not wanted
            await crm.webhooks_update(actor, hook["id"], {"active": False})
            await _contacts(crm, actor, "Grace")
            assert woken == ["woken"]
        finally:
            await db.dispose()


async def test_a_subscription_failing_for_days_is_turned_off(database_url: str) -> None:
    with Receiver(lambda r: (500, {})) as receiver:
        db, crm, actor, hook = await _setup(database_url, receiver.url)
        try:
            await _contacts(crm, actor, *(f"C{n}" for n in range(5)))
            clock = Clock()
            dispatcher = Dispatcher(db, allow_local=True, clock=clock, rng=random.Random(1))
            start = clock.now
            while (await crm.webhooks_get(actor, hook["id"]))["active"]:
                await dispatcher.run_once()
                head = next(d for d in await _deliveries(db) if d["status"] == "pending")
                clock.now = max(clock.now, head["next_attempt_at"])
            stopped = await crm.webhooks_get(actor, hook["id"])
            assert clock.now - start >= dispatching.DISABLE_AFTER
            assert "failed" in stopped["disabled_reason"] and stopped["failing_since"] is not None
            sent = len(receiver.received)
            clock.now += timedelta(days=2)
            assert await dispatcher.run_once() == 0 and len(receiver.received) == sent  # off: nothing more

            # while it is off for failing, events still queue for it, and turning it on sends them at once
            await _contacts(crm, actor, "While off")
            assert (await crm.webhooks_get(actor, hook["id"]))["deliveries"]["queued"] == 1
            receiver.answer = lambda r: (200, {})
            await crm.webhooks_update(actor, hook["id"], {"active": True})
            assert all(
                d["next_attempt_at"] <= datetime.now(UTC) for d in await _deliveries(db) if d["status"] == "pending"
            )
            while await dispatcher.run_once():
                pass
            statuses = [d["status"] for d in await _deliveries(db)]
            assert "pending" not in statuses and statuses.count("succeeded") >= 1
            assert receiver.received[-1].payload["data"]["record"]["first_name"] == "While off"
            assert (await crm.webhooks_get(actor, hook["id"]))["failing_since"] is None
        finally:
            await db.dispose()


async def test_a_rolled_back_bulk_call_emits_nothing(local_client: Client, database_url: str) -> None:
    client = local_client
    with Receiver() as receiver:
        await call(client, "webhooks_create", {"url": receiver.url, "events": ["*"]})
        await fail(
            client,
            "contacts_create_many",
            {
                "items": [
                    {"first_name": "Ada", "last_name": "L"},
                    {"first_name": "Grace", "last_name": "H", "owner_id": "00000000-0000-7000-8000-000000000000"},
                ]
            },
        )
        await call(
            client, "contacts_create_many", {"items": [{"first_name": "Ada", "last_name": "L"}], "dry_run": True}
        )
        await call(client, "organizations_create", {"name": "After"})  # a committed write, to know the line moved
        (request,) = await receiver.until(1)
    assert request.payload["event"] == "organization.created"
    db = Database(database_url)
    try:
        assert [d["event"] for d in await _deliveries(db)] == ["organization.created"]
    finally:
        await db.dispose()


async def test_a_host_that_turns_private_after_subscribing_is_refused_at_send_time(
    database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    answers = {"hooks.example.com": ["93.184.215.14"]}  # public when the subscription is made

    async def dns(host: str, port: int) -> list[str]:
        return answers[host]

    monkeypatch.setattr(targets, "_addresses", dns)
    db = Database(database_url)
    try:
        crm = Crm(db)
        actor = (await local_actor(db, via="stdio")).using("webhooks_create")
        await crm.webhooks_create(actor, "https://hooks.example.com/crm", ["contact.created"])
        await _contacts(crm, actor, "Ada")
        answers["hooks.example.com"] = ["169.254.169.254"]  # DNS rebinding: now the cloud metadata address
        assert await Dispatcher(db).run_once() == 1
        (refused,) = await _deliveries(db)
        assert refused["status"] == "pending" and refused["last_status_code"] is None
        assert "169.254.169.254" in refused["last_error"] and "link-local" in refused["last_error"]
    finally:
        await db.dispose()


async def test_redirects_are_not_followed(database_url: str) -> None:
    with Receiver() as elsewhere, Receiver(lambda r: (307, {"Location": elsewhere.url})) as receiver:
        db, crm, actor, _ = await _setup(database_url, receiver.url)
        try:
            await _contacts(crm, actor, "Ada")
            assert await Dispatcher(db, allow_local=True).run_once() == 1
            (redirected,) = await _deliveries(db)
            assert redirected["status"] == "pending" and redirected["last_status_code"] == 307
            assert "redirects are not followed" in redirected["last_error"]
            assert len(receiver.received) == 1 and elsewhere.received == []
        finally:
            await db.dispose()


async def test_two_dispatchers_send_each_attempt_once_and_in_order(database_url: str) -> None:
    with Receiver() as receiver:
        db, crm, actor, _ = await _setup(database_url, receiver.url + "/a")
        try:
            for path in ("/b", "/c"):
                await crm.webhooks_create(actor, receiver.url + path, ["contact.created"])
            for batch in range(3):
                await _contacts(crm, actor, *(f"P{batch}-{n}" for n in range(40)))
            others = [Database(database_url) for _ in range(2)]
            try:
                dispatchers = [Dispatcher(other, allow_local=True) for other in others]

                async def drain(dispatcher: Dispatcher) -> None:
                    while len(receiver.received) < 360:
                        await dispatcher.run_once()

                with anyio.fail_after(60):
                    async with anyio.create_task_group() as group:
                        for dispatcher in dispatchers:
                            group.start_soon(drain, dispatcher)
            finally:
                for other in others:
                    await other.dispose()
            queued = await _deliveries(db)
            assert len(queued) == 360 and {d["attempts"] for d in queued} == {1}
            ids = [r.message_id for r in receiver.received]
            assert sorted(ids) == sorted(d["id"] for d in queued)  # each exactly once
            hooks = await db.read(lambda c: dict(c.execute(select(WEBHOOKS.c.id, WEBHOOKS.c.url)).all()))
            for webhook_id, url in hooks.items():
                line = [d["id"] for d in queued if d["webhook_id"] == webhook_id]
                path = url.removeprefix(f"http://127.0.0.1:{receiver.port}")
                assert [r.message_id for r in receiver.received if r.path == path] == line  # commit order
        finally:
            await db.dispose()


def test_webhook_tools_need_the_admin_scope() -> None:
    tools = [t for t in all_tools() if t.name.startswith(("webhooks_", "webhook_"))]
    assert len(tools) == 9
    assert all("admin" in t.scopes for t in tools)


async def test_a_paused_subscription_queues_nothing_and_resumes(local_client: Client) -> None:
    client = local_client
    with Receiver() as receiver:
        hook = await call(client, "webhooks_create", {"url": receiver.url, "events": ["organization.created"]})
        paused = await call(client, "webhooks_update", {"webhook_id": hook["id"], "active": False})
        assert paused["active"] is False
        await call(client, "organizations_create", {"name": "While paused"})
        await call(client, "webhooks_update", {"webhook_id": hook["id"], "active": True, "events": ["organization.*"]})
        await call(client, "organizations_create", {"name": "After"})
        (request,) = await receiver.until(1)
        assert request.payload["data"]["record"]["name"] == "After"
        detail = await settled(client, hook["id"])
        assert detail["events"] == ["organization.*"] and detail["deliveries"]["succeeded"] == 1
        assert detail["latest_delivery"]["id"] == request.message_id
        message = await fail(client, "webhooks_update", {"webhook_id": hook["id"], "url": "ftp://files.example.com/x"})
        assert "https" in message  # even where local targets are allowed, only http(s)
        await call(client, "webhooks_delete", {"webhook_id": hook["id"]})
        assert (await call(client, "webhooks_list"))["items"] == []
        assert "No webhook" in await fail(client, "webhook_deliveries_list", {"webhook_id": hook["id"]})


def test_the_command_line_manages_webhooks(database_url: str) -> None:
    with Receiver() as receiver:
        local = ["--database-url", database_url]
        made = runner.invoke(
            app, ["webhooks", "create", receiver.url, "--events", "contact.*", *local, "--allow-local-webhooks"]
        )
        assert made.exit_code == 0, made.output
        secret = made.stdout.strip().splitlines()[-1]
        assert secret.startswith("whsec_")
        listed = runner.invoke(app, ["webhooks", "list", *local])
        assert receiver.url in listed.stdout and secret not in listed.stdout
        webhook_id = anyio.run(_only_webhook, database_url)
        pinged = runner.invoke(app, ["webhooks", "test", webhook_id, *local, "--allow-local-webhooks"])
        assert pinged.exit_code == 0, pinged.output
        (request,) = receiver.received
        assert verified(request, secret)["event"] == "ping"
        shown = runner.invoke(app, ["webhooks", "deliveries", webhook_id, *local])
        assert "ping" in shown.stdout and "succeeded" in shown.stdout
        paused = runner.invoke(app, ["webhooks", "update", webhook_id, "--paused", "--events", "deal.*", *local])
        assert paused.exit_code == 0 and "(paused)" in paused.stdout and "deal.*" in paused.stdout
        rotated = runner.invoke(app, ["webhooks", "rotate-secret", webhook_id, *local])
        new_secret = rotated.stdout.strip().splitlines()[-1]
        assert rotated.exit_code == 0 and new_secret.startswith("whsec_") and new_secret != secret
        refused = runner.invoke(app, ["webhooks", "create", "https://127.0.0.1/x", *local])
        assert refused.exit_code == 1 and "loopback" in refused.output and "Traceback" not in refused.output


async def _only_webhook(database_url: str) -> str:
    db = Database(database_url)
    try:
        return await db.read(lambda c: c.execute(select(WEBHOOKS.c.id)).scalar_one())  # type: ignore[no-any-return]
    finally:
        await db.dispose()


async def test_finished_deliveries_are_erased_after_30_days(database_url: str) -> None:
    with Receiver() as receiver:
        db, crm, actor, hook = await _setup(database_url, receiver.url)
        try:
            await _contacts(crm, actor, "Ada", "Grace")
            assert await Dispatcher(db, allow_local=True).run_once() == 2
            await crm.webhooks_update(actor, hook["id"], {"active": False})
            await _contacts(crm, actor, "Paused")  # not queued: the subscription is off
            await crm.webhooks_update(actor, hook["id"], {"active": True})
            await _contacts(crm, actor, "Waiting")
            receiver.answer = lambda r: (500, {})
            assert await Dispatcher(db, allow_local=True).run_once() == 1
            later = datetime.now(UTC) + timedelta(days=29)
            assert await db.write(lambda c: dispatching.prune_deliveries(c, later)) == 0
            later += timedelta(days=2)
            assert await db.write(lambda c: dispatching.prune_deliveries(c, later)) == 2
            (left,) = await _deliveries(db)
            assert left["status"] == "pending"  # undelivered ones are kept, however old
        finally:
            await db.dispose()


async def test_a_dispatcher_whose_lease_ran_out_records_nothing(database_url: str) -> None:
    with Receiver() as receiver:
        db, crm, actor, hook = await _setup(database_url, receiver.url)
        try:
            await _contacts(crm, actor, "Ada")
            now = datetime.now(UTC)
            (slow,) = await db.write(lambda c: dispatching.claim(c, now, db.dialect))
            # the slow dispatcher's lease runs out; another one takes the delivery and sends it
            later = Dispatcher(db, allow_local=True, clock=lambda: slow.lease + timedelta(seconds=1))
            assert await later.run_once() == 1
            late = dispatching.Outcome(True, 200, 5, None, None)
            await db.write(
                lambda c: dispatching.record_line(
                    c, hook["id"], [(slow.deliveries[0], late)], [], slow.lease, now, random.Random()
                )
            )
            (delivered,) = await _deliveries(db)
            assert delivered["status"] == "succeeded" and delivered["attempts"] == 1
            log, _ = await crm.webhook_deliveries(actor, hook["id"], None, 10, None)
            assert len(log[0]["attempt_log"]) == 1 and len(receiver.received) == 1
        finally:
            await db.dispose()


async def test_failing_subscriptions_do_not_hold_up_a_healthy_one(database_url: str) -> None:
    with Receiver(lambda r: (500, {}) if r.path.startswith("/hook/down") else (200, {})) as receiver:
        db, crm, actor, _ = await _setup(database_url, receiver.url + "/up")
        try:
            for n in range(dispatching.SENDING_AT_ONCE + 4):
                await crm.webhooks_create(actor, f"{receiver.url}/down{n}", ["contact.created"])
            dispatcher = Dispatcher(db, allow_local=True)
            await _contacts(crm, actor, "First")
            while await dispatcher.run_once():
                pass  # every failing line now waits for its retry
            await _contacts(crm, actor, "Second")
            assert await dispatcher.run_once() == 1
            healthy = [r.payload["data"]["record"]["first_name"] for r in receiver.received if r.path == "/hook/up"]
            assert healthy == ["First", "Second"]
        finally:
            await db.dispose()
