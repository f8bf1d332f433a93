"""`crm_summary` (the sales dashboard) on a large workspace, against baselines measured in the same run.

Loads a workspace straight through SQLAlchemy Core bulk inserts (not the tools: this measures the read, not
the load): 100,000 deals over two pipelines (open, won and lost; three currencies; 10% without a value),
organizations linked to most deals, activities and tasks on both sides of now. Then times, each as the
median and p95 of --calls calls after warm-up:

  baseline   `SELECT count(*) FROM deals WHERE workspace_id = ?` through the same Crm read path
  summary    Crm.summary(period=this_quarter), the whole workspace
  filtered   Crm.summary(owner_id="me", pipeline_id=<Sales>, period=last_90_days)
  all time   Crm.summary(period=all_time)
  tool       the crm_summary tool through the in-memory MCP client (adds validation and JSON)

and prints each statement of one summary with its plan and time alone. Target: p95 well under 1 s.

    python bench/summary.py                 # 100,000 deals in a fresh SQLite file
    python bench/summary.py --postgres      # and again in a scratch database on 127.0.0.1:5432
    python bench/summary.py --quick         # 5,000 deals, smoke run
    python bench/summary.py --database-url postgresql://postgres@127.0.0.1:5432/some_empty_db

The last line printed is every figure as one JSON object.

Last full run (2026-11-26; 2 CPUs, shared and loaded; Python 3.11, SQLite 3.40.1, PostgreSQL 15), 100,000 deals,
95,211 organization links, 150,000 activities, 50,000 tasks; 20 calls each, median / p95:

  SQLite      this_quarter 302 / 333 ms, me + pipeline 241 / 293 ms, all_time 351 / 371 ms, MCP tool 296 / 339 ms
              (count(*) baseline 8.8 ms)
  PostgreSQL  this_quarter 321 / 394 ms, me + pipeline 207 / 253 ms, all_time 332 / 374 ms, MCP tool 308 / 412 ms
              (count(*) baseline 22 ms)

The largest shares: the open-deal GROUP BY (~100 ms SQLite, ~70 ms PostgreSQL) and ranking organizations by
open value (~100 ms each); no new index was needed.
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import sys
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from benchkit import PG_ADMIN, captured_sql, run_each
from mcp import Client
from rich.console import Console
from rich.table import Table
from sqlalchemy import Connection, func, insert, select, update

from mcp_crm.catalog.server import build_server
from mcp_crm.entities import ENTITIES
from mcp_crm.entities.deals import DealOrganization
from mcp_crm.ids import new_id
from mcp_crm.operations import Actor, Crm
from mcp_crm.operations.workspace import local_actor
from mcp_crm.store import Database, migrate

FULL = {"deals": 100_000, "organizations": 5_000, "activities": 150_000, "tasks": 50_000}
QUICK = {"deals": 5_000, "organizations": 250, "activities": 7_500, "tasks": 2_500}
TARGET_MS = 1000.0
CHUNK = 5_000

T = {name: ENTITIES[name].table.__table__ for name in ("deals", "organizations", "activities", "tasks", "users")}  # type: ignore[attr-defined]
T |= {name: ENTITIES[name].table.__table__ for name in ("pipelines", "stages")}  # type: ignore[attr-defined]
DEAL_ORGS = DealOrganization.__table__  # type: ignore[attr-defined]

out = Console(width=None if sys.stdout.isatty() else 160, highlight=False)
err = Console(stderr=True, highlight=False)


def ms(seconds: float) -> float:
    return round(seconds * 1000, 2)


def p95(samples: list[float]) -> float:
    return statistics.quantiles(samples, n=20)[-1] if len(samples) >= 2 else samples[0]


# ------------------------------------------------------------------------------------------------- data


def _insert(conn: Connection, table: Any, rows: list[dict[str, Any]]) -> None:
    for start in range(0, len(rows), CHUNK):
        conn.execute(insert(table), rows[start : start + CHUNK])


def build_rows(actor: Actor, sizes: dict[str, int], seed: int, sales: dict[str, Any]) -> dict[str, list[dict]]:
    """Every row to insert, made in Python first (so the load itself is only inserts)."""
    rng = random.Random(seed)
    now = datetime.now(UTC)
    ws = actor.workspace_id

    def stamp(days_ago: float) -> datetime:
        return now - timedelta(days=days_ago)

    def base(created: datetime) -> dict[str, Any]:
        return {"id": new_id(), "workspace_id": ws, "created_at": created, "updated_at": created, "revision": 1}

    users = [
        base(stamp(800)) | {"name": f"Seller {i}", "email": f"seller{i}@bench.test", "role": "member", "active": True}
        for i in range(9)
    ]
    owners = [actor.user_id] + [u["id"] for u in users]

    renewals = base(stamp(800)) | {"name": "Renewals", "currency": "EUR", "is_default": False, "active": True}
    renewal_stages = [
        base(stamp(800))
        | {"pipeline_id": renewals["id"], "name": name, "position": i, "kind": kind, "probability": p}
        | {"rotten_after_days": rotten}
        for i, (name, kind, p, rotten) in enumerate(
            [
                ("Due", "open", 70, 30),
                ("Negotiating", "open", 85, None),
                ("Renewed", "won", 100, None),
                ("Churned", "lost", 0, None),
            ],
            start=1,
        )
    ]
    pipelines = [(sales["pipeline"], sales["stages"]), (renewals["id"], renewal_stages)]

    organizations = [
        base(stamp(rng.uniform(0, 900)))
        | {"name": f"Org {i:05d}", "relationship": "customer", "status": "active", "tags": []}
        for i in range(sizes["organizations"])
    ]
    org_ids = [o["id"] for o in organizations]

    deals, deal_orgs = [], []
    for i in range(sizes["deals"]):
        pipeline_id, stages = pipelines[0] if rng.random() < 0.8 else pipelines[1]
        status = rng.choices(["open", "won", "lost"], weights=[55, 30, 15])[0]
        stage = rng.choice([s for s in stages if s["kind"] == status])
        created = stamp(rng.uniform(0, 730))
        entered = created + (now - created) * rng.random()
        closed = entered if status != "open" else None
        cents = None if rng.random() < 0.1 else rng.randint(50_000, 20_000_000)
        deal = base(created) | {
            "name": f"Deal {i}",
            "value": None if cents is None else Decimal(cents) / 100,
            "currency": rng.choices(["EUR", "USD", "GBP"], weights=[6, 3, 1])[0],
            "status": status,
            "probability": stage["probability"],
            "expected_close_date": (created + timedelta(days=rng.randint(10, 200))).date(),
            "won_at": closed if status == "won" else None,
            "lost_at": closed if status == "lost" else None,
            "lost_reason": "Price" if status == "lost" else None,
            "description": None,
            "owner_id": rng.choice(owners),
            "pipeline_id": pipeline_id,
            "stage_id": stage["id"],
            "stage_entered_at": entered,
        }
        deals.append(deal)
        roll = rng.random()
        if roll < 0.9:
            linked = rng.sample(org_ids, 2 if roll < 0.05 else 1)
            deal_orgs += [{"deal_id": deal["id"], "organization_id": org} for org in linked]

    deal_ids = [d["id"] for d in deals]
    activities = []
    for i in range(sizes["activities"]):
        due_days_ago = rng.uniform(-60, 730)  # two years of history, two months ahead; the past mostly done
        done = rng.random() < (0.92 if due_days_ago > 0 else 0.03)
        due = stamp(due_days_ago)
        activities.append(
            base(stamp(rng.uniform(0, 730)))
            | {
                "type": rng.choice(["call", "meeting", "email"]),
                "subject": f"Activity {i}",
                "due_at": due,
                "duration_minutes": 30,
                "done": done,
                "done_at": due if done else None,
                "location": None,
                "note": None,
                "owner_id": rng.choice(owners),
                "deal_id": rng.choice(deal_ids) if rng.random() < 0.8 else None,
                "lead_id": None,
                "contact_id": None,
                "organization_id": None,
            }
        )
    tasks = []
    for i in range(sizes["tasks"]):
        due_days_ago = rng.uniform(-60, 730)
        done = rng.random() < (0.9 if due_days_ago > 0 else 0.05)
        due = stamp(due_days_ago)
        tasks.append(
            base(stamp(rng.uniform(0, 730)))
            | {
                "name": f"Task {i}",
                "description": None,
                "due_at": due,
                "done": done,
                "completed_at": due if done else None,
                "priority": "normal",
                "assignee_id": rng.choice(owners),
                "contact_id": None,
                "organization_id": None,
                "deal_id": rng.choice(deal_ids) if rng.random() < 0.5 else None,
            }
        )
    return {
        "users": users,
        "pipelines": [renewals],
        "stages": renewal_stages,
        "organizations": organizations,
        "deals": deals,
        "deal_organizations": deal_orgs,
        "activities": activities,
        "tasks": tasks,
    }


async def load(db: Database, actor: Actor, sizes: dict[str, int], seed: int) -> dict[str, Any]:
    """The workspace's default pipeline gets rotten limits; everything else is inserted in bulk."""
    stages = T["stages"]

    def default_pipeline(conn: Connection) -> dict[str, Any]:
        conn.execute(
            update(stages)
            .where(stages.c.workspace_id == actor.workspace_id, stages.c.name == "Proposal made")
            .values(rotten_after_days=14)
        )
        conn.execute(
            update(stages)
            .where(stages.c.workspace_id == actor.workspace_id, stages.c.name == "Negotiation")
            .values(rotten_after_days=21)
        )
        rows = conn.execute(select(stages).where(stages.c.workspace_id == actor.workspace_id)).mappings().all()
        return {"pipeline": rows[0]["pipeline_id"], "stages": [dict(r) for r in rows]}

    sales = await db.write(default_pipeline)
    rows = build_rows(actor, sizes, seed, sales)
    tables = {"deal_organizations": DEAL_ORGS} | T
    order = ["users", "pipelines", "stages", "organizations", "deals", "deal_organizations", "activities", "tasks"]
    started = time.perf_counter()
    for name in order:  # one transaction per table keeps each commit moderate
        await db.write(lambda conn, name=name: _insert(conn, tables[name], rows[name]))
    seconds = time.perf_counter() - started
    counts = {name: len(rows[name]) for name in order}
    return {"rows": counts, "seconds": round(seconds, 1), "sales_pipeline": sales["pipeline"]}


