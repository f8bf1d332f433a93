"""Core performance figures of mcp-crm, each measured against its own baseline in the same run.

1. `contacts_get` median latency vs a no-op tool on the same server (in-memory MCP client).
2. `contacts_create_many` rows/s (batches through the MCP tool) vs raw `sqlite3.executemany` of the
   same rows into a separately migrated copy of the `contacts` table.
3. `contacts_list` (filter + sort) page 1 vs a deep page reached by following `next_cursor`.

    python bench/core.py                       # 200,000 contacts in a fresh SQLite file
    python bench/core.py --quick               # small smoke run
    python bench/core.py --database-url postgresql+asyncpg://postgres@127.0.0.1:5432/mcp_crm_bench

Prints a table, notes (query plans, breakdowns) and, as the last line, the figures as one JSON object.
The no-op tool is added to the server object here only; it is not part of the product.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import sqlite3
import statistics
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

from benchkit import captured_sql, machine_info
from mcp import Client
from mcp_types import CallToolResult, TextContent
from rich.console import Console
from rich.table import Table
from sqlalchemy import JSON, Connection
from sqlalchemy.engine import make_url

from mcp_crm.catalog.server import build_server
from mcp_crm.entities import ENTITIES
from mcp_crm.entities.contacts import Contact
from mcp_crm.entities.values import primary_value
from mcp_crm.ids import new_id
from mcp_crm.operations.workspace import local_actor
from mcp_crm.runtime import settle
from mcp_crm.search.terms import document
from mcp_crm.store import Database, migrate

FULL = {"contacts": 200_000, "calls": 500, "create_rows": 20_000, "list_repeats": 50}
QUICK = {"contacts": 5_000, "calls": 100, "create_rows": 2_000, "list_repeats": 20}
WARMUP_CALLS = 50

out = Console(width=None if sys.stdout.isatty() else 150, highlight=False)
err = Console(stderr=True, highlight=False)


# --------------------------------------------------------------------------------------------- results


@dataclass
class Figure:
    key: str
    title: str
    measured: float | None
    baseline: float | None
    unit: str
    target_op: Literal["<=", ">="]
    target: float
    notes: list[str] = field(default_factory=list)
    details: dict[str, Any] = field(default_factory=dict)

    @property
    def ratio(self) -> float | None:
        if self.measured is None or not self.baseline:
            return None
        return self.measured / self.baseline

    @property
    def passed(self) -> bool | None:
        ratio = self.ratio
        if ratio is None:
            return None
        return ratio <= self.target if self.target_op == "<=" else ratio >= self.target

    def as_json(self) -> dict[str, Any]:
        return {
            "title": self.title,
            "unit": self.unit,
            "measured": _round(self.measured),
            "baseline": _round(self.baseline),
            "ratio": _round(self.ratio),
            "target": f"ratio {self.target_op} {self.target}",
            "passed": self.passed,
            "details": self.details,
            "notes": self.notes,
        }


def _round(value: float | None, digits: int = 3) -> float | None:
    return None if value is None else round(value, digits)


def median_ms(samples: list[float]) -> float:
    return statistics.median(samples) * 1000


def p90_ms(samples: list[float]) -> float:
    return statistics.quantiles(samples, n=10)[-1] * 1000 if len(samples) >= 2 else samples[0] * 1000


# ----------------------------------------------------------------------------------------- MCP helpers


class ToolFailed(RuntimeError):
    pass


async def call(client: Client, name: str, arguments: dict[str, Any]) -> dict[str, Any]:
    result: CallToolResult = await client.call_tool(name, arguments)
    if result.is_error:
        text = " ".join(c.text for c in result.content if isinstance(c, TextContent))
        raise ToolFailed(f"{name} failed: {text}")
    return result.structured_content or {}


class OutputValidationClock:
    """Times the client's own check of each result against the tool's outputSchema (jsonschema),
    which is part of every in-memory call measured here; reported so the server's share is visible."""

    def __init__(self, client: Client) -> None:
        self.samples: dict[str, list[float]] = {}
        session = client.session
        original = session.validate_tool_result

        async def timed(name: str, result: CallToolResult) -> None:
            start = time.perf_counter()
            try:
                await original(name, result)
            finally:
                self.samples.setdefault(name, []).append(time.perf_counter() - start)

        session.validate_tool_result = timed  # type: ignore[method-assign]

    def reset(self) -> None:
        self.samples.clear()

    def total(self, name: str) -> float:
        return sum(self.samples.get(name, []))


