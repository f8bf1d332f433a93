"""Webhook costs, each against a baseline measured in the same run.

1. Outbox cost on writes: `contacts_create_many` rows/s through the Crm layer (batches of 100) with one active
   subscription to `*` vs none. The dispatcher is not running, so only the outbox's share is measured (one
   outbox row per write and subscription, written in the same transaction). Both configurations run on the same
   database, batch by batch in alternating pairs (without, with), (with, without), ... (the subscription is
   switched on and off between batches, untimed), so they see the same table sizes and the same machine load;
   each figure is the median of its batches' rates (one batch takes ~30 ms, and on a shared machine single
   batches vary by 2x, hence 100 of each). Also shown: the median ratio within adjacent pairs.
   Target: with >= 0.9x without.
2. Delivery throughput: N events queued for one subscription, then `Dispatcher.run_once()` in a loop until it
   finds nothing due, timed until every delivery succeeded; again with 4 subscriptions (N each), which the
   dispatcher sends to concurrently. Baseline for one subscription: the same number of bare sequential POSTs
   of one such body to the same receiver (one keep-alive httpx2 client, no database); for four, the
   one-subscription rate. The receiver is a ThreadingHTTPServer (HTTP/1.1) in a separate process that reads
   the body and answers 200 at once, so it does not compete with the dispatcher for the GIL.

    python bench/webhooks.py                # 100 + 100 batches of 100, N = 2,000, in a fresh SQLite file
    python bench/webhooks.py --postgres     # and again in a scratch database on 127.0.0.1:5432
    python bench/webhooks.py --quick        # 20 + 20 batches, N = 300, smoke run
    python bench/webhooks.py --database-url postgresql://postgres@127.0.0.1:5432/some_empty_db

The last line printed is every figure as one JSON object.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import random
import statistics
import sys
import time
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from multiprocessing.connection import Connection as Pipe
from multiprocessing.sharedctypes import Synchronized
from typing import Any

import httpx2
from benchkit import PG_ADMIN, captured_sql, machine_info, run_each
from pydantic import BaseModel
from rich.console import Console
from rich.table import Table
from sqlalchemy import Connection, func, select

from mcp_crm.entities import ENTITIES
from mcp_crm.entities.models import create_model_for
from mcp_crm.operations import Actor, Crm
from mcp_crm.operations.workspace import local_actor
from mcp_crm.store import Database, migrate
from mcp_crm.store.tables import ATTEMPTS, DELIVERIES
from mcp_crm.webhooks.dispatcher import Dispatcher

FULL = {"batches": 100, "events": 2_000}
QUICK = {"batches": 20, "events": 300}
BATCH = 100
SUBSCRIPTIONS = 4
TARGET = 0.9
CONTACTS = ENTITIES["contacts"]
CONTACT = create_model_for(CONTACTS)

out = Console(width=None if sys.stdout.isatty() else 150, highlight=False)
err = Console(stderr=True, highlight=False)

# ------------------------------------------------------------------------------------------- test data

FIRST_NAMES = "Ada Alan Barbara Carl Dana Edsger Frances Grace Hedy Ivan Joan Ken Linus Margaret Niklaus Olga"
FIRST = FIRST_NAMES.split()
SYLLABLE_TEXT = "ba ce di fo gu ha ke li mo nu pa re si to vu wa xe yo za bel cor dan fen gar hol"
SYLLABLES = SYLLABLE_TEXT.split()
TITLES = (None, "CTO", "Engineer", "Buyer", "Head of Sales", "Analyst", "Founder")


def contact(rng: random.Random, serial: int) -> BaseModel:
    first = rng.choice(FIRST)
    last = "".join(rng.choice(SYLLABLES) for _ in range(rng.randint(2, 4))).capitalize()
    return CONTACT.model_validate(
        {
            "first_name": first,
            "last_name": last,
            "emails": [{"value": f"{first.lower()}.{last.lower()}{serial}@example.com", "label": "work"}],
            "phones": [{"value": f"+49 30 {rng.randint(1_000_000, 9_999_999)}", "label": "mobile"}],
            "job_title": rng.choice(TITLES),
            "tags": ["bench", rng.choice(["lead", "customer", "partner"])],
        }
    )


class Contacts:
    """Batches of new contacts, numbered on across calls so every email differs."""

    def __init__(self, seed: int) -> None:
        self.rng = random.Random(seed)
        self.serial = 0

    def batch(self, size: int = BATCH) -> list[BaseModel]:
        items = [contact(self.rng, self.serial + i) for i in range(size)]
        self.serial += size
        return items


# -------------------------------------------------------------------------------------------- receiver


def serve(port: Pipe, received: Synchronized) -> None:  # type: ignore[type-arg]
    """A webhook receiver on 127.0.0.1 (run in its own process): reads each POST, counts it, answers 200."""

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"  # keep-alive, as a production receiver behind any web server
        disable_nagle_algorithm = True  # headers and body go out in two writes; without this each answer waits 40 ms

        def do_POST(self) -> None:
            self.rfile.read(int(self.headers.get("Content-Length", 0)))
            with received.get_lock():
                received.value += 1
            self.send_response(200)
            self.send_header("Content-Length", "2")
            self.end_headers()
            self.wfile.write(b"ok")

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    port.send(server.server_address[1])
    server.serve_forever()


class Receiver:
    def __init__(self) -> None:
        context = multiprocessing.get_context("spawn")
        self.received = context.Value("q", 0)
        ours, theirs = context.Pipe()
        self.process = context.Process(target=serve, args=(theirs, self.received), daemon=True)
        self.process.start()
        if not ours.poll(30):
            raise RuntimeError("the receiver process did not start")
        self.url = f"http://127.0.0.1:{ours.recv()}/hook"

    @property
    def count(self) -> int:
        return int(self.received.value)

    def close(self) -> None:
        self.process.terminate()
        self.process.join(5)


# ---------------------------------------------------------------------------------------------- figures


def rate(rows: int, seconds: float) -> float:
    return rows / seconds if seconds else 0.0


async def set_active(crm: Crm, actor: Actor, webhook_id: str, active: bool) -> None:
    await crm.webhooks_update(actor, webhook_id, {"active": active})


def deliveries_by_status(conn: Connection, webhook_ids: list[str]) -> dict[str, int]:
    rows = conn.execute(
        select(DELIVERIES.c.status, func.count())
        .where(DELIVERIES.c.webhook_id.in_(webhook_ids))
        .group_by(DELIVERIES.c.status)
    ).all()
    return {status: count for status, count in rows}


def attempts_of(conn: Connection, webhook_ids: list[str]) -> tuple[int, int]:
    """How many attempts the subscriptions' deliveries logged, and their POST times (latency_ms) summed."""
    delivery_ids = select(DELIVERIES.c.id).where(DELIVERIES.c.webhook_id.in_(webhook_ids))
    count, latency = conn.execute(
        select(func.count(), func.coalesce(func.sum(ATTEMPTS.c.latency_ms), 0)).where(
            ATTEMPTS.c.delivery_id.in_(delivery_ids)
        )
    ).one()
    return int(count), int(latency)


