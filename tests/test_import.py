"""`mcp-crm import` and Crm.import_rows: a messy spreadsheet of contacts checked, reported and imported with exact
figures; bad rows refused, or set aside in `<file>.errors.csv`; an import killed mid-way resumes after its last
committed batch and writes every row once; an export imports back field by field; the lenient reading of cells
and the matching of columns to fields."""

from __future__ import annotations

import asyncio
import csv
import json
import os
import re
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
import typer
from sqlalchemy import Connection, select, text
from typer.testing import CliRunner, Result

from mcp_crm.entities import ENTITIES
from mcp_crm.entities.models import create_model_for
from mcp_crm.errors import CrmError
from mcp_crm.operations import Crm, ListQuery
from mcp_crm.operations.access import create_workspace, workspace_owner
from mcp_crm.operations.actor import Actor
from mcp_crm.operations.workspace import local_actor
from mcp_crm.store import Database
from mcp_crm.store.tables import IMPORTS
from mcp_crm.transfer import export_cli, import_cli, lenient
from mcp_crm.transfer.columns import map_columns, target_of
from mcp_crm.transfer.import_file import BATCH
from mcp_crm.transfer.lenient import BadValue
from tests.helpers import snapshot

FIXTURE = Path(__file__).parent / "fixtures" / "import" / "people.csv"
CONTACTS, ORGANIZATIONS, FIELDS = ENTITIES["contacts"], ENTITIES["organizations"], ENTITIES["fields"]

app = typer.Typer()


@app.callback()
def _root() -> None:
    """A root, so `import` and `export` stay named sub-commands as in mcp-crm."""


import_cli.register(app)
export_cli.register(app)
runner = CliRunner(env={"COLUMNS": "300"})


def cli(database_url: str, *args: str | Path) -> Result:
    return runner.invoke(app, [*map(str, args), "--database-url", database_url])


def said(done: Result) -> str:
    """What the command printed, with its line wrapping undone."""
    return " ".join(done.output.split())


REPORT = re.compile(
    r"(Would import|Imported|Checked): ([\d,]+) rows \([\d,.]+ rows/s\): ([\d,]+) ok, ([\d,]+) bad; ([\d,]+) created, "
    r"([\d,]+) updated, ([\d,]+) unchanged, ([\d,]+) links(; created [\d,]+ \w+(?:, [\d,]+ \w+)*)?"
)


def report(done: Result | str) -> dict[str, Any]:
    """The report line a run printed, as numbers."""
    shown = " ".join(done.split()) if isinstance(done, str) else said(done)
    found = REPORT.search(shown)
    assert found, shown
    numbers = [int(n.replace(",", "")) for n in found.groups()[1:8]]
    related = {name: int(n.replace(",", "")) for n, name in re.findall(r"([\d,]+) (\w+)", found[9] or "")}
    names = ("rows", "ok", "bad", "created", "updated", "unchanged", "links")
    return {"verb": found[1], **dict(zip(names, numbers, strict=True)), "related": related}


# ------------------------------------------------------------------------------------------------ database


def with_crm(url: str, work: Callable[[Crm, Actor], Awaitable[Any]]) -> Any:
    """`work(crm, actor)` as the CLI's local user, on its own connection."""

    async def run() -> Any:
        db = Database(url)
        try:
            return await work(Crm(db), await local_actor(db, via="cli"))
        finally:
            await db.dispose()

    return asyncio.run(run())


def sql(url: str, query: str, **params: Any) -> list[Any]:
    async def run() -> list[Any]:
        db = Database(url)
        try:
            return await db.read(lambda c: list(c.execute(text(query), params).all()))
        finally:
            await db.dispose()

    return asyncio.run(run())


def count(url: str, table: str) -> int:
    return sql(url, f"SELECT count(*) FROM {table}")[0][0]


def runs(url: str) -> list[dict[str, Any]]:
    async def run() -> list[dict[str, Any]]:
        db = Database(url)
        try:
            return await db.read(lambda c: [dict(r) for r in c.execute(select(IMPORTS)).mappings()])
        finally:
            await db.dispose()

    return asyncio.run(run())


async def _all(crm: Crm, actor: Actor, entity: Any) -> list[dict[str, Any]]:
    items, cursor = [], None
    while True:
        page = await crm.list(actor, entity, ListQuery(limit=200, cursor=cursor))
        items += page.items
        if not page.has_more:
            return items
        cursor = page.next_cursor


def every(url: str, entity: Any) -> list[dict[str, Any]]:
    return with_crm(url, lambda crm, actor: _all(crm, actor, entity))


def record(url: str, entity: Any, record_id: str) -> dict[str, Any]:
    return with_crm(url, lambda crm, actor: crm.get(actor, entity, record_id))


def by_email(url: str, email: str) -> dict[str, Any]:
    """The one contact whose primary email is `email` (as stored), read with get."""
    found = [c for c in every(url, CONTACTS) if c["email"] == email]
    assert len(found) == 1, (email, found)
    return record(url, CONTACTS, found[0]["id"])


def create(url: str, entity: Any, **values: Any) -> dict[str, Any]:
    return with_crm(url, lambda crm, actor: crm.create(actor, entity, create_model_for(entity)(**values)))


def snap(url: str) -> dict[str, Any]:
    return asyncio.run(snapshot(url))


def memberships(contact: dict[str, Any], folded: bool = False) -> list[tuple[str, str | None, str | None, bool]]:
    """(organization name, role, title, is_primary) of each membership; `folded`: names in lower case (the import
    creates an organization rows write in several cases under one of them)."""
    return sorted(
        (o["name"].casefold() if folded else o["name"], o["role"], o["title"], o["is_primary"])
        for o in contact["organizations"]
    )


# ------------------------------------------------------------------------------- the messy people.csv fixture

