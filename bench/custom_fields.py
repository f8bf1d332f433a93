"""Filters and sorts on custom fields (`custom.<key>`), each field defined twice: indexed and not.

Contacts carry `tier` (single_option, skewed), `score` (number), `renewal` (date) and `products`
(multiple_options), each with the same value under `<key>_plain`, a field without `indexed`. Every query
runs through `Crm.list` (limit 25) on both fields, against baselines measured in the same run: the same
list filtered on an indexed column (`last_name` eq) and a get by primary key.

    python bench/custom_fields.py                   # 200,000 contacts in a fresh SQLite file
    python bench/custom_fields.py --postgres        # also on a scratch PostgreSQL database, dropped at the end
    python bench/custom_fields.py --contacts 20000  # a smaller table

Prints a table, the query plans, and as the last line the figures as one JSON object. The contacts are
bulk-inserted with Core (no search documents: no query here uses `q`); definitions go through `Crm.create`
before the load, so the expression indexes are filled as the rows arrive.
"""

from __future__ import annotations

import argparse
import base64
import json
import random
import re
import statistics
import sys
import time
from collections.abc import Awaitable, Callable, Iterator
from datetime import UTC, date, datetime, timedelta
from typing import Any

from benchkit import PG_ADMIN, captured_sql, run_each
from pydantic import TypeAdapter
from rich.console import Console
from rich.table import Table
from sqlalchemy import Connection, insert, text
from sqlalchemy.engine import make_url

from mcp_crm.entities import ENTITIES
from mcp_crm.entities.models import create_model_for
from mcp_crm.ids import new_id
from mcp_crm.operations import Actor, Crm, ListQuery
from mcp_crm.operations.workspace import local_actor
from mcp_crm.query import FilterNode, SortKey
from mcp_crm.store import Database, migrate

CONTACTS, FIELDS = ENTITIES["contacts"], ENTITIES["fields"]
BATCH = 5_000
FILTER = TypeAdapter(FilterNode)
TIERS = {"gold": 0.05, "silver": 0.25, "bronze": 0.60}  # the other 10% have no tier
PRODUCTS = {"crm": 0.5, "billing": 0.3, "analytics": 0.2, "support": 0.1, "api": 0.01}
SCORE_ABOVE = 990.0  # scores are 0..1000 on 90% of the contacts: ~0.9% match
RENEWALS = (date(2026, 1, 1), 730)  # first day, days: ~3.5% of the contacts renew in one month
MONTH = ["2026-06-01", "2026-06-30"]
BY_NAME = ("last_name", "asc")
SYLLABLES = [
    "ba", "bel", "ce", "cor", "da", "dan", "di", "fen", "fo", "gar", "gu", "ha", "hol", "ke", "ki",
    "la", "li", "lo", "ma", "mo", "ne", "nu", "pa", "per", "re", "ri", "sa", "si", "ta", "to",
]  # fmt: skip
FIRST = [
    "Ada", "Alan", "Barbara", "Carl", "Dana", "Edsger", "Frances", "Grace",
    "Hedy", "Ivan", "Joan", "Ken", "Linus", "Margaret", "Niklaus", "Olga",
]  # fmt: skip

out = Console(width=None if sys.stdout.isatty() else 160, highlight=False)
err = Console(stderr=True, highlight=False)

# ------------------------------------------------------------------------------------------- test data


def definitions() -> Iterator[dict[str, Any]]:
    options = {"tier": list(TIERS), "products": list(PRODUCTS)}
    types = {"tier": "single_option", "score": "number", "renewal": "date", "products": "multiple_options"}
    for indexed in (True, False):
        for key, kind in types.items():
            name = key if indexed else f"{key}_plain"
            choices = [{"key": o, "label": o.capitalize()} for o in options.get(key, [])]
            field = {"entity": "contacts", "label": name, "key": name, "type": kind, "options": choices}
            yield field | {"indexed": indexed}


def custom_values(rng: random.Random) -> dict[str, Any]:
    values: dict[str, Any] = {}
    pick = rng.random()
    tier = next((t for t, p in TIERS.items() if (pick := pick - p) < 0), None)
    if tier:
        values["tier"] = tier
    if rng.random() < 0.9:
        values["score"] = round(rng.uniform(0, 1000), 2)
    if rng.random() < 0.85:
        values["renewal"] = (RENEWALS[0] + timedelta(days=rng.randrange(RENEWALS[1]))).isoformat()
    products = [p for p, share in PRODUCTS.items() if rng.random() < share]
    if products:
        values["products"] = products
    return values | {f"{k}_plain": v for k, v in values.items()}


