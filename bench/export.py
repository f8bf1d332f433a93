"""`mcp-crm export contacts` throughput and memory, against a raw baseline measured in the same run.

Loads contacts (two emails and a phone each, tags, an owner, two custom fields, and a membership in one of
n/100 organizations with a role) with Core bulk inserts, then exports them all through the product's export
code (`mcp_crm.transfer.export.write`, what the command runs, into a file) as CSV and as JSONL. Baseline: a raw
`sqlite3` `SELECT * FROM contacts` written with `csv.writer`, no links, no names, no conversion. Memory: the
peak of Python allocations (tracemalloc) of the same CSV export at the full size and at a tenth of it, in
separate traced runs (tracing slows them; the timed runs, best of two, are untraced). Flat peaks mean the
export streams.

    python bench/export.py                     # 100,000 contacts in a fresh SQLite file
    python bench/export.py --quick             # 10,000 contacts
    python bench/export.py --postgres          # also on a scratch PostgreSQL database (no raw baseline there;
                                               # ANALYZE after the load where autovacuum is off, as in core.py)

Prints a table and, as the last line, the figures as one JSON object.
"""

from __future__ import annotations

import argparse
import csv
import random
import resource
import sqlite3
import sys
import tempfile
import time
import tracemalloc
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from benchkit import PG_ADMIN, run_each
from core import analyze_if_autovacuum_is_off
from rich.console import Console
from rich.table import Table
from sqlalchemy import Connection, insert
from sqlalchemy.engine import make_url

from mcp_crm.entities import ENTITIES
from mcp_crm.entities.contacts import ContactOrganization
from mcp_crm.entities.models import create_model_for
from mcp_crm.ids import new_id
from mcp_crm.operations import Actor, Crm
from mcp_crm.operations.workspace import local_actor
from mcp_crm.store import Database, migrate
from mcp_crm.transfer import export as exporting

FULL, QUICK = 100_000, 10_000
BATCH = 5_000
REPEATS = 2  # each figure is the best of this many runs (the machine is shared)
CONTACTS, ORGANIZATIONS, FIELDS = ENTITIES["contacts"], ENTITIES["organizations"], ENTITIES["fields"]
FIRST = [
    "Ada", "Alan", "Barbara", "Carl", "Dana", "Edsger", "Frances", "Grace",
    "Hedy", "Ivan", "Joan", "Ken", "Linus", "Margaret", "Niklaus", "Olga",
]  # fmt: skip
SYLLABLES = [
    "ba", "bel", "ce", "cor", "da", "dan", "di", "fen", "fo", "gar", "gu", "ha", "hol", "ke", "ki",
    "la", "li", "lo", "ma", "mo", "ne", "nu", "pa", "per", "re", "ri", "sa", "si", "ta", "to",
]  # fmt: skip
ROLES = (None, "champion", "decision maker", "billing")

out = Console(width=None if sys.stdout.isatty() else 150, highlight=False)
err = Console(stderr=True, highlight=False)

# ------------------------------------------------------------------------------------------- test data


def word(rng: random.Random) -> str:
    return "".join(rng.choice(SYLLABLES) for _ in range(rng.randint(2, 4))).capitalize()


def organization(now: datetime, actor: Actor, serial: int, rng: random.Random) -> dict[str, Any]:
    return {
        "id": new_id(),
        "workspace_id": actor.workspace_id,
        "created_at": now,
        "updated_at": now,
        "revision": 1,
        "name": f"{word(rng)} {serial} GmbH",
        "relationship": "customer",
        "status": "active",
        "tags": [],
        "owner_id": actor.user_id,
        "custom": {},
    }