HEADERS = [
    "First Name", "Last Name", "Email", "E-mail (home)", "Phone", "Mobile", "Company", "Title", "Birthday", "Tags",
    "Street", "City", "Zip", "Country", "Favourite Color", "Notes",
]  # fmt: skip
PATTERN_ERROR = "emails.0.value: String should match pattern '^[^@\\s]+@[^@\\s]+\\.[^@\\s]+$'"
# line -> the error the import gives it: 5 unreadable cells (read before anything is looked up) and 6 rows the
# record's checks refuse (an invalid email, a missing last name)
BAD_LINES = {
    12: "Birthday: '31.02.1990' is not a real date",
    38: "Birthday: 'sometime in May' is not a date (write it as 2026-03-31, 31.03.2026, 03/31/2026 or 31 Mar 2026)",
    64: "Birthday: '1990-13-01' is not a real date",
    90: "Birthday: '32/01/1990' is not a real date",
    116: PATTERN_ERROR,
    142: PATTERN_ERROR,
    168: PATTERN_ERROR,
    194: "last_name: Field required",
    220: "last_name: Field required",
    246: "last_name: Field required",
    272: "Phone: '12' is not a phone number (it needs at least 3 digits); Birthday: '31.04.1990' is not a real date",
}
# 300 rows, 11 bad. Of the 289 good ones, 19 repeat the email of an earlier row (in another case) or of Katherine
# Johnson, who is in the database before: 270 contacts are created, 19 rows update. 289 company names are given
# (some cells name two); they are 16 organizations once case is ignored: Acme Corp is in the database, the 15
# others are created once each (not "Only In A Bad Row Ltd", which only a bad row names). 272 memberships.
FIGURES = {"rows": 300, "ok": 289, "bad": 11, "created": 270, "updated": 19, "unchanged": 0, "links": 289}
# the organizations created, once each whatever the case rows write them in
CREATED_ORGANIZATIONS = [
    "analytical engines ltd", "bletchley park", "cyberdyne systems", "globex", "hooli", "initech", "nasa",
    "navy labs", "soylent foods", "stark industries", "tyrell corp", "umbrella health", "vandelay industries",
    "wayne enterprises", "wonka industries",
]  # fmt: skip
MEMBERSHIPS = 272
MATCH = ("--match", "email", "--create-missing")


def people(tmp_path: Path) -> Path:
    """A copy of the fixture (its errors file is written next to it)."""
    path = tmp_path / "people.csv"
    path.write_bytes(FIXTURE.read_bytes())
    return path


def fixture_rows() -> dict[int, list[str]]:
    """line -> cells, as the file has them (no cell of it spans lines)."""
    with FIXTURE.open(encoding="utf-8", newline="") as stream:
        reader = csv.reader(stream)
        assert next(reader) == HEADERS
        return {line: cells for line, cells in enumerate(reader, start=2)}


def before_people(url: str) -> dict[str, str]:
    """What the database holds before the fixture is imported: an organization and a contact it names."""
    acme = create(url, ORGANIZATIONS, name="Acme Corp")
    katherine = create(
        url, CONTACTS, first_name="Katherine", last_name="Johnson", emails=[{"value": "katherine@nasa.example"}]
    )
    return {"acme": acme["id"], "katherine": katherine["id"]}


def test_the_fixture_is_as_the_figures_say():
    rows = fixture_rows()
    assert len(rows) == 300 and all(len(cells) == len(HEADERS) for cells in rows.values())
    emails = [cells[2].casefold() for cells in rows.values() if cells[2]]
    assert len(emails) - len(set(emails)) == 18  # 17 repeats in another case, and Ada Lovelace's
    assert rows[8][HEADERS.index("Favourite Color")] == "blue"


def test_a_dry_run_reports_what_it_would_do_and_writes_nothing(database_url, tmp_path):
    before_people(database_url)
    path = people(tmp_path)
    before = snap(database_url)

    done = cli(database_url, "import", "contacts", path, *MATCH, "--dry-run")
    assert done.exit_code == 0, done.output
    assert report(done) == {"verb": "Checked", **FIGURES, "related": {"organizations": 15}}
    shown = said(done)
    assert "Favourite Color │ (ignored: no such field)" in shown
    for line, reason in sorted(BAD_LINES.items())[:10]:  # the first ten are printed
        assert f"line {line}: {reason}" in shown
    assert snap(database_url) == before
    assert count(database_url, "imports") == 0

    # without --create-missing, every good row naming an organization the database lacks is bad too
    done = cli(database_url, "import", "contacts", path, "--match", "email", "--dry-run")
    assert done.exit_code == 0, done.output
    assert report(done) == {
        "verb": "Checked", "rows": 300, "ok": 44, "bad": 256, "created": 44, "updated": 0, "unchanged": 0,
        "links": 15, "related": {},
    }  # fmt: skip
    assert "245 Company: no organization named …" in said(done)
    assert "line 3: Company: no organization named 'Navy Labs'" in said(done)
    assert snap(database_url) == before


def test_the_mapping_of_the_fixture(database_url):
    plan = with_crm(
        database_url, lambda crm, actor: crm.import_plan(actor, CONTACTS, HEADERS, match="email", create_missing=True)
    )
    assert dict(plan.mapping.rows()) == {
        "First Name": "first_name",
        "Last Name": "last_name",
        "Email": "emails",
        "E-mail (home)": "emails:home",
        "Phone": "phones",
        "Mobile": "phones:mobile",
        "Company": "organizations",
        "Title": "job_title",
        "Birthday": "birthday",
        "Tags": "tags",
        "Street": "address.street",
        "City": "address.city",
        "Zip": "address.postal_code",
        "Country": "address.country",
        "Favourite Color": "(ignored: no such field)",
        "Notes": "notes",
    }


def test_bad_rows_stop_the_import_and_go_to_the_errors_file(database_url, tmp_path):
    before_people(database_url)
    path = people(tmp_path)
    before = snap(database_url)

    done = cli(database_url, "import", "contacts", path, *MATCH, "-y")
    assert done.exit_code == 1, done.output
    assert report(done) == {"verb": "Checked", **FIGURES, "related": {"organizations": 15}}
    errors_file = tmp_path / "people.csv.errors.csv"
    assert f"Bad rows, with the reason for each: {errors_file}" in said(done)
    assert "Nothing was imported." in said(done)
    assert snap(database_url) == before
    assert count(database_url, "imports") == 0

    with errors_file.open(encoding="utf-8", newline="") as stream:
        header, *listed = list(csv.reader(stream))
    assert header == [*HEADERS, "line", "error"]
    assert [(int(row[-2]), row[-1]) for row in listed] == sorted(BAD_LINES.items())
    original = fixture_rows()
    assert all(row[:-2] == original[int(row[-2])] for row in listed)  # each row as the file has it