def contact(rng: random.Random, now: datetime, actor: Actor) -> dict[str, Any]:
    first = rng.choice(FIRST)
    last = "".join(rng.choice(SYLLABLES) for _ in range(rng.randint(2, 4))).capitalize()
    email = f"{first.lower()}.{last.lower()}{rng.randrange(10**6)}@example.com"
    number = f"+49 30 {rng.randint(1_000_000, 9_999_999)}"
    created = now - timedelta(seconds=rng.randrange(3 * 365 * 86400))
    return {
        "id": new_id(),
        "workspace_id": actor.workspace_id,
        "created_at": created,
        "updated_at": created,
        "revision": 1,
        "first_name": first,
        "last_name": last,
        "emails": [{"value": email, "label": "work", "primary": True}],
        "email": email,
        "phones": [{"value": number, "label": "mobile", "primary": True}],
        "phone": number,
        "job_title": None,
        "notes": None,
        "address": None,
        "birthday": None,
        "tags": ["bench"],
        "owner_id": actor.user_id,
        "custom": custom_values(rng),
    }


async def load(db: Database, actor: Actor, count: int, rng: random.Random) -> list[dict[str, Any]]:
    table = CONTACTS.table.__table__  # type: ignore[attr-defined]
    now, rows, start = datetime.now(UTC), [], time.perf_counter()
    with err.status("") as status:
        for done in range(0, count, BATCH):
            batch = [contact(rng, now, actor) for _ in range(min(BATCH, count - done))]
            await db.write(lambda conn, batch=batch: conn.execute(insert(table), batch))
            rows += batch
            status.update(f"contacts: {len(rows):,} ({len(rows) / (time.perf_counter() - start):,.0f}/s)")
    return rows


# ---------------------------------------------------------------------------------------------- timing


def ms(samples: list[float], q: float | None = None) -> float:
    if q is None or len(samples) < 2:
        return statistics.median(samples) * 1000
    return statistics.quantiles(samples, n=100)[round(q * 100) - 1] * 1000


def deep_cursor(cursor: str, values: list[Any]) -> str:
    """The product's page-1 cursor moved to another row: a keyset cursor is the last row's sort values."""
    payload = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
    payload["v"] = values
    return base64.urlsafe_b64encode(json.dumps(payload, separators=(",", ":")).encode()).decode().rstrip("=")


def plan(conn: Connection, sqlite: bool, sql: str, params: Any) -> str:
    rows = conn.exec_driver_sql(("EXPLAIN QUERY PLAN " if sqlite else "EXPLAIN ") + sql, params).all()
    lines = [str(row[-1]) if sqlite else re.sub(r"\s+\(cost=[^)]*\)", "", row[0]).strip() for row in rows]
    return " | ".join(line for line in lines if sqlite or not line.startswith(("Sort Key", "Output")))