async def bench_noop() -> dict[str, bool]:
    """Does nothing: the baseline cost of one tool call on this server."""
    return {"ok": True}


# ------------------------------------------------------------------------------------------- test data

FIRST = [
    "Ada",
    "Alan",
    "Barbara",
    "Carl",
    "Dana",
    "Edsger",
    "Frances",
    "Grace",
    "Hedy",
    "Ivan",
    "Joan",
    "Ken",
    "Linus",
    "Margaret",
    "Niklaus",
    "Olga",
]
SYLLABLES = [
    "ba",
    "ce",
    "di",
    "fo",
    "gu",
    "ha",
    "ke",
    "li",
    "mo",
    "nu",
    "pa",
    "re",
    "si",
    "to",
    "vu",
    "wa",
    "xe",
    "yo",
    "za",
    "bel",
    "cor",
    "dan",
    "fen",
    "gar",
    "hol",
]
TITLES = [None, "CTO", "Engineer", "Buyer", "Head of Sales", "Analyst", "Founder"]


def contact_input(rng: random.Random, serial: int) -> dict[str, Any]:
    """One contact as a `contacts_create_many` item, every writable field but owner_id given."""
    first = rng.choice(FIRST)
    last = "".join(rng.choice(SYLLABLES) for _ in range(rng.randint(2, 4))).capitalize()
    return {
        "first_name": first,
        "last_name": last,
        "emails": [{"value": f"{first.lower()}.{last.lower()}{serial}@example.com", "label": "work", "primary": True}],
        "phones": [{"value": f"+49 30 {rng.randint(1_000_000, 9_999_999)}", "label": "mobile", "primary": True}],
        "job_title": rng.choice(TITLES),
        "notes": None,
        "address": None,
        "birthday": f"19{rng.randint(50, 99)}-{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d}",
        "tags": ["bench", rng.choice(["lead", "customer", "partner"])],
    }


def contact_batches(rng: random.Random, total: int, size: int, first_serial: int = 0) -> Iterator[list[dict[str, Any]]]:
    for start in range(0, total, size):
        yield [contact_input(rng, first_serial + start + i) for i in range(min(size, total - start))]


# ------------------------------------------------------------------------------------------ raw SQLite

CONTACTS_TABLE = Contact.__table__  # type: ignore[attr-defined]
COLUMNS = [c.name for c in CONTACTS_TABLE.columns]
JSON_COLUMNS = {c.name for c in CONTACTS_TABLE.columns if isinstance(c.type, JSON)}
DEFAULTS = {  # columns the tool fills in by their declared defaults (email_opt_out false) or leaves empty
    c.name: c.default.arg if c.default is not None and c.default.is_scalar else None for c in CONTACTS_TABLE.columns
}
INSERT_SQL = f"INSERT INTO contacts ({', '.join(COLUMNS)}) VALUES ({', '.join('?' for _ in COLUMNS)})"


CONTACTS_ENTITY = ENTITIES["contacts"]
EVENT_SQL = (
    "INSERT INTO change_events (id, workspace_id, entity, record_id, action, user_id, via, tool, after, occurred_at) "
    "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
)
DOCUMENT_SQL = (
    "INSERT INTO search_documents (workspace_id, entity, record_id, title, body, title_terms, id_terms, body_terms, "
    "field_terms) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)"
)
WORD_SQL = "INSERT OR IGNORE INTO search_words (workspace_id, word) VALUES (?, ?)"


def json_text(value: Any) -> str:
    """JSON as the product's engine stores it (None becomes the JSON text 'null', as SQLAlchemy does)."""
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


def sqlite_stamp(moment: datetime) -> str:
    """A UTC datetime in SQLAlchemy's SQLite storage format."""
    return moment.astimezone(UTC).replace(tzinfo=None).isoformat(sep=" ", timespec="microseconds")


def raw_row(item: dict[str, Any], workspace_id: str, owner_id: str, stamp: str) -> tuple[Any, ...]:
    values = (
        DEFAULTS
        | item
        | {
            "id": new_id(),
            "workspace_id": workspace_id,
            "created_at": stamp,
            "updated_at": stamp,
            "revision": 1,
            "owner_id": owner_id,
            "email": primary_value(item["emails"]),
            "phone": primary_value(item["phones"]),
            "custom": {},
        }
    )
    return tuple(json_text(values[c]) if c in JSON_COLUMNS else values[c] for c in COLUMNS)