def test_skip_bad_rows_imports_the_good_rows(database_url, tmp_path):
    made = before_people(database_url)
    path = people(tmp_path)

    done = cli(database_url, "import", "contacts", path, *MATCH, "--skip-bad-rows", "-y")
    assert done.exit_code == 0, done.output
    assert report(done) == {"verb": "Imported", **FIGURES, "related": {"organizations": 15}}
    assert count(database_url, "contacts") == 1 + 270
    organizations = sorted(o["name"].casefold() for o in every(database_url, ORGANIZATIONS))
    assert organizations == sorted(["acme corp", *CREATED_ORGANIZATIONS])
    assert count(database_url, "contact_organizations") == MEMBERSHIPS
    emails = [email.casefold() for (email,) in sql(database_url, "SELECT email FROM contacts WHERE email IS NOT NULL")]
    assert len(emails) == len(set(emails)) == 271 - 14  # 14 rows give no email, each is a contact of its own
    (run,) = runs(database_url)
    assert (run["status"], run["rows_done"], run["entity"], run["source"]) == ("done", 300, "contacts", "people.csv")
    assert {k: run["report"][k] for k in ("rows", "ok", "bad", "created", "updated", "linked")} == {
        "rows": 300, "ok": 289, "bad": 11, "created": 270, "updated": 19, "linked": 289,
    }  # fmt: skip
    with (tmp_path / "people.csv.errors.csv").open(encoding="utf-8", newline="") as stream:
        assert [int(row[-2]) for row in list(csv.reader(stream))[1:]] == sorted(BAD_LINES)

    # lines 2 and 4: one contact, the second row's mobile, tag and organization added to the first's
    ada = by_email(database_url, "Ada.Lovelace@Example.com")
    assert ada["emails"] == [
        {"value": "Ada.Lovelace@Example.com", "label": "work", "primary": True},
        {"value": "ada@home.example", "label": "home", "primary": False},
    ]
    assert ada["phones"] == [
        {"value": "+44 20 7946 0000", "label": "work", "primary": True},
        {"value": "0171 555 1234", "label": "mobile", "primary": False},
        {"value": "+44 7700 900123", "label": "mobile", "primary": False},
    ]
    assert (ada["first_name"], ada["last_name"], ada["job_title"], ada["birthday"]) == (
        "Ada", "Lovelace", "CTO", "1990-03-31",
    )  # fmt: skip
    assert ada["tags"] == ["vip", "math", "poet"]
    assert ada["address"] == {
        "street": "12 St James's Sq", "city": "London", "region": None, "postal_code": "SW1Y 4JH", "country": "UK",
    }  # fmt: skip
    assert ada["notes"] == "Met at the conference, wants a demo"
    assert memberships(ada) == [("Acme Corp", None, None, False), ("Analytical Engines Ltd", None, None, False)]
    assert ada["organizations"][0]["id"] == made["acme"] or ada["organizations"][1]["id"] == made["acme"]

    grace = by_email(database_url, "grace@navy.example")  # 12/09/1906 is month first
    assert (grace["birthday"], grace["job_title"], grace["tags"]) == ("1906-12-09", "Rear Admiral", ["navy", "cobol"])
    assert grace["phones"] == [{"value": "(415) 555-0100", "label": "work", "primary": True}]
    assert grace["address"] == {
        "street": None, "city": "Arlington", "region": None, "postal_code": None, "country": "USA",
    }  # fmt: skip
    assert memberships(grace) == [("Acme Corp", None, None, False), ("Navy Labs", None, None, False)]

    alan = by_email(database_url, "alan@bletchley.example")
    assert (alan["birthday"], alan["phone"], memberships(alan)) == (
        "1912-06-23", "+44-1908-640404", [("bletchley park", None, None, False)],
    )  # fmt: skip

    katherine = record(database_url, CONTACTS, made["katherine"])  # updated, not created again
    assert katherine["emails"] == [{"value": "katherine@nasa.example", "label": "work", "primary": False}]
    assert (katherine["revision"], katherine["birthday"], katherine["tags"], katherine["phone"]) == (
        2, "1918-08-26", ["pioneer"], "+1 757 864 1000",
    )  # fmt: skip
    assert memberships(katherine) == [("NASA", None, None, False)]

    hedy = by_email(database_url, "hedy@home.example")  # "-" and "n/a" are blanks
    assert (hedy["emails"], hedy["phones"], hedy["birthday"]) == (
        [{"value": "hedy@home.example", "label": "home", "primary": True}], [], "1914-11-09",
    )  # fmt: skip

    liam = by_email(database_url, "liam.smith.0@example.com")
    assert [(p["value"], p["label"]) for p in liam["phones"]] == [
        ("+1 (415) 555-0000", "work"), ("+49 171 0000000", "mobile"),
    ]  # fmt: skip
    assert (liam["birthday"], liam["tags"], liam["notes"]) == (
        "1950-01-01", ["vip", "newsletter"], 'Said "call me back", then hung up',
    )  # fmt: skip
    assert [(e["value"], e["label"]) for e in liam["emails"]] == [
        ("liam.smith.0@example.com", "work"), ("liam0@home.example", "home"),
    ]  # fmt: skip

    olivia = by_email(database_url, "Olivia.Davis.1@example.com")
    assert (olivia["birthday"], olivia["phone"], olivia["tags"]) == ("1950-02-07", "415.555.0001", ["lead", "cold"])
    assert olivia["address"] == {
        "street": "1 Main Street", "city": "Paris", "region": None, "postal_code": "10001", "country": "FR",
    }  # fmt: skip
    assert memberships(olivia, folded=True) == [("hooli", None, None, False)]

    noah = by_email(database_url, "NOAH.ANDERSON.2@EXAMPLE.COM")
    assert (noah["birthday"], noah["phone"], noah["tags"]) == ("1950-03-16", "+49 30 0000002", [])

    ezra = by_email(database_url, "EZRA.RODRIGUEZ.14@EXAMPLE.COM")  # lines 23 and 33 (ezra.rodriguez.14@...)
    assert (ezra["birthday"], ezra["phone"], ezra["tags"]) == ("1951-06-03", "+49 30 0000014", ["returning"])
    assert memberships(ezra, folded=True) == [("wonka industries", None, None, False)]


# ------------------------------------------------------------------------------------------------ resume


def bulk_file(path: Path, total: int, bad_every: int = 0) -> list[str]:
    """`total` contacts of 20 organizations; with `bad_every`, one row in that many has an impossible birthday."""
    emails = []
    with path.open("w", encoding="utf-8", newline="") as stream:
        writer = csv.writer(stream)
        writer.writerow(["First Name", "Last Name", "Email", "Company", "Tags", "Birthday"])
        for i in range(total):
            bad = bad_every and i % bad_every == bad_every // 2
            emails.append(f"p{i}@bulk.example")
            writer.writerow([f"P{i}", "Bulk", emails[-1], f"Org {i % 20}", "bulk", "31.02.1990" if bad else ""])
    return emails


def start_and_kill(url: str, path: Path, total: int, *args: str) -> int:
    """Runs `mcp-crm import contacts` as a process and kills it (SIGKILL) once a batch, not all, is committed;
    returns how many rows the import says it has done."""
    command = [sys.executable, "-m", "mcp_crm", "import", "contacts", str(path), "--database-url", url, *args, "-y"]
    with (path.parent / "killed.log").open("w") as log:
        process = subprocess.Popen(
            command, stdin=subprocess.DEVNULL, stdout=log, stderr=log, env=os.environ | {"COLUMNS": "300"}
        )

    async def watch() -> None:
        db = Database(url)
        try:
            deadline = time.monotonic() + 120
            while time.monotonic() < deadline:
                done = await db.read(lambda c: list(c.execute(select(IMPORTS.c.rows_done)).scalars()))
                if any(0 < n < total for n in done):
                    process.kill()
                    process.wait(30)
                    return
                if process.poll() is not None:
                    log = (path.parent / "killed.log").read_text()
                    raise AssertionError(f"the import ended ({process.returncode}) before it was killed: {log}")
                await asyncio.sleep(0.005)
            raise AssertionError("the import wrote no batch in 120 s")
        finally:
            if process.poll() is None:
                process.kill()
                process.wait(30)
            await db.dispose()

    asyncio.run(watch())
    (run,) = runs(url)
    assert run["status"] == "running" and 0 < run["rows_done"] < total and run["rows_done"] % BATCH == 0, run
    return int(run["rows_done"])