def contact(now: datetime, actor: Actor, serial: int, rng: random.Random) -> dict[str, Any]:
    first, last = rng.choice(FIRST), word(rng)
    work, home = f"{first.lower()}.{last.lower()}{serial}@example.com", f"{first.lower()}{serial}@mail.example"
    number = f"+49 30 {rng.randint(1_000_000, 9_999_999)}"
    created = now + timedelta(microseconds=serial)
    return {
        "id": new_id(),
        "workspace_id": actor.workspace_id,
        "created_at": created,
        "updated_at": created,
        "revision": 1,
        "first_name": first,
        "last_name": last,
        "emails": [
            {"value": home, "label": "home", "primary": False},
            {"value": work, "label": "work", "primary": True},
        ],
        "email": work,
        "phones": [{"value": number, "label": "mobile", "primary": True}],
        "phone": number,
        "job_title": rng.choice([None, "CTO", "Buyer", "Head of Sales"]),
        "notes": None,
        "address": {"city": "Berlin", "country": "Germany"} if rng.random() < 0.3 else None,
        "birthday": None,
        "tags": ["bench", rng.choice(["lead", "customer", "partner"])],
        "owner_id": actor.user_id,
        "custom": {"tier": rng.choice(["gold", "silver", "bronze"]), "score": round(rng.uniform(0, 1000), 2)},
    }