async def migrated_sqlite(path: Path) -> tuple[str, str]:
    """A fresh SQLite database migrated by the product, with its local workspace and owner."""
    db = Database(f"sqlite:///{path}")
    try:
        await migrate(db)
        actor = await local_actor(db, via="cli")
    finally:
        await db.dispose()
    assert actor.user_id is not None
    return actor.workspace_id, actor.user_id


class RawSqliteWriter:
    """`sqlite3.executemany` into a separately migrated database, one committed transaction per batch,
    under the pragmas and BEGIN IMMEDIATE the product's SQLite engine uses."""

    def __init__(self, path: Path, workspace_id: str, owner_id: str) -> None:
        self.workspace_id, self.owner_id = workspace_id, owner_id
        self.conn = sqlite3.connect(path, isolation_level=None)
        for pragma in ("journal_mode=WAL", "synchronous=NORMAL", "foreign_keys=ON"):
            self.conn.execute(f"PRAGMA {pragma}")

    def insert(self, batch: list[dict[str, Any]]) -> None:
        stamp = sqlite_stamp(datetime.now(UTC))
        rows = [raw_row(item, self.workspace_id, self.owner_id, stamp) for item in batch]
        self.conn.execute("BEGIN IMMEDIATE")
        self.conn.executemany(INSERT_SQL, rows)
        self.conn.execute("COMMIT")

    def prepared_writes(self, batch: list[dict[str, Any]]) -> list[tuple[str, list[tuple[Any, ...]]]]:
        """Every row the product writes for a batch of new contacts, made ahead of the clock: the contacts, one
        change event each (its `after` the record as JSON), one search document each (made by the product's
        own `document`, so the FTS5 triggers index the same tokens) and the new vocabulary."""
        stamp = sqlite_stamp(datetime.now(UTC))
        contacts = [raw_row(item, self.workspace_id, self.owner_id, stamp) for item in batch]
        events, documents, vocabulary = [], [], set()
        for row in contacts:
            record = dict(zip(COLUMNS, row, strict=True))
            events.append((new_id(), self.workspace_id, "contacts", record["id"], "created", self.owner_id, "cli",
                           "contacts_create_many", json_text(record), stamp))  # fmt: skip
            doc = document(CONTACTS_ENTITY, DEFAULTS | batch[len(documents)])
            documents.append((self.workspace_id, "contacts", record["id"], *doc.row().values()))
            vocabulary |= doc.vocabulary
        words = [(self.workspace_id, word) for word in sorted(vocabulary)]
        return [(EVENT_SQL, events), (DOCUMENT_SQL, documents), (WORD_SQL, words), (INSERT_SQL, contacts)]

    def insert_all(self, writes: list[tuple[str, list[tuple[Any, ...]]]]) -> None:
        self.conn.execute("BEGIN IMMEDIATE")
        for statement, rows in writes:
            self.conn.executemany(statement, rows)
        self.conn.execute("COMMIT")

    def count(self) -> int:
        (count,) = self.conn.execute("SELECT count(*) FROM contacts").fetchone()
        return int(count)

    def close(self) -> None:
        self.conn.close()


# ------------------------------------------------------------------------------------- SQL inspection


def list_statement(statements: list[tuple[str, Any]]) -> tuple[str, Any]:
    for sql, params in statements:
        flat = " ".join(sql.split())
        if flat.startswith("SELECT contacts.id") and "ORDER BY" in flat:
            return sql, params
    raise LookupError("no contacts list SELECT was captured")


async def inspect_sql(url: str, sqlite: bool, queries: dict[str, tuple[str, Any]], repeats: int) -> dict[str, Any]:
    """The plan of each captured statement and its median time run alone through the engine (no MCP)."""
    prefix = "EXPLAIN QUERY PLAN " if sqlite else "EXPLAIN "

    def inspect(conn: Connection) -> dict[str, Any]:
        found: dict[str, Any] = {}
        for label, (sql, params) in queries.items():
            plan = [str(row[-1]) for row in conn.exec_driver_sql(prefix + sql, params).all()]
            samples = []
            for _ in range(repeats):
                start = time.perf_counter()
                conn.exec_driver_sql(sql, params).all()
                samples.append(time.perf_counter() - start)
            found[label] = {"plan": plan, "sql_median_ms": round(median_ms(samples), 3)}
        return found

    db = Database(url)
    try:
        return await db.read(inspect)
    finally:
        await db.dispose()