def test_a_killed_import_resumes_after_its_last_committed_batch(database_url, tmp_path):
    total = 5_000
    path = tmp_path / "bulk.csv"
    emails = bulk_file(path, total)  # no --match: a row imported twice would be a second contact
    done_before = start_and_kill(database_url, path, total, "--create-missing")
    assert count(database_url, "contacts") == done_before  # a batch's rows and its progress commit together

    again = cli(database_url, "import", "contacts", path, "--create-missing", "-y")
    assert again.exit_code == 1, again.output
    assert said(again).endswith(
        f"An import of this file into contacts stopped after {done_before:,} rows. Run it again with --resume to "
        "carry on from there, or --restart to start over (rows already written stay)."
    )
    assert count(database_url, "contacts") == done_before

    resumed = cli(database_url, "import", "contacts", path, "--create-missing", "--resume", "-y")
    assert resumed.exit_code == 0, resumed.output
    assert report(resumed) == {
        "verb": "Imported", "rows": total, "ok": total, "bad": 0, "created": total, "updated": 0, "unchanged": 0,
        "links": total, "related": {"organizations": 20},
    }  # fmt: skip
    assert f"Resumed after row {done_before:,}." in said(resumed)
    stored = sorted(email for (email,) in sql(database_url, "SELECT email FROM contacts"))
    assert stored == sorted(emails)  # every row once
    assert count(database_url, "organizations") == 20
    assert count(database_url, "contact_organizations") == total
    (run,) = runs(database_url)
    assert (run["status"], run["rows_done"], run["report"]["created"], run["report"]["rows"]) == (
        "done", total, total, total,
    )  # fmt: skip


def test_a_growing_import_keeps_postgresqls_statistics_current(database_url, tmp_path):
    if not database_url.startswith("postgresql"):
        pytest.skip("PostgreSQL plans by table statistics; SQLite's planner needs none here")
    tables = ("contacts", "contact_organizations", "change_events", "search_documents")
    analyses = "SELECT relname, analyze_count FROM pg_stat_user_tables"
    before = dict(sql(database_url, analyses))
    path = tmp_path / "bulk.csv"
    bulk_file(path, 1_500)
    done = cli(database_url, "import", "contacts", path, "--create-missing", "-y")
    assert done.exit_code == 0, done.output
    after = dict(sql(database_url, analyses))
    assert all(after[table] > before[table] for table in tables), (before, after)


def test_a_resumed_import_keeps_the_bad_rows_of_before_in_the_errors_file(database_url, tmp_path):
    total = 3_000
    path = tmp_path / "bulk.csv"
    bulk_file(path, total, bad_every=300)  # lines 152, 452, ... 2852
    done_before = start_and_kill(database_url, path, total, *MATCH, "--skip-bad-rows")
    assert count(database_url, "contacts") == done_before - (done_before + 149) // 300  # less its bad rows

    resumed = cli(database_url, "import", "contacts", path, *MATCH, "--skip-bad-rows", "--resume", "-y")
    assert resumed.exit_code == 0, resumed.output
    assert report(resumed) == {
        "verb": "Imported", "rows": total, "ok": total - 10, "bad": 10, "created": total - 10, "updated": 0,
        "unchanged": 0, "links": total - 10, "related": {"organizations": 20},
    }  # fmt: skip
    assert count(database_url, "contacts") == total - 10
    with (tmp_path / "bulk.csv.errors.csv").open(encoding="utf-8", newline="") as stream:
        lines = [int(row[-2]) for row in list(csv.reader(stream))[1:]]
    assert lines == [i + 2 for i in range(150, total, 300)]


# ------------------------------------------------------------------------------------------ export, import


def _other_workspace(url: str) -> Actor:
    def make(conn: Connection) -> Actor:
        made = create_workspace(conn, "other", "Other", "Olga Other", "olga@example.com")
        return Actor(workspace_id=made["id"], user_id=workspace_owner(conn, made["id"]), via="cli")

    async def run() -> Actor:
        db = Database(url)
        try:
            return await db.write(make)
        finally:
            await db.dispose()

    return asyncio.run(run())


async def _custom_fields(crm: Crm, actor: Actor) -> None:
    model = create_model_for(FIELDS)
    options = [{"label": "Gold"}, {"label": "Silver"}]
    await crm.create(actor, FIELDS, model(entity="contacts", label="Tier", type="single_option", options=options))
    await crm.create(actor, FIELDS, model(entity="contacts", label="Budget", type="monetary"))
    await crm.create(actor, FIELDS, model(entity="contacts", label="Score", type="number"))


async def _people_to_export(crm: Crm, actor: Actor) -> dict[str, str]:
    await _custom_fields(crm, actor)
    org = create_model_for(ORGANIZATIONS)
    acme = await crm.create(actor, ORGANIZATIONS, org(name="Acme"))
    smith = await crm.create(actor, ORGANIZATIONS, org(name="Smith, Jones & Co"))
    globex = await crm.create(actor, ORGANIZATIONS, org(name="Globex"))
    model = create_model_for(CONTACTS)
    ada = await crm.create(
        actor,
        CONTACTS,
        model(
            first_name="Ada",
            last_name="Lovelace",
            emails=[
                {"value": "ada@acme.example", "label": "work", "primary": True},
                {"value": "ada@home.example", "label": "home"},
            ],
            phones=[{"value": "+44 20 7946 0000", "label": "mobile"}],
            job_title="CTO",
            notes="Line one,\nline two",
            address={"street": "1 Main St", "city": "London", "postal_code": "N1 9GU", "country": "UK"},
            birthday="1815-12-10",
            tags=["vip", "math"],
            custom={"tier": "gold", "budget": {"amount": "1200.50", "currency": "EUR"}, "score": 42.5},
            organization_ids=[
                {"organization_id": acme["id"]},
                {"organization_id": smith["id"], "role": "champion", "is_primary": True},
            ],
        ),
    )
    bob = await crm.create(
        actor,
        CONTACTS,
        model(
            first_name="Bob",
            last_name="Byte",
            emails=[{"value": "bob@globex.example"}],
            phones=[{"value": "(415) 555-0100"}, {"value": "+1 415 555 0199", "label": "mobile"}],
            tags=["customer"],
            custom={"score": 7},
            organization_ids=[{"organization_id": globex["id"], "role": "buyer", "title": "Head of Buying"}],
        ),
    )
    cy = await crm.create(actor, CONTACTS, model(first_name="Cy", last_name="Young"))
    return {"ada": ada["id"], "bob": bob["id"], "cy": cy["id"]}