async def statements_per_batch(crm: Crm, actor: Actor, contacts: Contacts) -> int:
    """SQL statements one create_many of BATCH contacts sends (the batch is kept: it counts as data)."""
    sent: list[tuple[str, Any]] = []
    items = contacts.batch()
    with captured_sql(sent):
        await crm.create_many(actor, CONTACTS, items)
    return len(sent)


async def figure_outbox(
    crm: Crm, actor: Actor, contacts: Contacts, webhook_id: str, batches: int, database: str
) -> dict[str, Any]:
    """`batches` timed batches in each configuration, alternating in pairs (without, with), (with, without), ...
    so drift in machine load or table size falls on both alike; the subscription is switched between them."""
    plain = await statements_per_batch(crm, actor, contacts)
    await set_active(crm, actor, webhook_id, True)
    queued = await statements_per_batch(crm, actor, contacts)  # also the warm-up with the subscription on
    await set_active(crm, actor, webhook_id, False)
    await crm.create_many(actor, CONTACTS, contacts.batch())  # warm-up without

    pairs = [(False, True) if pair % 2 == 0 else (True, False) for pair in range(batches)]
    rates: dict[bool, list[float]] = {False: [], True: []}
    seconds: dict[bool, float] = {False: 0.0, True: 0.0}
    paired: list[float] = []
    active = False
    with err.status("") as status:
        for number, pair in enumerate(pairs, 1):
            took: dict[bool, float] = {}
            for with_webhook in pair:
                if with_webhook != active:
                    await set_active(crm, actor, webhook_id, with_webhook)
                    active = with_webhook
                items = contacts.batch()
                start = time.perf_counter()
                await crm.create_many(actor, CONTACTS, items)
                took[with_webhook] = time.perf_counter() - start
                rates[with_webhook].append(rate(BATCH, took[with_webhook]))
                seconds[with_webhook] += took[with_webhook]
            paired.append(took[False] / took[True])
            status.update(f"[{database}] figure 1: pair {number}/{len(pairs)}")
    await set_active(crm, actor, webhook_id, False)
    rows = batches * BATCH
    without, with_ = statistics.median(rates[False]), statistics.median(rates[True])
    return {
        "title": f"contacts_create_many rows/s, batches of {BATCH}: 1 subscription to * vs none (outbox only)",
        "measured": with_,
        "baseline": without,
        "unit": "rows/s",
        "target": TARGET,
        "details": {
            "rows_each": rows,
            "batch_rows_per_s_without": spread(rates[False]),
            "batch_rows_per_s_with": spread(rates[True]),
            "overall_rows_per_s_without": round(rate(rows, seconds[False])),
            "overall_rows_per_s_with": round(rate(rows, seconds[True])),
            "median_paired_ratio": round(statistics.median(paired), 3),
            "statements_per_batch_without": plain,
            "statements_per_batch_with": queued,
        },
    }