async def analyze_if_autovacuum_is_off(url: str) -> bool:
    """Production PostgreSQL keeps statistics fresh with autovacuum; where it is off (as on this machine),
    ANALYZE once after the bulk load so the plans measured are the ones a normal server would choose."""
    db = Database(url)
    try:
        if await db.read(lambda conn: conn.exec_driver_sql("SHOW autovacuum").scalar()) == "on":
            return False
        await db.write(lambda conn: conn.exec_driver_sql("ANALYZE"))
        return True
    finally:
        await db.dispose()


async def postgres_statistics(url: str) -> dict[str, Any]:
    """Whether the planner has statistics for `contacts` (a never-analyzed table gets default estimates)."""
    query = "SELECT greatest(last_analyze, last_autoanalyze) FROM pg_stat_user_tables WHERE relname = 'contacts'"
    db = Database(url)
    try:
        autovacuum, analyzed = await db.read(
            lambda conn: (conn.exec_driver_sql("SHOW autovacuum").scalar(), conn.exec_driver_sql(query).scalar())
        )
    finally:
        await db.dispose()
    return {"autovacuum": autovacuum, "contacts_last_analyzed": None if analyzed is None else str(analyzed)}


# ---------------------------------------------------------------------------------------------- figures


async def figure_create(
    client: Client,
    clock: OutputValidationClock,
    batches: list[list[dict[str, Any]]],
    sqlite: bool,
    workdir: Path,
) -> Figure:
    """Each batch goes through the MCP tool, then (SQLite only) straight into the raw baseline database,
    so both see the same machine load; the raw insert blocks the event loop, which is idle between calls."""
    rows, size = sum(len(b) for b in batches), len(batches[0])
    raw = floor = None
    if sqlite:
        raw_path, floor_path = workdir / "raw-baseline.db", workdir / "raw-same-writes.db"
        raw = RawSqliteWriter(raw_path, *await migrated_sqlite(raw_path))
        floor = RawSqliteWriter(floor_path, *await migrated_sqlite(floor_path))
    clock.reset()
    mcp_seconds = raw_seconds = floor_seconds = 0.0
    try:
        for batch in batches:
            start = time.perf_counter()
            await call(client, "contacts_create_many", {"items": batch})
            mcp_seconds += time.perf_counter() - start
            if raw is not None and floor is not None:
                start = time.perf_counter()
                raw.insert(batch)
                raw_seconds += time.perf_counter() - start
                writes = floor.prepared_writes(batch)
                start = time.perf_counter()
                floor.insert_all(writes)
                floor_seconds += time.perf_counter() - start
        if raw is not None and floor is not None:
            assert raw.count() == rows == floor.count(), (raw.count(), floor.count())
    finally:
        for writer in (raw, floor):
            if writer is not None:
                writer.close()
    validation = clock.total("contacts_create_many")
    figure = Figure(
        key="create_many",
        title=f"contacts_create_many rows/s, batches of {size} (MCP) vs raw sqlite3.executemany",
        measured=rows / mcp_seconds,
        baseline=rows / raw_seconds if raw is not None else None,
        unit="rows/s",
        target_op=">=",
        target=0.5,
        details={
            "rows": rows,
            "batch": size,
            "mcp_seconds": round(mcp_seconds, 3),
            "raw_seconds": round(raw_seconds, 3) if raw is not None else None,
            "same_writes_sql_seconds": round(floor_seconds, 3) if floor is not None else None,
            "client_output_validation_seconds": round(validation, 3),
            "mcp_rows_per_s_without_client_validation": round(rows / (mcp_seconds - validation)),
        },
    )
    figure.notes.append(
        f"{rows:,} rows through MCP in {mcp_seconds:.2f} s, of which {validation:.2f} s "
        f"({validation / mcp_seconds:.0%}) is the client checking results against the outputSchema; "
        f"without it {rows / (mcp_seconds - validation):,.0f} rows/s."
    )
    if raw is None:
        figure.notes.append("Raw sqlite3 baseline skipped: the database is not SQLite.")
    else:
        figure.notes.append(
            f"Raw baseline ({raw_seconds:.2f} s): the same rows, batch by batch interleaved with the MCP calls; "
            f"new ids/timestamps made the same way, JSON columns as JSON text, one BEGIN IMMEDIATE..COMMIT "
            f"per batch, WAL + synchronous=NORMAL, into a separately migrated database (same indexes). "
            f"The product also validates every item, checks references, writes one change_events row per "
            f"record and returns each record's id and name."
        )
        figure.notes.append(
            f"SQL floor ({floor_seconds:.2f} s, {rows / floor_seconds:,.0f} rows/s, product at "
            f"{floor_seconds / mcp_seconds:.2f} of it): executemany of every row the product writes (contacts, "
            f"change events, search documents through the FTS5 triggers, new vocabulary), made before the clock "
            f"starts, one transaction per batch. No Python above the driver can beat it."
        )
    return figure