def comparable(contact: dict[str, Any]) -> dict[str, Any]:
    """A contact's values, without what differs between databases (ids, times, owner) and what the export does not
    carry (the labels of emails and phones)."""
    return {
        "name": (contact["first_name"], contact["last_name"]),
        "emails": [e["value"] for e in contact["emails"]],
        "email": contact["email"],
        "phones": [p["value"] for p in contact["phones"]],
        "phone": contact["phone"],
        **{k: contact[k] for k in ("job_title", "notes", "address", "birthday", "tags", "custom")},
        "organizations": memberships(contact),
    }


def export_people(url: str, tmp_path: Path) -> tuple[dict[str, str], Path]:
    made = with_crm(url, _people_to_export)
    path = tmp_path / "contacts.csv"
    done = cli(url, "export", "contacts", "-f", "csv", "-o", path)
    assert done.exit_code == 0, done.output
    return made, path


def test_an_export_imports_into_another_workspace_field_by_field(database_url, tmp_path):
    made, path = export_people(database_url, tmp_path)
    other = _other_workspace(database_url)

    async def prepare(crm: Crm, _: Actor) -> None:
        await _custom_fields(crm, other)
        await crm.create(other, ORGANIZATIONS, create_model_for(ORGANIZATIONS)(name="Acme"))

    with_crm(database_url, prepare)
    mapping = tmp_path / "map.json"  # the ids (and the owner) are the other workspace's: match organizations by name
    mapping.write_text(json.dumps({"id": None, "owner_id": None, "owner": None, "organization_ids": None}))

    done = cli(database_url, "import", "contacts", path, "-w", "other", "--map", mapping, "--create-missing", "-y")
    assert done.exit_code == 0, done.output
    assert report(done) == {
        "verb": "Imported", "rows": 3, "ok": 3, "bad": 0, "created": 3, "updated": 0, "unchanged": 0, "links": 3,
        "related": {"organizations": 2},
    }  # fmt: skip

    async def imported(crm: Crm, _: Actor) -> list[dict[str, Any]]:
        return [await crm.get(other, CONTACTS, c["id"]) for c in await _all(crm, other, CONTACTS)]

    copies = {(c["first_name"], c["last_name"]): c for c in with_crm(database_url, imported)}
    assert len(copies) == 3
    for original_id in made.values():
        original = record(database_url, CONTACTS, original_id)
        copy = copies[(original["first_name"], original["last_name"])]
        assert copy["id"] != original_id
        assert comparable(copy) == comparable(original), original["first_name"]
        assert copy["owner_id"] == other.user_id
    assert len(with_crm(database_url, lambda crm, _: _all(crm, other, ORGANIZATIONS))) == 3


def test_reimporting_an_export_by_id_changes_nothing(database_url, tmp_path):
    made, path = export_people(database_url, tmp_path)
    before = snap(database_url)

    done = cli(database_url, "import", "contacts", path, "--match", "id", "-y")
    assert done.exit_code == 0, done.output
    assert report(done) == {
        "verb": "Imported", "rows": 3, "ok": 3, "bad": 0, "created": 0, "updated": 0, "unchanged": 3, "links": 0,
        "related": {},
    }  # fmt: skip
    after = snap(database_url)
    assert {k: v for k, v in after.items() if k != "imports"} == {k: v for k, v in before.items() if k != "imports"}
    (run,) = runs(database_url)
    assert (run["status"], run["rows_done"]) == ("done", 3)
    assert [record(database_url, CONTACTS, i)["revision"] for i in made.values()] == [1, 1, 1]


def test_a_dry_run_counts_rows_that_change_nothing_as_unchanged(database_url, tmp_path):
    _, path = export_people(database_url, tmp_path)
    done = cli(database_url, "import", "contacts", path, "--match", "id", "--dry-run")
    assert done.exit_code == 0, done.output
    assert report(done) == {
        "verb": "Would import", "rows": 3, "ok": 3, "bad": 0, "created": 0, "updated": 0, "unchanged": 3,
        "links": 0, "related": {},
    }  # fmt: skip


def test_a_reimport_by_id_changes_an_edited_role(database_url, tmp_path):
    made, path = export_people(database_url, tmp_path)
    with path.open(encoding="utf-8", newline="") as stream:
        header, *rows = list(csv.reader(stream))
    role = header.index("organizations.role")
    bob = next(row for row in rows if row[header.index("first_name")] == "Bob")
    assert bob[role] == "buyer"
    bob[role] = "decision maker"
    with path.open("w", encoding="utf-8", newline="") as stream:
        csv.writer(stream).writerows([header, *rows])

    done = cli(database_url, "import", "contacts", path, "--match", "id", "-y")
    assert done.exit_code == 0, done.output
    assert (report(done)["updated"], report(done)["unchanged"]) == (1, 2)
    assert memberships(record(database_url, CONTACTS, made["bob"])) == [
        ("Globex", "decision maker", "Head of Buying", False)
    ]


def test_an_id_column_is_only_read_with_match_id(database_url, tmp_path):
    # An export has an id column: without --match id it names no record to update (a row with an unknown id used
    # to crash the import with a KeyError in _write_updates).
    path = tmp_path / "with-ids.csv"
    path.write_text("id,first_name,last_name\n01a00000-0000-7000-8000-000000000000,Ada,Lovelace\n", encoding="utf-8")
    done = cli(database_url, "import", "contacts", path, "-y")
    assert done.exception is None or isinstance(done.exception, SystemExit), repr(done.exception)
    assert done.exit_code == 0, done.output
    assert report(done)["created"] == 1
    assert [(c["first_name"], c["last_name"]) for c in every(database_url, CONTACTS)] == [("Ada", "Lovelace")]


# ------------------------------------------------------------------------------------------ import_rows


def import_rows(url: str, entity: Any, rows: list[dict[str, Any]], **options: Any) -> dict[str, Any]:
    return with_crm(url, lambda crm, actor: crm.import_rows(actor, entity, rows, **options))


ROWS = [
    {"First Name": "Ada", "Last Name": "Lovelace", "Email": "ada@acme.example", "Company": "Acme"},
    {"First Name": "Bob", "Last Name": "", "Email": "bob@acme.example"},
    {"First Name": "Cy", "Last Name": "Young", "Birthday": "31.02.1990"},
]


def test_import_rows_writes_nothing_when_a_row_is_bad(database_url):
    create(database_url, ORGANIZATIONS, name="Acme")
    before = snap(database_url)
    with pytest.raises(CrmError) as refused:
        import_rows(database_url, CONTACTS, ROWS)
    assert str(refused.value) == (
        "2 of 3 rows are bad; nothing was imported. Fix them, or pass skip_bad_rows to import the others:\n"
        "- rows[1]: last_name: Field required\n"
        "- rows[2]: Birthday: '31.02.1990' is not a real date"
    )
    assert snap(database_url) == before