def spread(samples: list[float]) -> dict[str, int]:
    quartiles = statistics.quantiles(samples, n=4) if len(samples) >= 2 else samples * 3
    low, high = round(min(samples)), round(max(samples))
    return {"min": low, "q1": round(quartiles[0]), "q3": round(quartiles[2]), "max": high}


async def queue_events(crm: Crm, actor: Actor, contacts: Contacts, events: int) -> float:
    start = time.perf_counter()
    for done in range(0, events, BATCH):
        await crm.create_many(actor, CONTACTS, contacts.batch(min(BATCH, events - done)))
    return time.perf_counter() - start


async def dispatch(db: Database, receiver: Receiver, webhook_ids: list[str], expected: int) -> dict[str, Any]:
    """Runs the dispatcher until nothing is due; checks every delivery arrived once and succeeded."""
    dispatcher = Dispatcher(db, allow_local=True)
    before = receiver.count
    earlier = await db.read(lambda conn: deliveries_by_status(conn, webhook_ids))
    earlier_attempts, earlier_latency = await db.read(lambda conn: attempts_of(conn, webhook_ids))
    loops = attempts = 0
    start = time.perf_counter()
    while made := await dispatcher.run_once():
        loops += 1
        attempts += made
    seconds = time.perf_counter() - start
    now = await db.read(lambda conn: deliveries_by_status(conn, webhook_ids))
    logged, latency = await db.read(lambda conn: attempts_of(conn, webhook_ids))
    logged, latency = logged - earlier_attempts, latency - earlier_latency
    statuses = {k: n - earlier.get(k, 0) for k, n in now.items() if n != earlier.get(k, 0)}
    arrived = receiver.count - before
    problems = []
    if statuses != {"succeeded": expected}:
        problems.append(f"deliveries by status changed by {statuses}, expected {{'succeeded': {expected}}}")
    if arrived != expected:
        problems.append(f"the receiver got {arrived} requests, expected {expected}")
    if attempts != expected or logged != expected:
        problems.append(f"{attempts} attempts made and {logged} logged, expected {expected}")
    return {
        "deliveries": expected,
        "seconds": round(seconds, 3),
        "per_s": rate(expected, seconds),
        "run_once_calls": loops,
        "mean_post_ms": round(latency / logged, 2) if logged else None,
        "problems": problems,
    }


