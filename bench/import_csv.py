"""`mcp-crm import contacts FILE --create-missing` throughput and memory, against baselines measured in the same run.

A generated, realistic CSV file of N contacts (first and last name, email, phone in several formats, a company
among 1,000 organization names, job title, city, country, tags, a birthday in mixed formats, some cells blank or
`n/a`; every row good) is imported through the product's code (`mcp_crm.transfer.import_file.import_file`, what
the command runs) into a fresh database, the organizations created by `--create-missing`:

1. Default mode (a check pass over the whole file, nothing written, then a write pass) and `--skip-bad-rows`
   (one pass), rows/s overall; the check and the write pass are timed apart with the progress callback's phases
   ("check", "import"; the check pass includes the setup before the first batch).
2. Baselines: (a) `Crm.create_many` of the same rows as prebuilt pydantic create models (organization ids
   filled in, organizations created first), batches of 1,000: the operations layer without CSV reading, cell
   parsing or name lookups, only the calls timed; (b) a raw `csv.reader` pass over the file, and the import's
   own reader (`CsvSource.batches`) alone, to show where the time goes.
3. Memory: every import and the create_many baseline run in a fresh subprocess (this script with a hidden flag)
   that reports its max RSS (`getrusage(RUSAGE_SELF).ru_maxrss`); the default-mode import runs with N/10 and
   with N rows: flat memory means the same peak for both.

Targets (from the issue): >= 10,000 rows/s for the import, and flat memory, taken here as the max RSS with N
rows <= 1.25x the max RSS with N/10 rows. Each import is timed once (it takes minutes); the machine may be
shared, so the load average is printed before and after.

    python bench/import_csv.py                    # 100,000 rows into fresh SQLite files
    python bench/import_csv.py --quick            # 5,000 rows
    python bench/import_csv.py --postgres         # also into scratch PostgreSQL databases (created, dropped)
    python bench/import_csv.py --database-url postgresql+asyncpg://postgres@127.0.0.1:5432/some_empty_db
                                                  # there instead (an empty one only: emptied before and
                                                  # after each run)
    python bench/import_csv.py --profile          # cProfile of the check and the write pass on SQLite (the
                                                  # import_batch calls, run synchronously), top hotspots

Prints a table and, as the last line, the figures as one JSON object.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import csv
import json
import os
import pstats
import random
import resource
import subprocess
import sys
import tempfile
import time
import unicodedata
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import asyncpg
from benchkit import PG_ADMIN, drop_postgres, machine_info, scratch_postgres
from rich.console import Console
from rich.table import Table
from sqlalchemy import Connection, func, select
from sqlalchemy.engine import make_url

from mcp_crm.entities import ENTITIES
from mcp_crm.entities.models import create_model_for
from mcp_crm.operations import Crm
from mcp_crm.operations.records import table_of
from mcp_crm.operations.workspace import local_actor
from mcp_crm.runtime import settle
from mcp_crm.store import Database, migrate
from mcp_crm.store.database import _in_transaction
from mcp_crm.transfer import import_file as importing_file
from mcp_crm.transfer import lenient
from mcp_crm.transfer.import_file import CsvSource, GrowingTables, ImportOptions, import_file
from mcp_crm.transfer.importing import import_batch
from mcp_crm.transfer.plan import Planned, Report

FULL, QUICK = 100_000, 5_000
PROFILE_ROWS = 20_000
ORGANIZATIONS = 1_000
CREATE_BATCH = 1_000
TARGET_ROWS_PER_S = 10_000
FLAT = 1.25  # max RSS with N rows / with N/10 rows at most this
CONTACTS, ORGS = ENTITIES["contacts"], ENTITIES["organizations"]
HEADERS = ["First Name", "Last Name", "Email", "Phone", "Company", "Job Title", "City", "Country", "Tags", "Birthday"]
FIRST = [
    "Ada", "Alan", "Barbara", "Carl", "Dana", "Edsger", "Frances", "Grace", "Hedy", "Ivan", "Joan", "Ken",
    "Linus", "Margaret", "Niklaus", "Olga", "José", "Zoë", "Søren", "Łukasz", "Aoife", "Mei", "Priya", "Kwame",
    "Fatima", "Yuki", "Anne-Marie", "Jean-Luc",
]  # fmt: skip
LAST = ["O'Brien", "Müller-Lüdenscheidt", "van der Berg", "Nguyen", "García", "Smith", "Kowalski", "Sato"]
SYLLABLES = [
    "ba", "bel", "ce", "cor", "da", "dan", "di", "fen", "fo", "gar", "gu", "ha", "hol", "ke", "ki",
    "la", "li", "lo", "ma", "mo", "ne", "nu", "pa", "per", "re", "ri", "sa", "si", "ta", "to",
]  # fmt: skip
SUFFIXES = ["GmbH", "AG", "Inc.", "Ltd", "Group", "Labs", "& Co. KG", "SARL", "BV", "Holding", "Systems", "Partners"]
TITLES = [
    "CEO", "CTO", "Head of Sales", "Buyer", "Procurement Manager", "Software Engineer", "Office Manager",
    "VP Marketing", "Account Executive", "", "n/a",
]  # fmt: skip
PLACES = [
    ("Berlin", "Germany"), ("München", "Germany"), ("Paris", "France"), ("London", "United Kingdom"),
    ("New York", "USA"), ("São Paulo", "Brazil"), ("Tokyo", "Japan"), ("Kraków", "Poland"), ("", ""),
    ("Zürich", ""),
]  # fmt: skip
TAGS = ["lead", "customer; vip", "partner, newsletter", "", "prospect | trade fair 2025", "-"]
MONTHS = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"]
LONG_MONTHS = ["January", "February", "March", "April", "May", "June", "July", "August", "September", "October",
               "November", "December"]  # fmt: skip

out = Console(width=None if sys.stdout.isatty() else 150, highlight=False)
err = Console(stderr=True, highlight=False)

# ------------------------------------------------------------------------------------------- test data


def word(rng: random.Random) -> str:
    return "".join(rng.choice(SYLLABLES) for _ in range(rng.randint(2, 4))).capitalize()


def ascii_fold(text: str) -> str:
    return "".join(c for c in unicodedata.normalize("NFKD", text) if c.isascii() and (c.isalnum() or c in ".-"))


def organization_names(rng: random.Random) -> list[str]:
    names: dict[str, str] = {}
    while len(names) < ORGANIZATIONS:
        name = f"{word(rng)} {rng.choice(SUFFIXES)}"
        names.setdefault(name.casefold(), name)
    return list(names.values())


def birthday(rng: random.Random) -> str:
    if rng.random() < 0.35:
        return rng.choice(["", "", "n/a"])
    day = date(1950, 1, 1) + timedelta(days=rng.randrange(55 * 365))
    return rng.choice(
        [
            day.isoformat(),
            f"{day.day:02}.{day.month:02}.{day.year}",
            f"{day.month:02}/{day.day:02}/{day.year}",
            f"{day.day} {MONTHS[day.month - 1]} {day.year}",
            f"{LONG_MONTHS[day.month - 1]} {day.day}, {day.year}",
            f"{day.year}/{day.month:02}/{day.day:02}",
        ]
    )


def phone(rng: random.Random) -> str:
    def digits(n: int) -> str:
        return "".join(str(rng.randrange(10)) for _ in range(n))

    return rng.choice(
        [
            f"+49 30 {digits(7)}",
            f"({digits(3)}) {digits(3)}-{digits(4)}",
            f"+1 {digits(3)}-{digits(3)}-{digits(4)} ext. {digits(2)}",
            f"0{digits(3)}/{digits(7)}",
            f"tel:+44{digits(10)}",
            "",
        ]
    )


def write_csv(path: Path, count: int, seed: int) -> None:
    """`count` good rows; the same seed gives the same first rows whatever the count."""
    rng = random.Random(seed)
    companies = organization_names(rng)
    with path.open("w", encoding="utf-8", newline="") as sink:
        writer = csv.writer(sink)
        writer.writerow(HEADERS)
        for serial in range(count):
            first = rng.choice(FIRST)
            last = rng.choice(LAST) if rng.random() < 0.2 else word(rng)
            company = rng.choice(companies) if rng.random() < 0.9 else ""
            domain = ascii_fold(company.split()[0]).lower() + ".example" if company else "mail.example"
            email = f"{ascii_fold(first)}.{ascii_fold(last)}{serial}@{domain}"
            city, country = rng.choice(PLACES)
            writer.writerow(
                [
                    first,
                    last,
                    email.lower() if rng.random() < 0.8 else email,
                    phone(rng),
                    company,
                    rng.choice(TITLES),
                    city,
                    country,
                    rng.choice(TAGS),
                    birthday(rng),
                ]
            )


# ----------------------------------------------------------------------------------------- databases


class Databases:
    """A fresh, empty database for each run: a new SQLite file, a scratch PostgreSQL database, or the one
    given, emptied first."""

    def __init__(self, kind: str, folder: Path, given: str | None = None) -> None:
        self.kind, self.folder, self.given, self.made = kind, folder, given, 0

    @asynccontextmanager
    async def fresh(self) -> AsyncIterator[str]:
        self.made += 1
        if self.given:
            await _empty(self.given)
            try:
                yield self.given
            finally:
                await _empty(self.given)
        elif self.kind == "sqlite":
            path = self.folder / f"import-{self.made}.db"
            try:
                yield f"sqlite:///{path}"
            finally:
                for each in (path, Path(f"{path}-wal"), Path(f"{path}-shm")):
                    each.unlink(missing_ok=True)
        else:
            url = await scratch_postgres()
            try:
                yield url
            finally:
                await drop_postgres(url)


async def contacts_in(url: str) -> int:
    db = Database(url)
    try:
        table = table_of(CONTACTS)
        return await db.read(lambda conn: conn.execute(select(func.count()).select_from(table)).scalar_one())
    except Exception:  # no table yet
        return 0
    finally:
        await db.dispose()


async def _empty(url: str) -> None:
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        for suffix in ("", "-wal", "-shm"):
            Path(f"{parsed.database}{suffix}").unlink(missing_ok=True)
        return
    conn = await asyncpg.connect(parsed.set(drivername="postgresql").render_as_string(hide_password=False))
    try:
        await conn.execute("DROP SCHEMA public CASCADE; CREATE SCHEMA public")
    finally:
        await conn.close()


# --------------------------------------------------------------------------- child processes (measured)


def uncommitted_src_files() -> int | None:
    """Files under src/ that differ from the commit, untracked ones too (benchkit's count is taken from bench/,
    where the pathspec `src` names nothing)."""
    root = Path(__file__).resolve().parent.parent
    try:
        done = subprocess.run(["git", "status", "--porcelain", "--", "src"], capture_output=True, text=True, cwd=root)
    except OSError:
        return None
    return len(done.stdout.splitlines()) if done.returncode == 0 else None


def maxrss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


async def child_import(url: str, path: Path, skip_bad_rows: bool) -> dict[str, Any]:
    db = Database(url)
    try:
        await migrate(db)
        actor = await local_actor(db, via="cli")
        crm = Crm(db)
        options = ImportOptions(create_missing=True, skip_bad_rows=skip_bad_rows)
        last: dict[str, float] = {}

        def progress(phase: str, _read: int, _size: int, _rows: int) -> None:
            last[phase] = time.perf_counter()

        settle()  # as `mcp-crm import` does before it starts
        rss_before = maxrss_mb()
        start = time.perf_counter()
        outcome = await import_file(crm, actor, CONTACTS, path, options, progress)
        end = time.perf_counter()
        report = outcome.report
        stored = await db.read(lambda c: c.execute(select(func.count()).select_from(table_of(CONTACTS))).scalar_one())
        assert outcome.written and report.bad_rows == 0 and stored == report.rows, (outcome, stored)
        check_end = last.get("check", start)
        return {
            "rows": report.rows,
            "seconds": end - start,
            "check_seconds": check_end - start if "check" in last else None,
            "write_seconds": end - check_end,
            "created": report.created,
            "organizations_created": report.related_created["organizations"],
            "max_rss_mb_before_import": rss_before,
            "max_rss_mb": maxrss_mb(),
        }
    finally:
        await db.dispose()


def baseline_items(path: Path, org_ids: dict[str, str]) -> Any:
    """The file's rows as contact create models, CREATE_BATCH at a time (values read as the import reads them)."""
    model = create_model_for(CONTACTS)
    with path.open(encoding="utf-8", newline="") as source:
        batch = []
        for cells in csv.DictReader(source):
            values: dict[str, Any] = {"first_name": cells["First Name"], "last_name": cells["Last Name"]}
            values["emails"] = [{"value": lenient.email(cells["Email"]), "label": "work", "primary": True}]
            if not lenient.blank(cells["Phone"]):
                values["phones"] = [{"value": lenient.phone(cells["Phone"]), "label": "work", "primary": True}]
            if cells["Company"]:
                values["organization_ids"] = [org_ids[cells["Company"]]]
            if not lenient.blank(cells["Job Title"]):
                values["job_title"] = cells["Job Title"]
            address = {k: cells[h] for k, h in (("city", "City"), ("country", "Country")) if cells[h]}
            if address:
                values["address"] = address
            if not lenient.blank(cells["Tags"]):
                values["tags"] = lenient.values(cells["Tags"])
            if not lenient.blank(cells["Birthday"]):
                values["birthday"] = lenient.day(cells["Birthday"])
            batch.append(model.model_validate(values))
            if len(batch) == CREATE_BATCH:
                yield batch
                batch = []
        if batch:
            yield batch