def test_import_rows_skip_bad_rows_writes_the_good_ones(database_url):
    acme = create(database_url, ORGANIZATIONS, name="Acme")
    done = import_rows(database_url, CONTACTS, ROWS, skip_bad_rows=True)
    assert done == {
        "mapping": [
            {"column": "First Name", "field": "first_name"},
            {"column": "Last Name", "field": "last_name"},
            {"column": "Email", "field": "emails"},
            {"column": "Company", "field": "organizations"},
            {"column": "Birthday", "field": "birthday"},
        ],
        "ignored": [],
        "report": {
            "rows": 3, "ok": 1, "bad": 2, "created": 1, "updated": 0, "unchanged": 0, "linked": 1,
            "related_created": {},
            "errors_by_reason": {"Birthday: … is not a real date": 1, "last_name: Field required": 1},
            "errors": [
                {"line": 1, "error": "last_name: Field required"},
                {"line": 2, "error": "Birthday: '31.02.1990' is not a real date"},
            ],
        },
    }  # fmt: skip
    (ada,) = every(database_url, CONTACTS)
    ada = record(database_url, CONTACTS, ada["id"])
    assert (ada["first_name"], ada["email"], [o["id"] for o in ada["organizations"]]) == (
        "Ada", "ada@acme.example", [acme["id"]],
    )  # fmt: skip


def test_import_rows_with_a_mapping(database_url):
    rows = [
        {
            "Prénom": "Marie",
            "Nom": "Curie",
            "Courriel": "Marie Curie <marie@sorbonne.example>",
            "Portable": "+33 6 12 34 56 78",
            "Société": "Sorbonne",
            "Rôle": "physicist",
            "Étiquettes": ["nobel", "physics"],  # JSON values are cells too
            "Divers": "skip me",
            "Naissance": "07.11.1867",
            "Job Title": "Professor",  # matched by name beside the mapping
        }
    ]
    mapping = {
        "Prénom": "first_name",
        "Nom": "last_name",
        "Courriel": "emails:home",
        "Portable": "phones:mobile",
        "Société": "organizations",
        "Rôle": "organizations.role",
        "Étiquettes": "tags",
        "Divers": None,
        "Naissance": "birthday",
    }
    done = import_rows(database_url, CONTACTS, rows, mapping=mapping, create_missing=True)
    assert done["mapping"] == [
        {"column": column, "field": field} for column, field in {**mapping, "Job Title": "job_title"}.items() if field
    ]
    assert done["ignored"] == [{"column": "Divers", "why": "skipped by the mapping"}]
    assert {k: done["report"][k] for k in ("rows", "ok", "bad", "created", "linked", "related_created")} == {
        "rows": 1, "ok": 1, "bad": 0, "created": 1, "linked": 1, "related_created": {"organizations": 1},
    }  # fmt: skip
    (marie,) = every(database_url, CONTACTS)
    marie = record(database_url, CONTACTS, marie["id"])
    assert marie["emails"] == [{"value": "marie@sorbonne.example", "label": "home", "primary": True}]
    assert marie["phones"] == [{"value": "+33 6 12 34 56 78", "label": "mobile", "primary": True}]
    assert (marie["tags"], marie["birthday"], marie["job_title"]) == (["nobel", "physics"], "1867-11-07", "Professor")
    assert memberships(marie) == [("Sorbonne", "physicist", None, False)]


def test_import_rows_matches_organizations_by_name(database_url):
    acme = create(database_url, ORGANIZATIONS, name="Acme")
    rows = [
        {"Name": "ACME", "Industry": "Rockets", "Employees": 120, "Relationship": "Customer"},
        {"Name": "Newco", "Employees": "1,200", "Website": "https://newco.example", "Tags": "startup; b2b"},
    ]
    done = import_rows(database_url, ORGANIZATIONS, rows, match="name")
    assert {k: done["report"][k] for k in ("rows", "ok", "bad", "created", "updated", "unchanged")} == {
        "rows": 2, "ok": 2, "bad": 0, "created": 1, "updated": 1, "unchanged": 0,
    }  # fmt: skip
    stored = {o["name"].casefold(): o for o in every(database_url, ORGANIZATIONS)}
    assert sorted(stored) == ["acme", "newco"]
    assert (stored["acme"]["id"], stored["acme"]["industry"], stored["acme"]["employee_count"]) == (
        acme["id"], "Rockets", 120,
    )  # fmt: skip
    assert stored["acme"]["relationship"] == "customer"
    assert (stored["newco"]["employee_count"], stored["newco"]["website"], stored["newco"]["tags"]) == (
        1200, "https://newco.example", ["startup", "b2b"],
    )  # fmt: skip

    again = import_rows(database_url, ORGANIZATIONS, rows, match="name")
    assert {k: again["report"][k] for k in ("created", "updated", "unchanged")} == {
        "created": 0, "updated": 0, "unchanged": 2,
    }  # fmt: skip
    assert count(database_url, "organizations") == 2


def test_match_by_email_finds_a_stored_address_written_in_another_case(database_url):
    grace = create(
        database_url, CONTACTS, first_name="Grace", last_name="Hopper", emails=[{"value": "Grace.Hopper@navy.example"}]
    )
    rows = [{"First Name": "Grace", "Last Name": "Hopper", "Email": "grace.hopper@navy.example", "Title": "RADM"}]
    done = import_rows(database_url, CONTACTS, rows, match="email")
    assert (done["report"]["created"], done["report"]["updated"]) == (0, 1)
    (stored,) = every(database_url, CONTACTS)
    assert (stored["id"], stored["job_title"]) == (grace["id"], "RADM")


def test_a_bad_row_creates_no_organization(database_url):
    rows = [
        {"First Name": "Di", "Last Name": "Dee", "Email": "not-an-email", "Company": "Umbrella"},
        {"First Name": "Ed", "Last Name": "Eel", "Company": "Globex"},
    ]
    done = import_rows(database_url, CONTACTS, rows, create_missing=True, skip_bad_rows=True)
    assert {k: done["report"][k] for k in ("ok", "bad", "created", "linked", "related_created")} == {
        "ok": 1, "bad": 1, "created": 1, "linked": 1, "related_created": {"organizations": 1},
    }  # fmt: skip
    assert [o["name"] for o in every(database_url, ORGANIZATIONS)] == ["Globex"]


def test_a_bad_row_does_not_set_aside_a_good_row_with_the_same_email(database_url):
    rows = [
        {"First Name": "Ada", "Last Name": "Lovelace", "Email": "ada@acme.example"},
        {"First Name": "Ada", "Last Name": "Lovelace", "Email": "ADA@acme.example", "E-mail (home)": "ada at home"},
    ]
    done = import_rows(database_url, CONTACTS, rows, match="email", skip_bad_rows=True)
    assert [e["line"] for e in done["report"]["errors"]] == [1]
    assert {k: done["report"][k] for k in ("ok", "bad", "created")} == {"ok": 1, "bad": 1, "created": 1}
    assert [c["email"] for c in every(database_url, CONTACTS)] == ["ada@acme.example"]