async def figure_get(client: Client, clock: OutputValidationClock, contact_id: str, calls: int) -> Figure:
    get_args = {"id": contact_id}
    for _ in range(WARMUP_CALLS):
        await call(client, "bench_noop", {})
        await call(client, "contacts_get", get_args)
    clock.reset()
    noop, get = [], []
    for _ in range(calls):  # interleaved, so both see the same machine load
        start = time.perf_counter()
        await call(client, "bench_noop", {})
        noop.append(time.perf_counter() - start)
        start = time.perf_counter()
        await call(client, "contacts_get", get_args)
        get.append(time.perf_counter() - start)
    validation = median_ms(clock.samples.get("contacts_get", [0.0]))
    figure = Figure(
        key="get_latency",
        title="contacts_get median latency vs no-op tool (in-memory client)",
        measured=median_ms(get),
        baseline=median_ms(noop),
        unit="ms",
        target_op="<=",
        target=2.0,
        details={
            "calls_each": calls,
            "warmup_each": WARMUP_CALLS,
            "get_p90_ms": round(p90_ms(get), 3),
            "noop_p90_ms": round(p90_ms(noop), 3),
            "get_client_output_validation_median_ms": round(validation, 3),
        },
    )
    figure.notes.append(
        f"{calls} interleaved calls each after {WARMUP_CALLS} warm-up calls each; p90 get {p90_ms(get):.3f} ms, "
        f"noop {p90_ms(noop):.3f} ms; client outputSchema check of a get result: median {validation:.3f} ms."
    )
    return figure


