"""`search` latency on a large workspace, against a baseline measured in the same run.

Loads 200,000 contacts and 50,000 organizations straight through SQLAlchemy Core bulk inserts, each batch's
search documents written by the product's own indexing function (`index_changes`, what every write calls), in the
same transaction. Then times ~50 varied queries through the Crm layer (Crm.search, limit 10), each --repeats
times after one warm-up call: full names, word starts, names with a typo, emails, phone numbers in several formats,
company names and domains, and a few broad first names. Reported: median and p95 over all calls and per kind,
against `Crm.get` of one contact (a primary-key read through the same path), plus `contacts_list` with q.

    python bench/search.py                  # 200,000 contacts + 50,000 organizations in a fresh SQLite file
    python bench/search.py --postgres       # and again in a scratch database on 127.0.0.1:5432
    python bench/search.py --quick          # 10,000 + 2,500, smoke run
    python bench/search.py --database-url postgresql://postgres@127.0.0.1:5432/some_empty_db

Target: search median under 20 ms. The last line printed is every figure as one JSON object.
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any

from benchkit import PG_ADMIN, run_each
from rich.console import Console
from rich.table import Table
from sqlalchemy import Connection, insert, text
from sqlalchemy.engine import make_url

from mcp_crm.entities import ENTITIES
from mcp_crm.ids import new_id
from mcp_crm.operations import Actor, Crm, ListQuery
from mcp_crm.operations.workspace import local_actor
from mcp_crm.query import SortKey
from mcp_crm.search import index_changes
from mcp_crm.store import Database, migrate

FULL = {"contacts": 200_000, "organizations": 50_000}
QUICK = {"contacts": 10_000, "organizations": 2_500}
BATCH = 5_000
TARGET_MS = 20.0
CONTACTS, ORGANIZATIONS = ENTITIES["contacts"], ENTITIES["organizations"]

out = Console(width=None if sys.stdout.isatty() else 150, highlight=False)
err = Console(stderr=True, highlight=False)

# ------------------------------------------------------------------------------------------- test data

FIRST_NAMES = (
    "Ada Alan Alice Amir Anna Barbara Ben Carla Carlos Chen Claire Daniel Dana Diego Elena Emma Erik Fatima "
    "Felix Grace Hannah Hedy Ivan Jana Joan John Jose Julia Karin Ken Lars Laura Lea Linus Lucia Marco "
    "Margaret Maria Mateo Mia Nadia Niklaus Noah Olga Omar Paula Pedro Priya Rafael Rosa Sara Sofia Tom Uma "
    "Victor Wei Yara Zoe"
)
FIRST = FIRST_NAMES.split()
SYLLABLE_TEXT = (
    "ba bel ce cor da dan di fen fo gar gu ha hol ke ki la li lo ma mo ne nu pa per re ri sa si ta to ve vu wa"
)
SYLLABLES = SYLLABLE_TEXT.split()
SUFFIXES = ("GmbH", "Inc", "Labs", "Systems", "Group", "AG", "Ltd", "Partners")
TLDS = ("com", "de", "io", "co.uk", "net")
TITLES = (None, "CTO", "Engineer", "Buyer", "Head of Sales", "Analyst", "Founder", "Procurement Lead")
INDUSTRIES = ("Logistics", "Manufacturing", "Software", "Retail", "Energy", "Health")


def word(rng: random.Random, low: int, high: int) -> str:
    return "".join(rng.choice(SYLLABLES) for _ in range(rng.randint(low, high))).capitalize()


def phone(rng: random.Random) -> str:
    kind = rng.random()
    if kind < 0.5:
        return f"+1 ({rng.randint(200, 999)}) {rng.randint(200, 999)}-{rng.randint(0, 9999):04d}"
    if kind < 0.8:
        return f"+49 30 {rng.randint(1_000_000, 9_999_999)}"
    return f"+44 20 {rng.randint(1000, 9999)} {rng.randint(1000, 9999)}"


def organization(rng: random.Random, now: datetime, workspace_id: str, owner_id: str) -> dict[str, Any]:
    name = word(rng, 2, 3)
    domain = f"{name.lower()}{rng.randint(1, 99)}.{rng.choice(TLDS)}"
    return {
        "id": new_id(),
        "workspace_id": workspace_id,
        "created_at": now,
        "updated_at": now,
        "revision": 1,
        "name": f"{name} {rng.choice(SUFFIXES)}",
        "domain": domain,
        "website": f"https://www.{domain}",
        "industry": rng.choice(INDUSTRIES),
        "relationship": "customer",
        "status": "active",
        "employee_count": rng.randint(1, 5000),
        "phone": phone(rng),
        "address": None,
        "notes": None,
        "tags": [],
        "owner_id": owner_id,
    }


def contact(rng: random.Random, now: datetime, workspace_id: str, owner_id: str, domains: list[str]) -> dict[str, Any]:
    first, last = rng.choice(FIRST), word(rng, 2, 4)
    email = f"{first.lower()}.{last.lower()}@{rng.choice(domains)}"
    number = phone(rng)
    return {
        "id": new_id(),
        "workspace_id": workspace_id,
        "created_at": now,
        "updated_at": now,
        "revision": 1,
        "first_name": first,
        "last_name": last,
        "emails": [{"value": email, "label": "work", "primary": True}],
        "email": email,
        "phones": [{"value": number, "label": "mobile", "primary": True}],
        "phone": number,
        "job_title": rng.choice(TITLES),
        "notes": None,
        "address": None,
        "birthday": None,
        "tags": [rng.choice(["lead", "customer", "partner"])],
        "owner_id": owner_id,
    }


def _load(conn: Connection, entity: Any, rows: list[dict[str, Any]], workspace_id: str) -> None:
    conn.execute(insert(entity.table.__table__), rows)
    index_changes(conn, workspace_id, entity, "created", [(r["id"], None, r) for r in rows])


async def load(db: Database, actor: Actor, sizes: dict[str, int], rng: random.Random) -> dict[str, Any]:
    now = datetime.now(UTC)
    organizations: list[dict[str, Any]] = []
    contacts: list[dict[str, Any]] = []
    start = time.perf_counter()
    with err.status("") as status:
        for done in range(0, sizes["organizations"], BATCH):
            rows = [
                organization(rng, now, actor.workspace_id, actor.user_id)  # type: ignore[arg-type]
                for _ in range(min(BATCH, sizes["organizations"] - done))
            ]
            await db.write(lambda conn, rows=rows: _load(conn, ORGANIZATIONS, rows, actor.workspace_id))
            organizations += rows
            status.update(f"organizations: {len(organizations):,}")
        domains = [o["domain"] for o in organizations]
        for done in range(0, sizes["contacts"], BATCH):
            rows = [
                contact(rng, now, actor.workspace_id, actor.user_id, domains)  # type: ignore[arg-type]
                for _ in range(min(BATCH, sizes["contacts"] - done))
            ]
            await db.write(lambda conn, rows=rows: _load(conn, CONTACTS, rows, actor.workspace_id))
            contacts += rows
            rate = len(contacts) / (time.perf_counter() - start)
            status.update(f"contacts: {len(contacts):,} ({rate:,.0f} records/s with their documents)")
    seconds = time.perf_counter() - start
    return {"contacts": contacts, "organizations": organizations, "seconds": round(seconds, 1)}


# --------------------------------------------------------------------------------------------- queries


def typo(rng: random.Random, name: str) -> str:
    """The name with two neighbouring letters swapped (one typo), never the name itself."""
    while True:
        i = rng.randint(1, len(name) - 2)
        changed = name[:i] + name[i + 1] + name[i] + name[i + 2 :]
        if changed.lower() != name.lower():
            return changed


def queries(rng: random.Random, contacts: list[dict[str, Any]], organizations: list[dict[str, Any]]) -> list[Any]:
    """(kind, query, the record it must find or None)."""
    pick = rng.sample(contacts, 40)
    orgs = rng.sample(organizations, 6)
    long_names = [c for c in contacts[:5000] if len(c["last_name"]) >= 7]
    found: list[tuple[str, str, str | None]] = []
    found += [("full name", f"{c['first_name']} {c['last_name']}", c["id"]) for c in pick[:12]]
    found += [("word start", c["last_name"][:4].lower(), None) for c in pick[12:18]]
    found += [("word start", f"{c['first_name']} {c['last_name'][:3]}", None) for c in pick[18:22]]
    found += [("typo", typo(rng, c["last_name"]), c["id"]) for c in rng.sample(long_names, 4)]
    found += [("typo", f"{c['first_name']} {typo(rng, c['last_name'])}", c["id"]) for c in rng.sample(long_names, 2)]
    found += [("email", c["email"], c["id"]) for c in pick[22:28]]
    digits = [(c, "".join(ch for ch in c["phone"] if ch.isdigit())) for c in pick[28:34]]
    found += [("phone", d, c["id"]) for c, d in digits[:2]]
    found += [("phone", f"{d[-7:-4]} {d[-4:]}", None) for _, d in digits[2:4]]
    found += [("phone", c["phone"], c["id"]) for c, _ in digits[4:]]
    found += [("organization", o["name"], o["id"]) for o in orgs[:4]]
    found += [("domain", o["domain"], o["id"]) for o in orgs[4:]]
    found += [("broad", name, None) for name in rng.sample(FIRST, 4)]
    return found


def ms(samples: list[float], q: float | None = None) -> float:
    if q is None:
        return statistics.median(samples) * 1000
    return statistics.quantiles(samples, n=100)[round(q * 100) - 1] * 1000 if len(samples) > 1 else samples[0] * 1000


async def timed(call: Callable[[], Awaitable[Any]], repeats: int) -> tuple[list[float], Any]:
    result = await call()  # warm-up
    samples = []
    for _ in range(repeats):
        start = time.perf_counter()
        result = await call()
        samples.append(time.perf_counter() - start)
    return samples, result


async def measure(url: str, sizes: dict[str, int], repeats: int, seed: int) -> dict[str, Any]:
    rng = random.Random(seed)
    database = make_url(url).get_backend_name()
    db = Database(url)
    try:
        await migrate(db)
        actor = await local_actor(db, via="cli")
        err.print(f"{database}: loading {sizes['contacts']:,} contacts and {sizes['organizations']:,} organizations")
        loaded = await load(db, actor, sizes, rng)
        if database == "postgresql":
            await db.write(lambda conn: conn.execute(text("ANALYZE")))
        crm = Crm(db)
        per_kind: dict[str, list[float]] = {}
        hits, expected = 0, 0
        for kind, query, wanted in queries(rng, loaded["contacts"], loaded["organizations"]):
            samples, results = await timed(lambda q=query: crm.search(actor, q), repeats)
            per_kind.setdefault(kind, []).extend(samples)
            if wanted is not None:
                expected += 1
                hits += wanted in [r["record_id"] for r in results]
        searches = [s for samples in per_kind.values() for s in samples]
        some = loaded["contacts"][len(loaded["contacts"]) // 2]
        get, _ = await timed(lambda: crm.get(actor, CONTACTS, some["id"]), max(repeats * 20, 100))
        listing, page = await timed(
            lambda: crm.list(actor, CONTACTS, ListQuery(q=f"{some['first_name']} {some['last_name'][:3]}")), repeats * 5
        )
        sort = [SortKey(field="last_name")]
        by_first_name = ListQuery(q=some["first_name"], sort=sort)
        common, _ = await timed(lambda: crm.list(actor, CONTACTS, by_first_name), repeats * 5)
        figures = {
            "search": {"median_ms": ms(searches), "p95_ms": ms(searches, 0.95), "calls": len(searches)},
            **{
                f"search: {kind}": {"median_ms": ms(s), "p95_ms": ms(s, 0.95), "calls": len(s)}
                for kind, s in per_kind.items()
            },
            "contacts_list q (name + word start)": {
                "median_ms": ms(listing),
                "p95_ms": ms(listing, 0.95),
                "calls": len(listing),
            },
            "contacts_list q (a first name, by last_name)": {
                "median_ms": ms(common),
                "p95_ms": ms(common, 0.95),
                "calls": len(common),
            },
            "baseline: get one contact": {"median_ms": ms(get), "p95_ms": ms(get, 0.95), "calls": len(get)},
        }
        return {
            "database": database,
            "contacts": sizes["contacts"],
            "organizations": sizes["organizations"],
            "load_seconds": loaded["seconds"],
            "figures": {k: {n: round(v, 3) for n, v in f.items()} for k, f in figures.items()},
            "expected_found": f"{hits}/{expected}",
            "list_page_items": len(page.items),
            "passed": figures["search"]["median_ms"] < TARGET_MS,
        }
    finally:
        await db.dispose()


# --------------------------------------------------------------------------------------------- running


def report(result: dict[str, Any]) -> None:
    title = f"search on {result['contacts']:,} contacts + {result['organizations']:,} organizations"
    table = Table(title=f"{title} ({result['database']})")
    for column in ("call", "median", "p95", "calls", "x baseline"):
        table.add_column(column, justify="left" if column == "call" else "right")
    baseline = result["figures"]["baseline: get one contact"]["median_ms"]
    for name, f in result["figures"].items():
        ratio = f"{f['median_ms'] / baseline:.1f}" if baseline else "-"
        table.add_row(name, f"{f['median_ms']:.2f} ms", f"{f['p95_ms']:.2f} ms", str(f["calls"]), ratio)
    out.print(table)
    verdict = "[green]PASS" if result["passed"] else "[red]FAIL"
    out.print(f"  target: search median < {TARGET_MS:.0f} ms: {verdict}")
    out.print(f"  expected record in the top 10: {result['expected_found']} (full names, typos, emails, phones, ...)")
    out.print(f"  load: {result['load_seconds']} s (Core bulk inserts, documents by index_changes, same transactions)")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--contacts", type=int, help=f"contacts to load (default {FULL['contacts']:,})")
    parser.add_argument("--organizations", type=int, help=f"organizations (default {FULL['organizations']:,})")
    parser.add_argument("--quick", action="store_true", help=f"small smoke run ({QUICK['contacts']:,} contacts)")
    parser.add_argument("--repeats", type=int, default=5, help="timed calls per query (default 5)")
    parser.add_argument("--postgres", action="store_true", help=f"also run on a scratch database at {PG_ADMIN}")
    parser.add_argument("--database-url", help="run on this (empty) database instead of a fresh SQLite file")
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args(argv)
    sizes = dict(QUICK if args.quick else FULL)
    sizes["contacts"] = args.contacts or sizes["contacts"]
    sizes["organizations"] = args.organizations or sizes["organizations"]

    run_each(
        "search",
        lambda url: measure(url, sizes, args.repeats, args.seed),
        report,
        args.postgres,
        args.database_url,
    )


if __name__ == "__main__":
    main()