async def child_create_many(url: str, path: Path) -> dict[str, Any]:
    db = Database(url)
    try:
        await migrate(db)
        actor = await local_actor(db, via="cli")
        crm = Crm(db)
        with path.open(encoding="utf-8", newline="") as source:
            names = sorted({row["Company"] for row in csv.DictReader(source) if row["Company"]})
        org_model = create_model_for(ORGS)
        settle()  # as the import is measured
        start = time.perf_counter()
        orgs = await crm.create_many(actor, ORGS, [org_model.model_validate({"name": n}) for n in names])
        org_seconds = time.perf_counter() - start
        org_ids = {n: o["id"] for n, o in zip(names, orgs, strict=True)}
        seconds, rows = 0.0, 0
        growing = GrowingTables(crm, CONTACTS)  # PostgreSQL's statistics kept as the import keeps them
        for batch in baseline_items(path, org_ids):
            start = time.perf_counter()
            await crm.create_many(actor, CONTACTS, batch)
            await growing.wrote(len(batch))
            seconds += time.perf_counter() - start
            rows += len(batch)
        return {
            "rows": rows,
            "seconds": seconds,
            "organizations": len(names),
            "organizations_seconds": org_seconds,
            "max_rss_mb": maxrss_mb(),
        }
    finally:
        await db.dispose()