# ---------------------------------------------------------------------------------------------- timing


async def timed(work: Callable[[], Awaitable[Any]], calls: int, warmup: int = 3) -> dict[str, float]:
    for _ in range(warmup):
        await work()
    samples = []
    for _ in range(calls):
        start = time.perf_counter()
        await work()
        samples.append(time.perf_counter() - start)
    return {"median_ms": ms(statistics.median(samples)), "p95_ms": ms(p95(samples)), "max_ms": ms(max(samples))}


async def statements(db: Database, crm: Crm, actor: Actor, repeats: int) -> list[dict[str, Any]]:
    """Each statement one summary sends, with its plan and its median time run alone."""
    seen: list[tuple[str, Any]] = []
    with captured_sql(seen):
        await crm.summary(actor, period="this_quarter")
    prefix = "EXPLAIN QUERY PLAN " if db.is_sqlite else "EXPLAIN "

    def inspect(conn: Connection) -> list[dict[str, Any]]:
        found = []
        for sql, params in seen:
            if not sql.lstrip().upper().startswith("SELECT"):
                continue  # BEGIN and the like
            plan = [str(row[-1]) for row in conn.exec_driver_sql(prefix + sql, params).all()]
            samples = []
            for _ in range(repeats):
                start = time.perf_counter()
                conn.exec_driver_sql(sql, params).all()
                samples.append(time.perf_counter() - start)
            flat = " ".join(sql.split())
            found.append(
                {
                    "sql": flat[:90] + ("..." if len(flat) > 90 else ""),
                    "median_ms": ms(statistics.median(samples)),
                    "plan": plan,
                }
            )
        return found

    return await db.read(inspect)