def test_an_exports_email_and_phone_columns_add_nothing(database_url):
    rows = [
        {
            "first_name": "Ada",
            "last_name": "Lovelace",
            "emails": "ada@acme.example; ada@home.example",
            "email": "ada@acme.example",
            "phones": "+44 20 7946 0000",
            "phone": "+44 20 7946 0000",
        }
    ]
    import_rows(database_url, CONTACTS, rows)
    (ada,) = every(database_url, CONTACTS)
    assert [e["value"] for e in ada["emails"]] == ["ada@acme.example", "ada@home.example"]
    assert [p["value"] for p in ada["phones"]] == ["+44 20 7946 0000"]


def test_link_attributes_stay_aligned_with_their_records(database_url):
    create(database_url, ORGANIZATIONS, name="Acme")
    create(database_url, ORGANIZATIONS, name="Globex")
    rows = [{"first_name": "A", "last_name": "L", "organizations": "Acme; Globex", "organizations.role": "; champion"}]
    import_rows(database_url, CONTACTS, rows)
    (ada,) = every(database_url, CONTACTS)
    assert memberships(record(database_url, CONTACTS, ada["id"])) == [
        ("Acme", None, None, False),
        ("Globex", "champion", None, False),
    ]


# ------------------------------------------------------------------------------------------ lenient cells


@pytest.mark.parametrize(
    ("cell", "day_first", "expected"),
    [
        ("2026-03-31", False, date(2026, 3, 31)),
        ("2026-03-31T14:30:00Z", False, date(2026, 3, 31)),
        ("2026/3/31", False, date(2026, 3, 31)),
        ("31.03.1990", False, date(1990, 3, 31)),
        ("1.2.2026", False, date(2026, 2, 1)),  # dots: day first
        ("03/31/1990", False, date(1990, 3, 31)),
        ("04/05/2026", False, date(2026, 4, 5)),
        ("04/05/2026", True, date(2026, 5, 4)),
        ("13/05/2026", False, date(2026, 5, 13)),  # no month 13: day first
        ("03-31-26", False, date(2026, 3, 31)),
        ("03/31/75", False, date(1975, 3, 31)),
        ("31 Mar 1990", False, date(1990, 3, 31)),
        ("31. March 1990", False, date(1990, 3, 31)),
        ("Mar 31, 1990", False, date(1990, 3, 31)),
        ("March 31st, 1990", False, date(1990, 3, 31)),
        ("  sept 9 2001 ", False, date(2001, 9, 9)),
    ],
)
def test_dates(cell, day_first, expected):
    assert lenient.day(cell, day_first) == expected


@pytest.mark.parametrize(
    ("cell", "message"),
    [
        ("31.02.1990", "'31.02.1990' is not a real date"),
        ("2026-13-01", "'2026-13-01' is not a real date"),
        ("32/01/1990", "'32/01/1990' is not a real date"),
        ("31 Foo 1990", "'31 Foo 1990' is not a date (write it as 2026-03-31, 31.03.2026, 03/31/2026 or 31 Mar 2026)"),
        ("yesterday", "'yesterday' is not a date (write it as 2026-03-31, 31.03.2026, 03/31/2026 or 31 Mar 2026)"),
    ],
)
def test_bad_dates(cell, message):
    with pytest.raises(BadValue) as refused:
        lenient.day(cell)
    assert str(refused.value) == message


@pytest.mark.parametrize(
    ("cell", "expected"),
    [
        ("2026-03-31 14:30", datetime(2026, 3, 31, 14, 30, tzinfo=UTC)),
        ("2026-03-31T14:30:00+02:00", datetime(2026, 3, 31, 12, 30, tzinfo=UTC)),
        ("2026-03-31T14:30:00Z", datetime(2026, 3, 31, 14, 30, tzinfo=UTC)),
        ("31.03.2026 9:05", datetime(2026, 3, 31, 9, 5, tzinfo=UTC)),
        ("Mar 31, 2026", datetime(2026, 3, 31, tzinfo=UTC)),
    ],
)
def test_moments(cell, expected):
    assert lenient.moment(cell) == expected


@pytest.mark.parametrize(
    ("cell", "amount", "currency"),
    [
        ("1200", "1200", None),
        ("$1,200.50", "1200.50", "USD"),
        ("1.200,50 €", "1200.50", "EUR"),
        ("EUR 1200", "1200", "EUR"),
        ("1,234", "1234", None),  # a comma before three digits groups thousands
        ("1.234", "1234", None),
        ("1.234.567,89", "1234567.89", None),
        ("12,5", "12.5", None),
        ("CHF 1'234.50", "1234.50", "CHF"),
        ("1 234,56 kr", "1234.56", None),
        ("£ 99", "99", "GBP"),
        ("-5", "-5", None),
        ("(1,200.00)", "-1200.00", None),
        ("1200 usd", "1200", "USD"),
    ],
)
def test_money(cell, amount, currency):
    assert lenient.money(cell) == (Decimal(amount), currency)


@pytest.mark.parametrize("cell", ["abc", "€", "--", "EUR"])
def test_not_money(cell):
    with pytest.raises(BadValue) as refused:
        lenient.money(cell)
    assert str(refused.value) == f"'{cell}' is not a number (write it like 1200.50 or 1,200.50)"


def test_whole_numbers():
    assert lenient.integer("1,200") == 1200
    with pytest.raises(BadValue, match=r"^'1\.5' is not a whole number$"):
        lenient.integer("1.5")


@pytest.mark.parametrize("cell", ["yes", "Y", "TRUE", "t", "1", "x", "X", "Done", "on", "✓"])
def test_true(cell):
    assert lenient.boolean(cell) is True


@pytest.mark.parametrize("cell", ["no", "N", "False", "f", "0", "open", "off", "To do", "not done"])
def test_false(cell):
    assert lenient.boolean(cell) is False


def test_not_a_boolean():
    with pytest.raises(BadValue) as refused:
        lenient.boolean("maybe")
    assert str(refused.value) == "'maybe' is not yes/no (use yes, no, true, false, 1 or 0)"


@pytest.mark.parametrize(
    ("cell", "expected"),
    [
        ("+44 20 7946 0000", "+44 20 7946 0000"),
        ("+44 20 7946 0000 ext. 12", "+44 20 7946 0000"),
        ("(415) 555-0100 x7", "(415) 555-0100"),
        ("415.555.0100 extension 9", "415.555.0100"),
        ("0171/5550003 #12", "0171/5550003"),
        ("tel:+49-30-1234567", "+49-30-1234567"),
        ("  +1 415 555 0100 Ext 3 ", "+1 415 555 0100"),
        ("phone: +49 30 123", "+49 30 123"),
    ],
)
def test_phones(cell, expected):
    assert lenient.phone(cell) == expected