def child(spec: dict[str, Any]) -> None:
    path = Path(spec["file"])
    if spec["what"] == "create_many":
        result = asyncio.run(child_create_many(spec["url"], path))
    else:
        result = asyncio.run(child_import(spec["url"], path, spec["what"] == "import_skip_bad_rows"))
    print(json.dumps(result), flush=True)


def in_subprocess(what: str, url: str, path: Path) -> dict[str, Any]:
    spec = json.dumps({"what": what, "url": url, "file": str(path)})
    done = subprocess.run(
        [sys.executable, __file__, "--child", spec], stdout=subprocess.PIPE, text=True, check=False, timeout=3600
    )
    if done.returncode:
        raise RuntimeError(f"the {what} subprocess failed ({done.returncode}); its errors are above")
    return dict(json.loads(done.stdout.strip().splitlines()[-1]))


# ----------------------------------------------------------------------------------- reading baselines


def raw_parse(path: Path) -> int:
    with path.open(encoding="utf-8", newline="") as source:
        reader = csv.reader(source)
        next(reader)
        return sum(1 for _ in reader)


def product_read(path: Path) -> int:
    source = CsvSource(path, importing_file._encoding(path, None))
    return sum(len(rows) for rows, _ in source.batches())


def best_rate(read: Callable[[Path], int], path: Path, repeats: int = 3) -> dict[str, Any]:
    seconds = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        rows = read(path)
        seconds = min(seconds, time.perf_counter() - start)
    return {"rows": rows, "seconds": seconds}