async def measure(url: str, count: int, repeats: int, seed: int) -> dict[str, Any]:
    rng = random.Random(seed)
    database = make_url(url).get_backend_name()
    # one engine per variant: SQLAlchemy's compiled-SQL cache keys `custom.<key>` without its key, so on one
    # engine `custom.score_plain` would run the SQL first compiled for `custom.score` (checked below)
    db, db_plain = Database(url), Database(url)
    try:
        await migrate(db)
        actor = await local_actor(db, via="cli")
        crm, crm_plain = Crm(db), Crm(db_plain)
        model = create_model_for(FIELDS)
        for definition in definitions():
            await crm.create(actor, FIELDS, model(**definition))
        err.print(f"{database}: loading {count:,} contacts")
        start = time.perf_counter()
        rows = await load(db, actor, count, rng)
        if database == "postgresql":
            await db.write(lambda conn: conn.execute(text("ANALYZE")))
        load_seconds = time.perf_counter() - start

        def listing(s: str, filter_: dict[str, Any] | None, sort: list[tuple[str, str]] | None, cursor: str = ""):
            query = ListQuery(
                filter=FILTER.validate_python(filter_) if filter_ else None,
                sort=[SortKey(field=f, direction=d) for f, d in sort] if sort else None,  # type: ignore[arg-type]
                cursor=cursor or None,
            )
            return lambda: (crm_plain if s else crm).list(actor, CONTACTS, query)

        scored = sorted(((r["custom"]["score"], r["id"]) for r in rows if "score" in r["custom"]), reverse=True)
        depth = min(len(scored) // 2, 100_000)  # scored rows before the deep page
        cases: dict[str, Callable[[str], Callable[[], Awaitable[Any]]]] = {
            f"a score > {SCORE_ABOVE:g}, by score desc": lambda s: listing(
                s, {"field": f"custom.score{s}", "op": "gt", "value": SCORE_ABOVE}, [(f"custom.score{s}", "desc")]
            ),
            "b tier = gold, by last_name": lambda s: listing(
                s, {"field": f"custom.tier{s}", "op": "eq", "value": "gold"}, [BY_NAME]
            ),
            f"c renewal in {MONTH[0][:7]} (default sort)": lambda s: listing(
                s, {"field": f"custom.renewal{s}", "op": "between", "value": MONTH}, None
            ),
            "d products contains api (default sort)": lambda s: listing(
                s, {"field": f"custom.products{s}", "op": "contains", "value": "api"}, None
            ),
            "e all, by score desc, page 1": lambda s: listing(s, None, [(f"custom.score{s}", "desc")]),
        }
        calls = {name: (make(""), make("_plain")) for name, make in cases.items()}
        for direction, (score, rid) in (("desc", scored[depth - 1]), ("asc", sorted(scored)[depth - 1])):
            pair = []
            for s in ("", "_plain"):
                sort = [(f"custom.score{s}", direction)]
                first = await listing(s, None, sort)()
                pair.append(listing(s, None, sort, deep_cursor(first.next_cursor, [score, rid])))
            calls[f"e all, by score {direction}, after {depth:,} scored (cursor)"] = (pair[0], pair[1])
        some = rows[len(rows) // 2]
        same_name = {"field": "last_name", "op": "eq", "value": some["last_name"]}
        calls["baseline: last_name = (indexed column), by last_name"] = (listing("", same_name, [BY_NAME]), None)
        calls["baseline: last_name =, default sort"] = (listing("", same_name, None), None)
        calls["baseline: get by id"] = (lambda: crm.get(actor, CONTACTS, some["id"]), None)

        statements: dict[str, tuple[str, Any]] = {}
        for name, pair in calls.items():  # warm-up; both fields give the same page; the plan of each list SQL
            pages = []
            for kind, call in zip(("indexed", "plain"), pair, strict=True):
                if call is None:
                    continue
                captured: list[tuple[str, Any]] = []
                with captured_sql(captured):
                    pages.append(await call())
                found = [c for c in captured if re.match(r"SELECT contacts\.id\b.*ORDER BY", " ".join(c[0].split()))]
                if found and "get" not in name:
                    assert ("_plain" in found[0][0]) == (kind == "plain"), f"{name} [{kind}] ran: {found[0][0]}"
                    statements[f"{name} ({kind})"] = found[0]
            if len(pages) == 2:
                ids = [[item["id"] for item in page.items] for page in pages]
                assert ids[0] == ids[1] and ids[0], f"{name}: indexed and plain pages differ or are empty"
        samples: dict[str, list[list[float]]] = {name: [[], []] for name in calls}
        for _ in range(repeats):  # interleaved, so every query sees the same machine load
            for name, pair in calls.items():
                for i, call in enumerate(pair):
                    if call is not None:
                        start = time.perf_counter()
                        await call()
                        samples[name][i].append(time.perf_counter() - start)
        sqlite = database == "sqlite"
        plans = await db.read(lambda conn: {k: plan(conn, sqlite, *v) for k, v in statements.items()})
        figures = {
            name: {
                kind: {"median_ms": round(ms(s), 3), "p95_ms": round(ms(s, 0.95), 3), "calls": len(s)}
                for kind, s in zip(("indexed", "plain"), pair, strict=True)
                if s
            }
            for name, pair in samples.items()
        }
        return {
            "database": database,
            "contacts": count,
            "load_seconds": round(load_seconds, 1),
            "figures": figures,
            "plans": plans,
        }
    finally:
        await db.dispose()
        await db_plain.dispose()


# --------------------------------------------------------------------------------------------- running


def report(result: dict[str, Any]) -> None:
    table = Table(title=f"custom field filters and sorts, {result['contacts']:,} contacts ({result['database']})")
    columns = ("contacts_list, limit 25", "indexed med", "p95", "plain med", "p95", "idx/plain", "idx/base")
    for column in columns:
        table.add_column(column, justify="left" if column.startswith("contacts") else "right")
    figures = result["figures"]
    base = figures["baseline: last_name = (indexed column), by last_name"]["indexed"]["median_ms"]
    for name, f in figures.items():
        ix, plain = f["indexed"], f.get("plain")
        table.add_row(
            name,
            f"{ix['median_ms']:.2f}",
            f"{ix['p95_ms']:.2f}",
            f"{plain['median_ms']:.2f}" if plain else "",
            f"{plain['p95_ms']:.2f}" if plain else "",
            f"{ix['median_ms'] / plain['median_ms']:.2f}" if plain else "",
            f"{ix['median_ms'] / base:.1f}",
        )
    out.print(table)
    out.print(f"  ms; {next(iter(figures.values()))['indexed']['calls']} calls each; load {result['load_seconds']} s")
    for name, text_ in result["plans"].items():
        out.print(f"  plan {name}: {text_}", soft_wrap=True, markup=False)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--contacts", type=int, default=200_000, help="contacts to load (default 200,000)")
    parser.add_argument("--repeats", type=int, default=30, help="timed calls per query and field (default 30)")
    parser.add_argument("--postgres", action="store_true", help=f"also run on a scratch database at {PG_ADMIN}")
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args(argv)

    run_each("custom_fields", lambda url: measure(url, args.contacts, args.repeats, args.seed), report, args.postgres)


if __name__ == "__main__":
    main()