def sample_body(actor: Actor) -> bytes:
    """A body the size and shape of a contact.created delivery, for the bare POSTs."""
    stamp = datetime.now(UTC).isoformat()
    record = contact(random.Random(0), 0).model_dump(mode="json")
    record |= {"id": "0" * 26, "workspace_id": actor.workspace_id, "created_at": stamp, "updated_at": stamp}
    record |= {"revision": 1, "email": record["emails"][0]["value"], "phone": record["phones"][0]["value"]}
    actor_part = {"user_id": actor.user_id, "via": "cli", "tool": "contacts_create_many"}
    body = {"id": "0" * 26, "event": "contact.created", "occurred_at": stamp, "workspace_id": actor.workspace_id}
    return json.dumps(body | {"actor": actor_part, "data": {"record": record}}).encode()


async def bare_posts(url: str, payload: bytes, count: int) -> float:
    """`count` sequential POSTs of `payload` over one keep-alive client: the receiver's and the network's share."""
    headers = {"Content-Type": "application/json", "Webhook-Id": "msg_bench"}
    async with httpx2.AsyncClient(timeout=10, trust_env=False) as client:
        await client.post(url, content=payload, headers=headers)  # connect
        start = time.perf_counter()
        for _ in range(count):
            response = await client.post(url, content=payload, headers=headers)
            response.raise_for_status()
        return time.perf_counter() - start


async def figure_delivery(
    db: Database, crm: Crm, actor: Actor, contacts: Contacts, receiver: Receiver, events: int, database: str
) -> tuple[dict[str, Any], dict[str, Any]]:
    first = await crm.webhooks_create(actor, receiver.url, ["*"], "bench: one line")
    err.print(f"[{database}] figure 2: queueing {events:,} events for 1 subscription")
    queued_one = await queue_events(crm, actor, contacts, events)
    payload = sample_body(actor)
    bare = await bare_posts(receiver.url, payload, events)
    err.print(f"[{database}] figure 2: dispatching {events:,} deliveries")
    one = await dispatch(db, receiver, [first["id"]], events)

    others = [
        await crm.webhooks_create(actor, receiver.url, ["*"], f"bench: line {n}") for n in range(2, SUBSCRIPTIONS + 1)
    ]
    ids = [first["id"]] + [o["id"] for o in others]
    err.print(f"[{database}] figure 2: queueing {events:,} events for {SUBSCRIPTIONS} subscriptions")
    queued_many = await queue_events(crm, actor, contacts, events)
    err.print(f"[{database}] figure 2: dispatching {events * SUBSCRIPTIONS:,} deliveries")
    many = await dispatch(db, receiver, ids, events * SUBSCRIPTIONS)
    for webhook_id in ids:
        await set_active(crm, actor, webhook_id, False)

    single = {
        "title": "webhook deliveries/s to a local receiver, 1 subscription vs bare sequential POSTs",
        "measured": one["per_s"],
        "baseline": rate(events, bare),
        "unit": "/s",
        "target": None,
        "details": one
        | {"queue_seconds": round(queued_one, 2), "bare_post_seconds": round(bare, 3), "bare_body_bytes": len(payload)},
    }
    concurrent = {
        "title": f"webhook deliveries/s, {SUBSCRIPTIONS} subscriptions ({events:,} each) vs 1 subscription",
        "measured": many["per_s"],
        "baseline": one["per_s"],
        "unit": "/s",
        "target": None,
        "details": many | {"queue_seconds": round(queued_many, 2)},
    }
    return single, concurrent