# --------------------------------------------------------------------------------------------- figures


def rate(figure: dict[str, Any]) -> float:
    return float(figure["rows"] / figure["seconds"])


async def measure(databases: Databases, big: Path, small: Path, rows: int) -> dict[str, Any]:
    results: dict[str, Any] = {}
    err.print(f"{databases.kind}: reading the file: raw csv.reader and the import's CsvSource.batches")
    results["csv_reader"] = best_rate(raw_parse, big)
    results["csv_source"] = best_rate(product_read, big)
    for key, what, path in (
        ("create_many", "create_many", big),
        ("import_small", "import", small),
        ("import", "import", big),
        ("import_skip_bad_rows", "import_skip_bad_rows", big),
    ):
        async with databases.fresh() as url:
            err.print(f"{databases.kind}: {key}: {rows // 10 if path == small else rows:,} rows, in a subprocess")
            started = time.perf_counter()
            results[key] = await asyncio.to_thread(in_subprocess, what, url, path)
            err.print(f"  {rate(results[key]):,.0f} rows/s (process: {time.perf_counter() - started:.0f} s)")
    return results


def figures_of(results: dict[str, Any]) -> list[dict[str, Any]]:
    """Each figure: measured, baseline, ratio, and a target where the issue sets one."""
    imp, skip, small, create = (results[k] for k in ("import", "import_skip_bad_rows", "import_small", "create_many"))
    raw, source = results["csv_reader"], results["csv_source"]
    check_rate = imp["rows"] / imp["check_seconds"]
    write_rate = imp["rows"] / imp["write_seconds"]

    def fig(key: str, title: str, measured: float, baseline: float, unit: str, **more: Any) -> dict[str, Any]:
        return {"key": key, "title": title, "measured": measured, "baseline": baseline, "unit": unit} | more

    rss_ratio = imp["max_rss_mb"] / small["max_rss_mb"]
    return [
        fig(
            "import",
            "import, default mode (check + write pass) vs Crm.create_many",
            rate(imp),
            rate(create),
            "rows/s",
            target=f">= {TARGET_ROWS_PER_S:,} rows/s",
            passed=rate(imp) >= TARGET_ROWS_PER_S,
        ),
        fig(
            "import_skip_bad_rows",
            "import --skip-bad-rows (one pass) vs Crm.create_many",
            rate(skip),
            rate(create),
            "rows/s",
            target=f">= {TARGET_ROWS_PER_S:,} rows/s",
            passed=rate(skip) >= TARGET_ROWS_PER_S,
        ),
        fig("check_pass", "  check pass vs write pass (default mode)", check_rate, write_rate, "rows/s"),
        fig("write_pass", "  write pass vs Crm.create_many", write_rate, rate(create), "rows/s"),
        fig("csv_source", "CsvSource.batches (import's reader) vs raw csv.reader", rate(source), rate(raw), "rows/s"),
        fig("import_vs_reader", "import, default mode vs raw csv.reader", rate(imp), rate(raw), "rows/s"),
        fig(
            "memory",
            f"max RSS, import of {imp['rows']:,} vs {small['rows']:,} rows",
            imp["max_rss_mb"],
            small["max_rss_mb"],
            "MB",
            target=f"ratio <= {FLAT} (flat)",
            passed=rss_ratio <= FLAT,
        ),
    ]


