"""`mcp-crm export`: CSV columns and cells as documented, JSONL equal to `*_get`, the list filters, every entity,
large tables in pages, and mistakes as one red line."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path
from typing import Any

import anyio
import pytest
import typer
from typer.testing import CliRunner, Result

from mcp_crm.demo import load_demo
from mcp_crm.entities import ENTITIES
from mcp_crm.entities.custom import TYPES
from mcp_crm.entities.models import create_model_for, update_model_for
from mcp_crm.operations import Crm, ListQuery
from mcp_crm.operations.workspace import local_actor
from mcp_crm.store import Database
from mcp_crm.transfer import export as exporting
from mcp_crm.transfer.export_cli import register
from tests.helpers import call

pytestmark = pytest.mark.anyio

app = typer.Typer()


@app.callback()
def _root() -> None:
    """A root, so `export` stays a named sub-command as in mcp-crm."""


register(app)
runner = CliRunner(env={"COLUMNS": "300"})


def run(database_url: str, *args: str) -> Result:
    return runner.invoke(app, ["export", *args, "--database-url", database_url])


async def export(database_url: str, *args: str) -> Result:
    """The command, on a worker thread: it runs its own event loop."""
    return await anyio.to_thread.run_sync(lambda: run(database_url, *args))


def csv_rows(text: str) -> list[list[str]]:
    return list(csv.reader(io.StringIO(text)))


async def test_csv_columns_and_cells_are_as_documented(client, database_url):
    for field in (
        {"label": "Tier", "type": "single_option", "options": [{"label": "Gold"}, {"label": "Silver"}]},
        {"label": "Score", "type": "number"},
        {"label": "Budget", "type": "monetary"},
        {"label": "Manager", "type": "user"},
        {"label": "Products", "type": "multiple_options", "options": [{"label": "CRM"}, {"label": "API"}]},
    ):
        await call(client, "fields_create", {"entity": "contacts", **field})
    acme = await call(client, "organizations_create", {"name": "Acme; Co"})
    globex = await call(client, "organizations_create", {"name": "Globex"})
    ada = await call(
        client,
        "contacts_create",
        {
            "first_name": "Ada",
            "last_name": "Lovelace",
            "emails": [
                {"value": "ada@home.example", "label": "home"},
                {"value": "ada@acme.example", "label": "work", "primary": True},
            ],
            "phones": [{"value": "+44 20 7946 0000", "label": "mobile"}],
            "job_title": "CTO",
            "notes": "Line one,\nline two",
            "address": {"city": "London", "country": "UK"},
            "birthday": "1815-12-10",
            "tags": ["vip", "a;b\\c"],
            "organization_ids": [
                {"organization_id": acme["id"], "role": "champion", "is_primary": True},
                {"organization_id": globex["id"]},
            ],
            "custom": {
                "tier": "gold",
                "score": 42.5,
                "budget": {"amount": "1200.50", "currency": "EUR"},
                "products": ["crm", "api"],
            },
        },
    )
    owner = ada["owner_id"]
    await call(client, "contacts_update", {"id": ada["id"], "custom": {"manager": owner}})
    bob = await call(client, "contacts_create", {"first_name": "Bob", "last_name": "Byte", "owner_id": None})
    ada = await call(client, "contacts_get", {"id": ada["id"]})
    bob = await call(client, "contacts_get", {"id": bob["id"]})
    owner_name = ada["related"]["owner_id"]["name"]

    done = await export(database_url, "contacts", "--format", "csv")
    assert done.exit_code == 0, done.output
    header, *rows = csv_rows(done.stdout)
    assert header == [
        "id", "created_at", "updated_at", "revision", "first_name", "last_name", "emails", "email", "phones",
        "phone", "job_title", "notes", "address.street", "address.city", "address.region", "address.postal_code",
        "address.country", "birthday", "tags", "email_opt_out", "email_opt_out_reason", "email_opted_out_at",
        "owner_id", "owner", "custom.tier", "custom.score",
        "custom.budget.amount", "custom.budget.currency", "custom.manager", "custom.manager.name", "custom.products",
        "organization_ids", "organizations", "organizations.role", "organizations.title",
        "organizations.is_primary",
    ]  # fmt: skip
    assert rows == [
        [
            ada["id"], ada["created_at"], ada["updated_at"], "2", "Ada", "Lovelace",
            "ada@acme.example; ada@home.example", "ada@acme.example", "+44 20 7946 0000", "+44 20 7946 0000",
            "CTO", "Line one,\nline two", "", "London", "", "", "UK", "1815-12-10", "vip; a\\;b\\\\c",
            "false", "", "", owner, owner_name, "gold", "42.5", "1200.5", "EUR", owner, owner_name, "crm; api",
            f"{acme['id']}; {globex['id']}", "Acme\\; Co; Globex", "champion; ", "", "true; false",
        ],
        [
            bob["id"], bob["created_at"], bob["updated_at"], "1", "Bob", "Byte", "", "", "", "", "", "", "", "",
            "", "", "", "", "", "false", "", "", "", "", "", "", "", "", "", "", "", "", "", "", "", "",
        ],
    ]  # fmt: skip
    assert exporting.split_values(rows[0][18]) == ["vip", "a;b\\c"]
    assert exporting.split_values(rows[0][-4]) == ["Acme; Co", "Globex"]
    assert exporting.split_values(rows[0][-3]) == ["champion", ""]


async def test_deal_money_line_items_and_references(client, database_url, world):
    done = await export(database_url, "deals", "--format", "csv")
    assert done.exit_code == 0, done.output
    header, row = csv_rows(done.stdout)
    deal = dict(zip(header, row, strict=True))
    got = await call(client, "deals_get", {"id": world["deal"]["id"]})
    assert {k: deal[k] for k in ("value", "currency", "stage", "pipeline", "stage_id", "owner")} == {
        "value": "1875.00",
        "currency": "EUR",
        "stage": got["related"]["stage_id"]["name"],
        "pipeline": got["related"]["pipeline_id"]["name"],
        "stage_id": got["stage_id"],
        "owner": got["related"]["owner_id"]["name"],
    }
    assert {k: v for k, v in deal.items() if k.startswith(("service", "organization", "contact"))} == {
        "organization_ids": world["acme"]["id"],
        "organizations": "Acme",
        "contact_ids": world["ada"]["id"],
        "contacts": "Ada L",
        "service_ids": world["hours"]["id"],
        "services": "Consulting",
        "services.quantity": "12.5000",
        "services.unit_price": "150.00",
        "services.discount_percent": "",
        "services.discount_amount": "",
        "services.total": "1875.00",
    }


async def test_jsonl_lines_are_what_get_returns(client, database_url, world):
    for entity, record in (
        ("organizations", world["acme"]),
        ("contacts", world["ada"]),
        ("services", world["hours"]),
        ("deals", world["deal"]),
        ("tasks", world["task"]),
    ):
        done = await export(database_url, entity, "--format", "jsonl")
        assert done.exit_code == 0, done.output
        lines = [json.loads(line) for line in done.stdout.splitlines()]
        assert lines == [await call(client, f"{entity}_get", {"id": record["id"]})]


async def test_the_filter_is_the_list_filter(client, database_url, tmp_path):
    await call(client, "fields_create", {"entity": "contacts", "label": "Score", "type": "number"})
    people = {}
    for first, tags, score in (("Ada", ["vip"], 90), ("Bob", [], 10), ("Cy", ["vip"], 5)):
        made = {"first_name": first, "last_name": "X", "tags": tags, "custom": {"score": score}}
        people[first] = (await call(client, "contacts_create", made))["id"]
    tree = {
        "and": [{"field": "tags", "op": "contains", "value": "vip"}, {"field": "custom.score", "op": "gt", "value": 50}]
    }
    listed = await call(client, "contacts_list", {"filter": tree})
    assert [c["id"] for c in listed["items"]] == [people["Ada"]]

    done = await export(database_url, "contacts", "--format", "jsonl", "--filter", json.dumps(tree))
    assert [json.loads(line)["id"] for line in done.stdout.splitlines()] == [people["Ada"]]
    vip = json.dumps({"field": "tags", "op": "contains", "value": "vip"})
    folder = tmp_path / "out"
    folder.mkdir()
    target = folder / "vip.csv"
    done = await export(database_url, "contacts", "-f", "csv", "--filter", vip, "-o", str(target), "-w", "local")
    assert done.exit_code == 0, done.output
    assert done.stdout == ""
    assert "Wrote 2 contacts to" in done.stderr
    assert [row[4] for row in csv_rows(target.read_text(encoding="utf-8"))[1:]] == ["Ada", "Cy"]
    assert [p.name for p in folder.iterdir()] == ["vip.csv"]  # no temporary file left behind


async def test_the_workspace_is_chosen_by_slug_or_id(client, database_url):
    await call(client, "contacts_create", {"first_name": "Ada", "last_name": "X"})
    db = Database(database_url)
    try:
        actor = await local_actor(db, via="cli")
    finally:
        await db.dispose()
    by_slug = await export(database_url, "contacts", "-f", "jsonl")
    by_id = await export(database_url, "contacts", "-f", "jsonl", "-w", actor.workspace_id)
    assert by_slug.exit_code == by_id.exit_code == 0
    assert by_slug.stdout == by_id.stdout and by_slug.stdout.count("\n") == 1


async def _totals(database_url: str) -> dict[str, int]:
    """How many records `*_list` counts for each entity."""
    db = Database(database_url)
    try:
        crm, actor = Crm(db), await local_actor(db, via="cli")
        return {
            name: (await crm.list(actor, entity, ListQuery(limit=1, include_total=True))).total or 0
            for name, entity in ENTITIES.items()
        }
    finally:
        await db.dispose()


async def _custom_field_of_each_type(database_url: str) -> str:
    """One organization field of every type, all set on one organization; returns its id."""
    db = Database(database_url)
    try:
        crm, actor = Crm(db), await local_actor(db, via="cli")
        fields, orgs, contacts = ENTITIES["fields"], ENTITIES["organizations"], ENTITIES["contacts"]
        options = [{"label": "A"}, {"label": "B"}]
        for kind in TYPES:
            more = {"options": options} if kind.endswith("_option") or kind.endswith("_options") else {}
            made = {"entity": "organizations", "label": f"F {kind}", "type": kind, **more}
            await crm.create(actor, fields, create_model_for(fields)(**made))
        org = (await crm.list(actor, orgs, ListQuery(limit=1))).items[0]
        contact = (await crm.list(actor, contacts, ListQuery(limit=1))).items[0]
        values = dict(CUSTOM_VALUES, f_user=actor.user_id, f_contact=contact["id"], f_organization=org["id"])
        await crm.update(actor, orgs, org["id"], update_model_for(orgs)(custom=values))
        return str(org["id"])
    finally:
        await db.dispose()


CUSTOM_VALUES = {
    "f_text": "x",
    "f_long_text": "y",
    "f_number": 3,
    "f_monetary": {"amount": "1.50", "currency": "EUR"},
    "f_date": "2026-01-01",
    "f_date_range": {"start": "2026-01-01", "end": "2026-02-01"},
    "f_time": "09:00",
    "f_time_range": {"start": "09:00", "end": "17:30"},
    "f_boolean": True,
    "f_single_option": "a",
    "f_multiple_options": ["a", "b"],
    "f_phone": "+49 30 123456",
    "f_email": "a@b.example",
    "f_url": "https://b.example",
    "f_address": {"city": "Berlin", "country": "Germany"},
}


def test_every_entity_exports_in_both_formats(database_url):
    anyio.run(load_demo, database_url)
    org_id = anyio.run(_custom_field_of_each_type, database_url)
    totals = anyio.run(_totals, database_url)
    assert min(totals.values()) > 0
    done = run(database_url, "organizations", "-f", "csv")
    header, *rows = csv_rows(done.stdout)
    org = dict(zip(header, next(r for r in rows if r[0] == org_id), strict=True))
    assert {k: v for k, v in org.items() if k.startswith("custom.") and "user" not in k and "contact" not in k} | {
        "custom.f_organization": org_id
    } == {
        "custom.f_text": "x",
        "custom.f_long_text": "y",
        "custom.f_number": "3",
        "custom.f_monetary.amount": "1.5",
        "custom.f_monetary.currency": "EUR",
        "custom.f_date": "2026-01-01",
        "custom.f_date_range.start": "2026-01-01",
        "custom.f_date_range.end": "2026-02-01",
        "custom.f_time": "09:00:00",
        "custom.f_time_range.start": "09:00:00",
        "custom.f_time_range.end": "17:30:00",
        "custom.f_boolean": "true",
        "custom.f_single_option": "a",
        "custom.f_multiple_options": "a; b",
        "custom.f_phone": "+49 30 123456",
        "custom.f_email": "a@b.example",
        "custom.f_url": "https://b.example",
        "custom.f_address.street": "",
        "custom.f_address.city": "Berlin",
        "custom.f_address.region": "",
        "custom.f_address.postal_code": "",
        "custom.f_address.country": "Germany",
        "custom.f_organization": org_id,
        "custom.f_organization.name": org["name"],
    }
    assert org["custom.f_user.name"] and org["custom.f_contact.name"]
    for name in ENTITIES:
        for fmt in ("csv", "jsonl"):
            done = run(database_url, name, "--format", fmt)
            assert done.exit_code == 0, (name, fmt, done.output)
            if fmt == "jsonl":
                assert len(done.stdout.splitlines()) == totals[name], name
                continue
            header, *rows = csv_rows(done.stdout)
            assert len(rows) == totals[name], name
            assert header[0] == "id" and len(set(header)) == len(header), name
            assert all(len(row) == len(header) for row in rows), name


async def test_a_large_table_is_read_in_pages_and_nothing_is_lost(client, database_url, tmp_path):
    total = 5_000
    for start in range(0, total, 100):
        items = [{"first_name": f"P{start + i}", "last_name": "Bulk", "tags": ["bulk"]} for i in range(100)]
        await call(client, "contacts_create_many", {"items": items})

    db = Database(database_url)
    try:
        actor = await local_actor(db, via="cli")

        def sizes(conn: Any) -> list[tuple[int, int | None]]:
            return [(len(page.items), page.total) for page in exporting.pages(conn, actor, ENTITIES["contacts"])]

        assert await db.read(sizes) == [(200, total)] + [(200, None)] * 24
    finally:
        await db.dispose()

    for fmt in ("csv", "jsonl"):
        target = tmp_path / f"all.{fmt}"
        done = await export(database_url, "contacts", "-f", fmt, "-o", str(target))
        assert done.exit_code == 0, done.output
        assert f"Wrote {total:,} contacts" in done.stderr
        text = target.read_text(encoding="utf-8")
        ids = [r[0] for r in csv_rows(text)[1:]] if fmt == "csv" else [json.loads(x)["id"] for x in text.splitlines()]
        assert len(ids) == len(set(ids)) == total


@pytest.mark.parametrize(
    ("args", "code", "message"),
    [
        (["contact", "-f", "csv"], 2, "Unknown entity 'contact'. Did you mean 'contacts'?"),
        (["contacts", "-f", "csv", "--filter", "{nope"], 2, "--filter is not valid JSON"),
        (["contacts", "-f", "csv", "--filter", '{"field": "email"}'], 2, "--filter: op: Field required"),
        (
            ["contacts", "-f", "csv", "--filter", '{"field": "emial", "op": "eq", "value": "x"}'],
            1,
            "Unknown filter field 'emial'. Did you mean 'email'?",
        ),
        (["contacts", "-f", "csv", "-w", "nowhere"], 1, "No workspace 'nowhere'."),
        (["contacts", "-f", "csv", "-o", "/nonexistent/folder/out.csv"], 1, "Cannot write /nonexistent/folder/out.csv"),
    ],
)
def test_mistakes_are_one_red_line(database_url, args, code, message):
    done = run(database_url, *args)
    assert done.exit_code == code, done.output
    assert done.stderr.startswith(message), done.stderr
    assert len(done.stderr.strip().splitlines()) == 1
    assert "Traceback" not in done.output and done.stdout == ""


@pytest.mark.parametrize(
    "values", [[], ["a"], ["a", "b"], ["", ""], ["a;b", "c\\", "\\;", " x "], ["Acme; Co", "Globex"]]
)
def test_list_cells_read_back_exactly(values):
    assert exporting.split_values(exporting.join_values(values)) == values


def test_a_failed_export_leaves_an_existing_file_alone(database_url, tmp_path: Path):
    folder = tmp_path / "out"
    folder.mkdir()
    target = folder / "contacts.csv"
    target.write_text("keep me", encoding="utf-8")
    done = run(database_url, "contacts", "-f", "csv", "-o", str(target), "--filter", '{"field": "x", "op": "eq"}')
    assert done.exit_code == 1
    assert target.read_text(encoding="utf-8") == "keep me"
    assert [p.name for p in folder.iterdir()] == ["contacts.csv"]


async def test_csv_cells_a_spreadsheet_would_run_are_quoted(client, database_url):
    await call(client, "fields_create", {"entity": "contacts", "label": "Score", "type": "number"})
    risky = {
        "first_name": '=HYPERLINK("http://evil.example","click")',
        "last_name": "@SUM(A1:A9)",
        "job_title": "+cmd|' /C calc'!A0",
        "notes": "-2+3+cmd|' /C calc'!A0",
        "tags": ["=1+1"],
    }
    plain = {"phones": [{"value": "+44 20 7946 0000"}], "custom": {"score": -5}}
    ada = await call(client, "contacts_create", risky | plain)

    done = await export(database_url, "contacts", "--format", "csv")

    assert done.exit_code == 0, done.output
    header, row = csv_rows(done.stdout)
    cells = dict(zip(header, row, strict=True))
    assert {name: cells[name] for name in risky} == {
        "first_name": '\'=HYPERLINK("http://evil.example","click")',
        "last_name": "'@SUM(A1:A9)",
        "job_title": "'+cmd|' /C calc'!A0",
        "notes": "'-2+3+cmd|' /C calc'!A0",
        "tags": "'=1+1",
    }
    assert (cells["phones"], cells["phone"], cells["custom.score"]) == ("+44 20 7946 0000", "+44 20 7946 0000", "-5")

    lines = await export(database_url, "contacts", "--format", "jsonl")
    (record,) = [json.loads(line) for line in lines.stdout.splitlines()]
    assert record == await call(client, "contacts_get", {"id": ada["id"]})  # JSONL is never changed
    assert record["first_name"] == risky["first_name"]