async def figure_list(
    client: Client,
    clock: OutputValidationClock,
    url: str,
    sqlite: bool,
    owner_id: str,
    limit: int,
    deep_page: int,
    repeats: int,
) -> Figure:
    filter_ = {"field": "owner_id", "op": "eq", "value": owner_id}
    sort = [{"field": "last_name", "direction": "asc"}]
    base = {"filter": filter_, "sort": sort, "limit": limit}
    total = (await call(client, "contacts_list", base | {"limit": 1, "include_total": True}))["total"]
    deep = min(deep_page, total // limit)
    figure = Figure(
        key="list_deep_page",
        title=f"contacts_list page {deep:,} vs page 1 median latency (limit {limit})",
        measured=None,
        baseline=None,
        unit="ms",
        target_op="<=",
        target=1.5,
        details={"filter": filter_, "sort": sort, "limit": limit, "matching": total, "deep_page": deep},
    )
    figure.notes.append(f"Filter {json.dumps(filter_)} (matches {total:,} rows), sort {json.dumps(sort)}.")
    if deep < 2:
        figure.notes.append("Too few matching contacts for a deep page; skipped.")
        return figure

    cursor: str | None = None
    start = time.perf_counter()
    for page in range(1, deep):
        result = await call(client, "contacts_list", base | ({"cursor": cursor} if cursor else {}))
        cursor = result["next_cursor"]
        assert cursor, f"page {page} has no next_cursor"
    walk = time.perf_counter() - start
    figure.details |= {"walk_pages": deep - 1, "walk_seconds": round(walk, 3)}
    figure.notes.append(
        f"Walk to page {deep:,}: {deep - 1:,} calls following next_cursor in {walk:.1f} s "
        f"({walk / (deep - 1) * 1000:.2f} ms/page on average)."
    )

    deep_args = base | {"cursor": cursor}
    first, later = [], []
    for _ in range(3):
        await call(client, "contacts_list", base)
        await call(client, "contacts_list", deep_args)
    clock.reset()
    for _ in range(repeats):
        start = time.perf_counter()
        await call(client, "contacts_list", base)
        first.append(time.perf_counter() - start)
        start = time.perf_counter()
        deep_result = await call(client, "contacts_list", deep_args)
        later.append(time.perf_counter() - start)
    assert len(deep_result["items"]) == limit, len(deep_result["items"])
    figure.measured, figure.baseline = median_ms(later), median_ms(first)
    validation = median_ms(clock.samples["contacts_list"])
    figure.details |= {
        "repeats": repeats,
        "page1_p90_ms": round(p90_ms(first), 3),
        "deep_p90_ms": round(p90_ms(later), 3),
    }

    statements: dict[str, list[tuple[str, Any]]] = {"page 1": [], f"page {deep}": []}
    for label, args in (("page 1", base), (f"page {deep}", deep_args)):
        with captured_sql(statements[label]):
            await call(client, "contacts_list", args)
    queries = {label: list_statement(found) for label, found in statements.items()}
    inspected = await inspect_sql(url, sqlite, queries, repeats=min(repeats, 20))
    figure.details["sql"] = {
        label: {"statement": " ".join(queries[label][0].split()), **info} for label, info in inspected.items()
    }
    for label, info in inspected.items():
        figure.notes.append(
            f"{label} SQL alone: median {info['sql_median_ms']:.3f} ms; plan: " + " | ".join(info["plan"])
        )
    if not sqlite:
        stats = await postgres_statistics(url)
        figure.details["postgres_statistics"] = stats
        figure.notes.append(
            f"PostgreSQL autovacuum={stats['autovacuum']}; contacts last analyzed: "
            f"{stats['contacts_last_analyzed'] or 'never (the planner has no row estimates)'}."
        )
    figure.details["client_output_validation_median_ms"] = round(validation, 3)
    figure.notes.append(
        f"Of a {figure.baseline:.1f} ms page-1 call, the client's outputSchema check of the {limit} records takes "
        f"{validation:.1f} ms (median) and the SQL alone {inspected['page 1']['sql_median_ms']:.1f} ms."
    )
    return figure


async def load_contacts(client: Client, rng: random.Random, count: int, batch: int, first_serial: int) -> float:
    start = time.perf_counter()
    done = 0
    with err.status("") as status:
        for items in contact_batches(rng, count, batch, first_serial):
            await call(client, "contacts_create_many", {"items": items})
            done += len(items)
            rate = done / (time.perf_counter() - start)
            status.update(f"loading contacts: {done:,}/{count:,} ({rate:,.0f} rows/s)")
    return time.perf_counter() - start


# ---------------------------------------------------------------------------------------------- running


@dataclass
class Settings:
    database_url: str
    contacts: int
    calls: int
    create_rows: int
    create_batch: int
    load_batch: int
    limit: int
    deep_page: int
    list_repeats: int
    seed: int
    quick: bool
    workdir: Path


async def run(settings: Settings) -> tuple[list[Figure], dict[str, Any]]:
    url = settings.database_url
    sqlite = make_url(url).get_backend_name() == "sqlite"
    rng = random.Random(settings.seed)
    server = build_server(url, via="cli")
    server.add_tool(bench_noop, name="bench_noop", description="Benchmark baseline: does nothing.")
    settle()  # as `mcp-crm serve` does once its server is built
    info: dict[str, Any] = {}

    async with Client(server) as client:
        clock = OutputValidationClock(client)
        me = await call(client, "users_me", {})
        existing = (await call(client, "contacts_list", {"limit": 1, "include_total": True}))["total"]
        if existing:
            err.print(f"[yellow]The database already holds {existing:,} contacts; they count toward the total.")

        err.print(
            f"figure 2: contacts_create_many, {settings.create_rows:,} rows in batches of {settings.create_batch}"
        )
        batches = list(contact_batches(rng, settings.create_rows, settings.create_batch))
        create = await figure_create(client, clock, batches, sqlite, settings.workdir)

        to_load = max(0, settings.contacts - existing - settings.create_rows)
        load_seconds = await load_contacts(client, rng, to_load, settings.load_batch, first_serial=settings.create_rows)
        info["bulk_load"] = {
            "rows": to_load,
            "batch": settings.load_batch,
            "seconds": round(load_seconds, 1),
            "rows_per_s": round(to_load / load_seconds) if to_load else None,
            "via": "contacts_create_many (MCP)",
        }
        err.print(f"loaded {to_load:,} contacts in {load_seconds:.1f} s")
        if not sqlite:
            info["analyzed_by_bench"] = await analyze_if_autovacuum_is_off(url)

        err.print(f"figure 1: contacts_get vs bench_noop, {settings.calls} calls each")
        some_id = (await call(client, "contacts_list", {"limit": 1, "sort": [{"field": "email"}]}))["items"][0]["id"]
        get = await figure_get(client, clock, some_id, settings.calls)

        err.print(f"figure 3: contacts_list page 1 vs page {settings.deep_page:,} (or the last full page)")
        listing = await figure_list(
            client, clock, url, sqlite, me["id"], settings.limit, settings.deep_page, settings.list_repeats
        )
    return [get, create, listing], info


def report(figures: list[Figure], summary: dict[str, Any]) -> None:
    table = Table(title=f"mcp-crm core benchmark ({summary['database']}, {summary['contacts']:,} contacts)")
    for column in ("#", "figure", "measured", "baseline", "ratio", "target", "result"):
        table.add_column(column, justify="right" if column in ("measured", "baseline", "ratio") else "left")
    for number, figure in enumerate(figures, 1):
        ratio, passed = figure.ratio, figure.passed
        table.add_row(
            str(number),
            figure.title,
            "-" if figure.measured is None else f"{figure.measured:,.3f} {figure.unit}",
            "-" if figure.baseline is None else f"{figure.baseline:,.3f} {figure.unit}",
            "-" if ratio is None else f"{ratio:.2f}",
            f"ratio {figure.target_op} {figure.target}",
            {True: "[green]PASS", False: "[red]FAIL", None: "[yellow]n/a"}[passed],
        )
    out.print(table)
    for number, figure in enumerate(figures, 1):
        for note in figure.notes:
            out.print(f"  [{number}] {note}", soft_wrap=True)
    out.print(f"  bulk load: {json.dumps(summary['bulk_load'])}", soft_wrap=True)
    out.print(f"  machine: {json.dumps(summary['machine'])}", soft_wrap=True)
    print(json.dumps(summary | {"figures": {f.key: f.as_json() for f in figures}}, default=str), flush=True)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument(
        "--contacts", type=int, help=f"contacts in the table for figure 3 (default {FULL['contacts']:,})"
    )
    parser.add_argument("--database-url", help="default: a fresh SQLite file in a temporary directory")
    parser.add_argument("--quick", action="store_true", help=f"small smoke run ({QUICK['contacts']:,} contacts)")
    parser.add_argument("--calls", type=int, help=f"timed calls per tool for figure 1 (default {FULL['calls']})")
    parser.add_argument("--create-rows", type=int, help=f"rows for figure 2 (default {FULL['create_rows']:,})")
    parser.add_argument("--create-batch", type=int, default=100, help="items per call for figure 2 (default 100)")
    parser.add_argument("--load-batch", type=int, default=500, help="items per call for the bulk load (default 500)")
    parser.add_argument("--limit", type=int, default=25, help="page size for figure 3 (default 25)")
    parser.add_argument("--deep-page", type=int, default=2000, help="deep page number (default 2000)")
    parser.add_argument("--list-repeats", type=int, help=f"timed calls per page (default {FULL['list_repeats']})")
    parser.add_argument("--seed", type=int, default=1)
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    sizes = QUICK if args.quick else FULL
    with tempfile.TemporaryDirectory(prefix="mcp-crm-bench-") as tmp:
        workdir = Path(tmp)
        settings = Settings(
            database_url=args.database_url or f"sqlite:///{workdir / 'bench.db'}",
            contacts=args.contacts if args.contacts is not None else sizes["contacts"],
            calls=args.calls or sizes["calls"],
            create_rows=args.create_rows or sizes["create_rows"],
            create_batch=args.create_batch,
            load_batch=args.load_batch,
            limit=args.limit,
            deep_page=args.deep_page,
            list_repeats=args.list_repeats or sizes["list_repeats"],
            seed=args.seed,
            quick=args.quick,
            workdir=workdir,
        )
        started = time.perf_counter()
        machine_before = machine_info()
        figures, info = asyncio.run(run(settings))
        machine = machine_before | {"load_average_after": [round(x, 2) for x in os.getloadavg()]}
        summary = {
            "bench": "core",
            "database": make_url(settings.database_url).get_backend_name(),
            "contacts": settings.contacts,
            "quick": settings.quick,
            "seconds": round(time.perf_counter() - started, 1),
            **info,
            "machine": machine,
        }
        report(figures, summary)


if __name__ == "__main__":
    main()