def summary(kind: str, rows: int, results: dict[str, Any]) -> dict[str, Any]:
    figures = figures_of(results)
    for f in figures:
        f["ratio"] = round(f["measured"] / f["baseline"], 3)
        f["measured"], f["baseline"] = round(f["measured"], 1), round(f["baseline"], 1)
    rounded = {k: {n: round(v, 2) if isinstance(v, float) else v for n, v in r.items()} for k, r in results.items()}
    per_row = {
        "import_default": 1e6 / rate(results["import"]),
        "check_pass": 1e6 * results["import"]["check_seconds"] / rows,
        "write_pass": 1e6 * results["import"]["write_seconds"] / rows,
        "create_many": 1e6 / rate(results["create_many"]),
        "csv_source": 1e6 / rate(results["csv_source"]),
        "csv_reader": 1e6 / rate(results["csv_reader"]),
    }
    return {
        "database": kind,
        "rows": rows,
        "figures": {f.pop("key"): f for f in figures},
        "microseconds_per_row": {k: round(v, 1) for k, v in per_row.items()},
        "runs": rounded,
    }


def report(result: dict[str, Any]) -> None:
    table = Table(title=f"import of {result['rows']:,} contacts from CSV, --create-missing ({result['database']})")
    for column in ("figure", "measured", "baseline", "ratio", "target", "result"):
        table.add_column(column, justify="right" if column in ("measured", "baseline", "ratio") else "left")
    for f in result["figures"].values():
        passed = f.get("passed")
        table.add_row(
            f["title"],
            f"{f['measured']:,.0f} {f['unit']}",
            f"{f['baseline']:,.0f} {f['unit']}",
            f"{f['ratio']:.3g}",
            f.get("target", "-"),
            {True: "[green]PASS", False: "[red]FAIL", None: "-"}[passed],
        )
    out.print(table)
    runs, us = result["runs"], result["microseconds_per_row"]
    imp = runs["import"]
    out.print(
        f"  default mode: {imp['seconds']:.1f} s = check pass {imp['check_seconds']:.1f} s + write pass "
        f"{imp['write_seconds']:.1f} s; --skip-bad-rows: {runs['import_skip_bad_rows']['seconds']:.1f} s; "
        f"{imp['organizations_created']:,} organizations created",
        soft_wrap=True,
    )
    out.print(
        "  µs per row: "
        + ", ".join(f"{k.replace('_', ' ')} {v:,.1f}" for k, v in us.items())
        + f"; create_many of the {runs['create_many']['organizations']:,} organizations first took "
        f"{runs['create_many']['organizations_seconds']:.2f} s (not counted)",
        soft_wrap=True,
    )
    rss = ", ".join(
        f"{name} {runs[key]['max_rss_mb']:.0f} MB"
        for name, key in (
            (f"import of {runs['import_small']['rows']:,} rows", "import_small"),
            (f"of {imp['rows']:,}", "import"),
            ("--skip-bad-rows", "import_skip_bad_rows"),
            ("create_many baseline", "create_many"),
        )
    )
    out.print(
        f"  max RSS per subprocess: {rss} (before the import call: {imp['max_rss_mb_before_import']:.0f} MB)",
        soft_wrap=True,
    )