async def load(db: Database, actor: Actor, count: int, rng: random.Random) -> float:
    model = create_model_for(FIELDS)
    for definition in (
        {
            "entity": "contacts",
            "label": "Tier",
            "type": "single_option",
            "options": [{"label": t} for t in ("Gold", "Silver", "Bronze")],
        },
        {"entity": "contacts", "label": "Score", "type": "number"},
    ):
        await Crm(db).create(actor, FIELDS, model(**definition))
    now, start = datetime.now(UTC), time.perf_counter()
    orgs = [organization(now, actor, i, rng) for i in range(max(1, count // 100))]
    await db.write(lambda conn: conn.execute(insert(ORGANIZATIONS.table.__table__), orgs))
    with err.status("") as status:
        for done in range(0, count, BATCH):
            rows = [contact(now, actor, done + i, rng) for i in range(min(BATCH, count - done))]
            links = [
                {"contact_id": r["id"], "organization_id": rng.choice(orgs)["id"], "role": rng.choice(ROLES)}
                for r in rows
            ]

            def write(conn: Connection, rows: list[dict[str, Any]] = rows, links: list[dict[str, Any]] = links) -> None:
                conn.execute(insert(CONTACTS.table.__table__), rows)
                conn.execute(insert(ContactOrganization.__table__), links)  # type: ignore[attr-defined]

            await db.write(write)
            status.update(f"contacts: {done + len(rows):,}")
    return time.perf_counter() - start


# --------------------------------------------------------------------------------------------- figures


async def product(db: Database, actor: Actor, fmt: exporting.Format, path: Path, page_size: int) -> int:
    def work(conn: Connection) -> int:
        with path.open("w", encoding="utf-8", newline="") as sink:
            return exporting.write(conn, actor, CONTACTS, None, fmt, sink, page_size=page_size)

    return await db.read(work)


def raw_sqlite(database: str, path: Path) -> int:
    """The floor: every column of every row straight from sqlite3 into csv.writer."""
    conn = sqlite3.connect(database)
    try:
        cursor = conn.execute("SELECT * FROM contacts")
        with path.open("w", encoding="utf-8", newline="") as sink:
            writer = csv.writer(sink)
            writer.writerow([d[0] for d in cursor.description])
            rows = 0
            while batch := cursor.fetchmany(1000):
                writer.writerows(batch)
                rows += len(batch)
        return rows
    finally:
        conn.close()


async def measure(url: str, count: int, seed: int) -> dict[str, Any]:
    db = Database(url)
    sqlite = db.is_sqlite
    try:
        await migrate(db)
        actor = await local_actor(db, via="cli")
        load_seconds = await load(db, actor, count, random.Random(seed))
        analyzed = not sqlite and await analyze_if_autovacuum_is_off(url)
        figures: dict[str, dict[str, Any]] = {}
        with tempfile.TemporaryDirectory(prefix="mcp-crm-export-") as tmp:
            folder = Path(tmp)

            async def timed(label: str, fmt: exporting.Format, page_size: int = exporting.PAGE_SIZE) -> None:
                path, seconds = folder / f"out.{fmt}", float("inf")
                for _ in range(REPEATS):
                    start = time.perf_counter()
                    rows = await product(db, actor, fmt, path, page_size)
                    seconds = min(seconds, time.perf_counter() - start)
                    assert rows == count, (rows, count)
                figures[label] = {
                    "rows": rows,
                    "seconds": round(seconds, 2),
                    "rows_per_s": round(rows / seconds),
                    "mb": round(path.stat().st_size / 1e6, 1),
                }
                err.print(f"{label}: {rows / seconds:,.0f} rows/s")

            if sqlite:
                seconds = float("inf")
                for _ in range(REPEATS):
                    start = time.perf_counter()
                    rows = raw_sqlite(make_url(url).database or "", folder / "raw.csv")
                    seconds = min(seconds, time.perf_counter() - start)
                figures["baseline: raw sqlite3 SELECT * -> csv"] = {
                    "rows": rows,
                    "seconds": round(seconds, 2),
                    "rows_per_s": round(rows / seconds),
                    "mb": round((folder / "raw.csv").stat().st_size / 1e6, 1),
                }
            await timed("export csv", "csv")
            await timed("export jsonl", "jsonl")
            await timed("export csv, pages of 50", "csv", 50)

            peaks = {}
            for limit in (count // 10, count):
                peaks[limit] = await _peak(db, actor, folder / "traced.csv", limit)
        return {
            "database": "sqlite" if sqlite else "postgresql",
            "contacts": count,
            "load_seconds": round(load_seconds, 1),
            "figures": figures,
            "peak_python_mb": {str(k): round(v, 1) for k, v in peaks.items()},
            "max_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
            "analyzed_after_load": analyzed,
        }
    finally:
        await db.dispose()


async def _peak(db: Database, actor: Actor, path: Path, limit: int) -> float:
    from mcp_crm.query import Condition

    def work(conn: Connection) -> float:
        table = CONTACTS.table.__table__
        query = table.select().with_only_columns(table.c.created_at).order_by(table.c.created_at, table.c.id)
        last = conn.execute(query.offset(limit - 1).limit(1)).scalar_one()
        tracemalloc.start()
        try:
            condition = Condition(field="created_at", op="lte", value=last.isoformat())
            with path.open("w", encoding="utf-8", newline="") as sink:
                rows = exporting.write(conn, actor, CONTACTS, condition, "csv", sink)
            assert rows == limit, (rows, limit)
            return tracemalloc.get_traced_memory()[1] / 1e6
        finally:
            tracemalloc.stop()

    return await db.read(work)


# --------------------------------------------------------------------------------------------- running


def report(result: dict[str, Any]) -> None:
    table = Table(title=f"export of {result['contacts']:,} contacts ({result['database']})")
    for column in ("run", "rows/s", "seconds", "file MB", "x baseline"):
        table.add_column(column, justify="left" if column == "run" else "right")
    baseline = next((f["rows_per_s"] for n, f in result["figures"].items() if n.startswith("baseline")), None)
    for name, f in result["figures"].items():
        ratio = f"{f['rows_per_s'] / baseline:.2f}" if baseline else "-"
        table.add_row(name, f"{f['rows_per_s']:,}", f"{f['seconds']}", f"{f['mb']}", ratio)
    out.print(table)
    peaks = ", ".join(f"{int(k):,} rows: {v} MB" for k, v in result["peak_python_mb"].items())
    out.print(f"  peak Python allocations during a CSV export (tracemalloc): {peaks}")
    out.print(f"  process max RSS: {result['max_rss_mb']} MB; load: {result['load_seconds']} s")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--contacts", type=int, help=f"contacts to load (default {FULL:,})")
    parser.add_argument("--quick", action="store_true", help=f"small smoke run ({QUICK:,} contacts)")
    parser.add_argument("--postgres", action="store_true", help=f"also run on a scratch database at {PG_ADMIN}")
    parser.add_argument("--database-url", help="run on this (empty) database instead of a fresh SQLite file")
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args(argv)
    count = args.contacts or (QUICK if args.quick else FULL)
    run_each("export", lambda url: measure(url, count, args.seed), report, args.postgres, args.database_url)


if __name__ == "__main__":
    main()