def test_not_a_phone():
    with pytest.raises(BadValue) as refused:
        lenient.phone("12")
    assert str(refused.value) == "'12' is not a phone number (it needs at least 3 digits)"


def test_blanks_emails_lists_and_options():
    assert all(lenient.blank(c) for c in [None, "", "  ", "-", "--", "N/A", "na", "NULL", "None", "#N/A"])
    assert not any(lenient.blank(c) for c in ["0", "no", "x"])
    assert lenient.email(" mailto:Ada@Acme.com ") == "Ada@Acme.com"
    assert lenient.email("Ada Lovelace <ada@acme.com>") == "ada@acme.com"
    assert lenient.email("ada@acme.com.") == "ada@acme.com"
    assert lenient.values("vip, newsletter | lead;cold ; n/a") == ["vip", "newsletter", "lead", "cold"]
    assert lenient.values("Smith, Jones & Co; Acme | Globex", names=True) == ["Smith, Jones & Co", "Acme", "Globex"]
    assert lenient.text("  Ada   Lovelace ") == "Ada Lovelace"
    assert lenient.option("Closed-Won", ("open", "closed_won")) == "closed_won"
    with pytest.raises(BadValue, match=r"^'Maybe' is not one of: open, closed_won$"):
        lenient.option("Maybe", ("open", "closed_won"))


# ------------------------------------------------------------------------------------------ columns

TIER = {"tier": {"key": "tier", "label": "Customer Tier", "type": "single_option"}}
BUDGET = {"budget": {"key": "budget", "label": "Budget", "type": "monetary"}}


def mapped(headers: list[str], custom: dict[str, Any] | None = None, **options: Any) -> dict[str, str]:
    return dict(map_columns(CONTACTS, headers, custom or {}, **options).rows())


def test_columns_are_matched_by_name_alias_and_label():
    assert mapped(
        [
            "Given Name", "Surname", "Full Name", "E-mail (home)", "Work Email", "Email", "Mobile", "Phone - Work",
            "Home Phone", "Business Phone", "Phone", "Company", "DOB", "Position", "Address - City", "Street Address",
            "Zip", "State", "Labels", "Assigned to", "Record ID", "Customer Tier", "Description",
        ],
        TIER,
    ) == {
        "Given Name": "first_name",
        "Surname": "last_name",
        "Full Name": "name",
        "E-mail (home)": "emails:home",
        "Work Email": "emails:work",
        "Email": "emails",
        "Mobile": "phones:mobile",
        "Phone - Work": "phones:work",
        "Home Phone": "phones:home",
        "Business Phone": "phones:work",
        "Phone": "phones",
        "Company": "organizations",
        "DOB": "birthday",
        "Position": "job_title",
        "Address - City": "address.city",
        "Street Address": "address.street",
        "Zip": "address.postal_code",
        "State": "address.region",
        "Labels": "tags",
        "Assigned to": "owner",
        "Record ID": "id",
        "Customer Tier": "custom.tier",
        "Description": "notes",
    }  # fmt: skip
    assert mapped(["Person - Name", "Person - Email", "Person - Organization"], strip_prefix=True) == {
        "Person - Name": "name",
        "Person - Email": "emails",
        "Person - Organization": "organizations",
    }
    assert mapped(["Favourite Color", "Frist Name"]) == {
        "Favourite Color": "(ignored: no such field)",
        "Frist Name": "(ignored: no such field; did you mean 'first_name'?)",
    }


def test_mobile_phone_columns_are_mobile_phones():
    # Outlook's and many CRMs' header (these used to be ignored, their numbers silently dropped)
    assert mapped(["Mobile Phone", "Cell Phone", "Cellphone"]) == {
        "Mobile Phone": "phones:mobile",
        "Cell Phone": "phones:mobile",
        "Cellphone": "phones:mobile",
    }


def test_two_columns_for_one_field_need_a_mapping():
    with pytest.raises(CrmError) as refused:
        mapped(["First Name", "Given Name", "Last Name"])
    assert str(refused.value) == (
        "Some columns fill the same field: 'First Name', 'Given Name' all fill first_name. Say which to use with a "
        'mapping ({"column": "field", "other column": null}).'
    )
    assert mapped(["First Name", "Given Name", "Last Name"], given={"Given Name": None}) == {
        "First Name": "first_name",
        "Last Name": "last_name",
        "Given Name": "(ignored: skipped by the mapping)",
    }
    # emails, phones and tags take several columns
    assert mapped(["Email", "Work Email", "Tags", "Labels"]) == {
        "Email": "emails",
        "Work Email": "emails:work",
        "Tags": "tags",
        "Labels": "tags",
    }


def test_a_column_of_ids_wins_over_a_column_of_names():
    assert mapped(["owner", "owner_id", "Company", "organization_ids", "organizations.role"]) == {
        "owner_id": "owner_id",
        "organization_ids": "organization_ids",
        "organizations.role": "organizations.role",
        "owner": "(ignored: 'owner_id' gives the ids)",
        "Company": "(ignored: 'organization_ids' gives the ids)",
    }


def test_a_mapping_names_real_columns_and_real_fields():
    with pytest.raises(CrmError) as refused:
        mapped(["Name"], given={"Nmae": "name"})
    assert str(refused.value) == "The mapping names columns the file does not have: Nmae. Columns: Name."
    with pytest.raises(CrmError) as refused:
        mapped(["Mail"], given={"Mail": "emial"})
    assert str(refused.value) == "'emial' is not something contacts can be imported into. Did you mean 'emails'?"
    assert mapped(["Mail", "Cur"], BUDGET, given={"Mail": "emails:other", "Cur": "custom.Budget.currency"}) == {
        "Mail": "emails:other",
        "Cur": "custom.budget.currency",  # a custom field by its label
    }
    assert target_of(CONTACTS, "custom.budget.amount", BUDGET).part == "budget.amount"


def test_the_transfer_modules_import_on_their_own():
    for module in ("mcp_crm.transfer.importing", "mcp_crm.transfer.import_file", "mcp_crm.transfer.columns"):
        done = subprocess.run([sys.executable, "-c", f"import {module}"], capture_output=True, text=True, timeout=60)
        assert done.returncode == 0, (module, done.stderr.strip().splitlines()[-1:])


def test_the_printed_mapping_is_in_column_order():
    rows = map_columns(CONTACTS, ["First Name", "Favourite Color", "Last Name"], {}).rows()
    assert [header for header, _ in rows] == ["First Name", "Favourite Color", "Last Name"]


def test_the_columns_the_crm_sets_are_ignored_as_such():
    assert mapped(["created_at", "updated_at", "revision", "Add time"]) == {
        "created_at": "(ignored: set by the CRM)",
        "updated_at": "(ignored: set by the CRM)",
        "revision": "(ignored: set by the CRM)",
        "Add time": "(ignored: set by the CRM)",
    }