async def measure(url: str, sizes: dict[str, int], calls: int, seed: int) -> dict[str, Any]:
    db = Database(url)
    try:
        await migrate(db)
        actor = await local_actor(db, via="cli")
        existing = await db.read(lambda c: c.execute(select(func.count()).select_from(T["deals"])).scalar_one())
        if existing:
            raise SystemExit(f"{url} already holds {existing:,} deals; give an empty database.")
        err.print(f"[{db.dialect}] loading {sizes['deals']:,} deals and related rows ...")
        loaded = await load(db, actor, sizes, seed)
        err.print(f"[{db.dialect}] loaded in {loaded['seconds']} s; timing ...")
        if not db.is_sqlite:  # autovacuum would analyze soon after a load this size; do it now
            await db.write(lambda conn: conn.exec_driver_sql("ANALYZE"))

        crm = Crm(db)
        deals = T["deals"]
        count = select(func.count()).select_from(deals).where(deals.c.workspace_id == actor.workspace_id)
        figures = {
            "baseline count(*)": await timed(lambda: db.read(lambda c: c.execute(count).scalar_one()), calls),
            "summary this_quarter": await timed(lambda: crm.summary(actor, period="this_quarter"), calls),
            "summary me + Sales, last_90_days": await timed(
                lambda: crm.summary(actor, "last_90_days", owner_id="me", pipeline_id=loaded["sales_pipeline"]),
                calls,
            ),
            "summary all_time": await timed(lambda: crm.summary(actor, period="all_time"), calls),
        }
        server = build_server(url, via="cli")
        async with Client(server) as client:

            async def tool() -> None:
                result = await client.call_tool("crm_summary", {"period": "this_quarter"})
                assert not result.is_error, result.content

            figures["crm_summary tool (MCP client)"] = await timed(tool, calls)
        sample = await crm.summary(actor, period="this_quarter")
        queries = await statements(db, crm, actor, repeats=max(3, calls // 2))
    finally:
        await db.dispose()
    base = figures["baseline count(*)"]["median_ms"]
    for figure in figures.values():
        figure["ratio"] = round(figure["median_ms"] / base, 1) if base else None
    return {
        "database": db.dialect,
        "deals": sizes["deals"],
        "load": loaded,
        "figures": figures,
        "statements": queries,
        "sample": {
            "open_deals": sample["open_deals"],
            "won": sample["won"],
            "conversion_rate": sample["conversion_rate"],
            "overdue": [sample["overdue_tasks"], sample["overdue_activities"]],
            "rotten": sample["rotten"],
        },
        "passed": all(f["p95_ms"] < TARGET_MS for k, f in figures.items() if k.startswith("summary")),
    }


# --------------------------------------------------------------------------------------------- running


def report(result: dict[str, Any]) -> None:
    table = Table(title=f"crm_summary on {result['deals']:,} deals ({result['database']})")
    for column in ("call", "median", "p95", "max", "x baseline"):
        table.add_column(column, justify="left" if column == "call" else "right")
    for name, f in result["figures"].items():
        table.add_row(
            name, f"{f['median_ms']:.1f} ms", f"{f['p95_ms']:.1f} ms", f"{f['max_ms']:.1f} ms", f"{f['ratio']}"
        )
    out.print(table)
    verdict = "[green]PASS" if result["passed"] else "[red]FAIL"
    out.print(f"  target: every summary p95 < {TARGET_MS:.0f} ms: {verdict}")
    out.print(f"  load: {json.dumps(result['load']['rows'])} in {result['load']['seconds']} s (Core bulk inserts)")
    out.print(f"  sample: {json.dumps(result['sample'])}", soft_wrap=True)
    for q in result["statements"]:
        out.print(f"  {q['median_ms']:8.2f} ms  {q['sql']}", soft_wrap=True)
        out.print(f"              plan: {' | '.join(q['plan'])}", soft_wrap=True)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--deals", type=int, help=f"deals to load (default {FULL['deals']:,})")
    parser.add_argument("--quick", action="store_true", help=f"small smoke run ({QUICK['deals']:,} deals)")
    parser.add_argument("--calls", type=int, default=20, help="timed calls per figure (default 20)")
    parser.add_argument("--postgres", action="store_true", help=f"also run on a scratch database at {PG_ADMIN}")
    parser.add_argument("--database-url", help="run on this (empty) database instead of a fresh SQLite file")
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args(argv)
    sizes = dict(QUICK if args.quick else FULL)
    if args.deals:
        scale = args.deals / sizes["deals"]
        sizes = {k: max(1, round(v * scale)) for k, v in sizes.items()}

    run_each(
        "summary",
        lambda url: measure(url, sizes, args.calls, args.seed),
        report,
        args.postgres,
        args.database_url,
    )


if __name__ == "__main__":
    main()