# ------------------------------------------------------------------------------------------- profiling


class _RolledBack(Exception):
    pass


def hotspots(profile: cProfile.Profile, top: int = 10) -> dict[str, Any]:
    stats = pstats.Stats(profile)
    total = stats.total_tt  # type: ignore[attr-defined]
    entries = stats.stats  # type: ignore[attr-defined]

    def name(key: tuple[str, int, str]) -> str:
        file, line, function = key
        for marker in ("/site-packages/", "/src/", "/lib/python3"):
            if marker in file:
                file = file.split(marker, 1)[1]
                break
        return f"{file}:{line}({function})" if line else function

    def listed(index: int, only_ours: bool) -> list[dict[str, Any]]:
        keys = [k for k in entries if not only_ours or "/src/mcp_crm/" in k[0]]
        keys.sort(key=lambda k: entries[k][index], reverse=True)
        return [
            {
                "function": name(k),
                "calls": entries[k][1],
                "seconds": round(entries[k][index], 3),
                "share": round(entries[k][index] / total, 3),
            }
            for k in keys[:top]
        ]

    return {"seconds": round(total, 2), "own_time": listed(2, False), "cumulative_mcp_crm": listed(3, True)}


async def profile(rows: int, seed: int, keep: Path | None = None) -> dict[str, Any]:
    """Both passes of a default-mode import, each batch's import_batch run synchronously in a SQLite
    transaction (the async path runs it on a worker thread cProfile does not see); CSV reading included."""
    with tempfile.TemporaryDirectory(prefix="mcp-crm-import-profile-") as tmp:
        path = Path(tmp) / "contacts.csv"
        write_csv(path, rows, seed)
        db = Database(f"sqlite:///{Path(tmp) / 'profile.db'}")
        try:
            await migrate(db)
            actor = await local_actor(db, via="cli")
            source = CsvSource(path, importing_file._encoding(path, None))
            plan = await Crm(db).import_plan(actor, CONTACTS, source.header(), create_missing=True)
            engine = db._sqlite
            assert engine is not None
            found: dict[str, Any] = {}
            for phase, write in (("check", False), ("write", True)):
                planned, total, profiler = Planned(), Report(), cProfile.Profile()
                start = time.perf_counter()
                profiler.enable()
                for batch, _ in source.batches():
                    if write:
                        done, bad = _in_transaction(
                            engine, lambda c, b=batch, p=planned: import_batch(c, actor, plan, b, True, p), True
                        )
                    else:

                        def check(conn: Connection, b: Any = batch, p: Planned = planned) -> None:
                            raise _RolledBack(import_batch(conn, actor, plan, b, False, p))

                        try:
                            _in_transaction(engine, check, True)
                        except _RolledBack as rolled_back:
                            done, bad = rolled_back.args[0]
                    assert not bad, bad[:3]
                    total.add(done)
                profiler.disable()
                seconds = time.perf_counter() - start
                if keep is not None:
                    keep.mkdir(parents=True, exist_ok=True)
                    profiler.dump_stats(keep / f"{phase}.prof")
                found[phase] = {"rows": total.rows, "wall_seconds_profiled": round(seconds, 2)} | hotspots(profiler)
            return found
        finally:
            await db.dispose()