async def measure(url: str, sizes: dict[str, int], seed: int, receiver: Receiver) -> dict[str, Any]:
    db = Database(url)
    try:
        await migrate(db)
        actor = await local_actor(db, via="cli")
        crm = Crm(db, allow_local_webhooks=True)
        contacts = Contacts(seed)
        database = db.dialect
        hook = await crm.webhooks_create(actor, receiver.url, ["*"], "bench: outbox cost")
        await set_active(crm, actor, hook["id"], False)
        err.print(f"[{database}] figure 1: {sizes['batches']} + {sizes['batches']} batches of {BATCH} contacts")
        outbox = await figure_outbox(crm, actor, contacts, hook["id"], sizes["batches"], database)
        await crm.webhooks_delete(actor, hook["id"])  # its undelivered rows go with it
        single, concurrent = await figure_delivery(db, crm, actor, contacts, receiver, sizes["events"], database)
    finally:
        await db.dispose()
    figures = {"outbox": outbox, "deliveries_1": single, f"deliveries_{SUBSCRIPTIONS}": concurrent}
    for figure in figures.values():
        ratio = figure["measured"] / figure["baseline"] if figure["baseline"] else None
        figure["ratio"] = None if ratio is None else round(ratio, 3)
        figure["passed"] = None if figure["target"] is None or ratio is None else ratio >= figure["target"]
        figure["measured"], figure["baseline"] = round(figure["measured"], 1), round(figure["baseline"], 1)
    return {
        "database": database,
        "contacts_created": contacts.serial,
        "figures": figures,
        "machine": machine_info(),
    }


# --------------------------------------------------------------------------------------------- running


def report(result: dict[str, Any]) -> None:
    table = Table(title=f"mcp-crm webhooks benchmark ({result['database']})")
    for column in ("#", "figure", "measured", "baseline", "ratio", "target", "result"):
        table.add_column(column, justify="right" if column in ("measured", "baseline", "ratio") else "left")
    for number, f in enumerate(result["figures"].values(), 1):
        table.add_row(
            str(number),
            f["title"],
            f"{f['measured']:,.0f} {f['unit']}",
            f"{f['baseline']:,.0f} {f['unit']}",
            "-" if f["ratio"] is None else f"{f['ratio']:.2f}",
            "-" if f["target"] is None else f"ratio >= {f['target']}",
            {True: "[green]PASS", False: "[red]FAIL", None: "-"}[f["passed"]],
        )
    out.print(table)
    outbox = result["figures"]["outbox"]["details"]
    out.print(
        f"  [1] {outbox['rows_each']:,} rows each; per batch rows/s without "
        f"{json.dumps(outbox['batch_rows_per_s_without'])}, with {json.dumps(outbox['batch_rows_per_s_with'])}; "
        "median ratio of adjacent pairs "
        f"{outbox['median_paired_ratio']:.2f}; overall {outbox['overall_rows_per_s_without']:,} vs "
        f"{outbox['overall_rows_per_s_with']:,} rows/s; SQL statements per batch "
        f"{outbox['statements_per_batch_without']} vs {outbox['statements_per_batch_with']}",
        soft_wrap=True,
    )
    for number, key in ((2, "deliveries_1"), (3, f"deliveries_{SUBSCRIPTIONS}")):
        d = result["figures"][key]["details"]
        check = "; ".join(d["problems"]) or "every delivery succeeded once, received once"
        out.print(
            f"  [{number}] {d['deliveries']:,} deliveries in {d['seconds']} s, {d['run_once_calls']} run_once "
            f"calls, mean POST {d['mean_post_ms']} ms (attempt log), queued in {d['queue_seconds']} s; {check}",
            soft_wrap=True,
        )
    out.print(f"  machine: {json.dumps(result['machine'])}", soft_wrap=True)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument(
        "--batches", type=int, help=f"batches of {BATCH} per configuration for figure 1 (default {FULL['batches']})"
    )
    parser.add_argument("--events", type=int, help=f"events per subscription for figure 2 (default {FULL['events']:,})")
    parser.add_argument("--quick", action="store_true", help=f"small smoke run ({QUICK['events']:,} events)")
    parser.add_argument("--postgres", action="store_true", help=f"also run on a scratch database at {PG_ADMIN}")
    parser.add_argument("--database-url", help="run on this (empty) database instead of a fresh SQLite file")
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args(argv)
    sizes = dict(QUICK if args.quick else FULL)
    sizes["batches"] = args.batches or sizes["batches"]
    sizes["events"] = args.events or sizes["events"]

    receiver = Receiver()
    try:
        run_each(
            "webhooks",
            lambda url: measure(url, sizes, args.seed, receiver),
            report,
            args.postgres,
            args.database_url,
        )
    finally:
        receiver.close()


if __name__ == "__main__":
    main()