def report_profile(found: dict[str, Any]) -> None:
    for phase, data in found.items():
        for key, title in (("own_time", "own time"), ("cumulative_mcp_crm", "cumulative, mcp_crm functions")):
            table = Table(
                title=f"{phase} pass of {data['rows']:,} rows: top functions by {title} "
                f"(of {data['seconds']} s profiled)"
            )
            for column in ("function", "calls", "seconds", "share"):
                table.add_column(column, justify="left" if column == "function" else "right")
            for row in data[key]:
                table.add_row(row["function"], f"{row['calls']:,}", f"{row['seconds']:.2f}", f"{row['share']:.1%}")
            out.print(table)


# --------------------------------------------------------------------------------------------- running


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, help=f"rows in the file (default {FULL:,})")
    parser.add_argument("--quick", action="store_true", help=f"small smoke run ({QUICK:,} rows)")
    parser.add_argument("--postgres", action="store_true", help=f"also into scratch databases at {PG_ADMIN}")
    parser.add_argument("--database-url", help="an empty database to run on instead (emptied before each run)")
    parser.add_argument("--profile", action="store_true", help=f"profile both passes instead ({PROFILE_ROWS:,} rows)")
    parser.add_argument("--profile-dir", type=Path, help="with --profile: also save check.prof and write.prof here")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        child(json.loads(args.child))
        return
    if args.profile:
        found = asyncio.run(profile(args.rows or (QUICK if args.quick else PROFILE_ROWS), args.seed, args.profile_dir))
        report_profile(found)
        print(json.dumps({"bench": "import_csv_profile", "machine": machine_info(), "profile": found}), flush=True)
        return
    rows = args.rows or (QUICK if args.quick else FULL)
    if args.database_url and asyncio.run(contacts_in(args.database_url)):
        parser.error("--database-url holds contacts; give an empty database (the bench empties it before each run)")
    machine = machine_info() | {"src_uncommitted_files": uncommitted_src_files()}
    started = time.perf_counter()
    runs = []
    with tempfile.TemporaryDirectory(prefix="mcp-crm-bench-") as tmp:
        folder = Path(tmp)
        big, small = folder / "contacts.csv", folder / "contacts-tenth.csv"
        write_csv(big, rows, args.seed)
        write_csv(small, rows // 10, args.seed)
        err.print(f"file: {rows:,} rows, {big.stat().st_size / 1e6:.1f} MB")
        kinds = []
        if args.database_url:
            kinds.append(Databases(make_url(args.database_url).get_backend_name(), folder, args.database_url))
        else:
            kinds.append(Databases("sqlite", folder))
        if args.postgres:
            kinds.append(Databases("postgresql", folder))
        for databases in kinds:
            result = summary(databases.kind, rows, asyncio.run(measure(databases, big, small, rows)))
            report(result)
            runs.append(result)
    machine["load_average_after"] = [round(x, 2) for x in os.getloadavg()]
    out.print(f"  machine: {json.dumps(machine)}; {time.perf_counter() - started:.0f} s in all", soft_wrap=True)
    print(json.dumps({"bench": "import_csv", "quick": args.quick, "machine": machine, "runs": runs}), flush=True)


if __name__ == "__main__":
    main()
