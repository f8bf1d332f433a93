"""`mcp-crm import --from pipedrive`: Pipedrive's CSV exports of organizations, persons, products, deals,
activities and notes (tests/fixtures/pipedrive/, columns "<Entity> - <Field>", subfields "<Part> of <Field>" as
Pipedrive's API names them) become organizations, contacts, services, deals, activities and notes, linked by
name, with their pipelines and stages, labels as tags and Pipedrive's custom fields in ours by label."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import anyio
import pytest
import typer
from mcp import Client
from typer.testing import CliRunner, Result

from mcp_crm.entities import ENTITIES
from mcp_crm.operations import Crm
from mcp_crm.operations.workspace import local_actor
from mcp_crm.store import Database
from mcp_crm.transfer.import_cli import register
from mcp_crm.transfer.import_file import CsvSource, ImportOptions, import_file
from tests.helpers import call

pytestmark = pytest.mark.anyio

FIXTURES = Path(__file__).parent / "fixtures" / "pipedrive"
# Pipedrive's file -> our entity, in the order they import (each names records of the ones before)
FILES = [
    ("organizations", "organizations"),
    ("persons", "contacts"),
    ("products", "services"),
    ("deals", "deals"),
    ("activities", "activities"),
    ("notes", "notes"),
]
# Pipedrive's custom fields in the fixtures, made here first: (entity, label, type, options)
CUSTOM_FIELDS = [
    ("organizations", "Account tier", "single_option", ["Gold", "Silver", "Bronze"]),
    ("contacts", "Lead source", "text", None),
    ("services", "Categories", "multiple_options", ["Services", "Software", "Subscriptions", "Hardware"]),
    ("deals", "Priority", "single_option", ["Low", "Medium", "High"]),
    ("deals", "Budget", "monetary", None),
    ("activities", "Status", "single_option", ["Not Started", "In Progress", "Completed"]),
]
PREFIX = {
    "organizations": "Organization",
    "persons": "Person",
    "products": "Product",
    "deals": "Deal",
    "activities": "Activity",
    "notes": "Note",
}
DEAL_LABELS = ("deals", "Label", "multiple_options", ["Hot", "Warm", "Cold"])  # deals have no tags

app = typer.Typer()


@app.callback()
def _root() -> None:
    """A root, so `import` stays a named sub-command as in mcp-crm."""


register(app)
runner = CliRunner(env={"COLUMNS": "300"})


async def cli(database_url: str, *args: str) -> Result:
    """The command, on a worker thread: it runs its own event loop."""
    return await anyio.to_thread.run_sync(lambda: runner.invoke(app, ["import", *args, "--database-url", database_url]))


async def _setup(client: Client, deal_labels: bool = True) -> None:
    for name in ("Sam Seller", "Rita Rep"):  # the owners the files name
        await call(client, "users_create", {"name": name, "email": f"{name.split()[0].lower()}@example.com"})
    for entity, label, type_, options in [*CUSTOM_FIELDS, *([DEAL_LABELS] if deal_labels else [])]:
        more = {"options": [{"label": o} for o in options]} if options else {}
        await call(client, "fields_create", {"entity": entity, "label": label, "type": type_, **more})


async def _plan(database_url: str, file: str, entity: str) -> dict[str, str]:
    db = Database(database_url)
    try:
        actor = await local_actor(db, "cli")
        headers = CsvSource(FIXTURES / f"{file}.csv", "utf-8-sig").header()
        plan = await Crm(db).import_plan(actor, ENTITIES[entity], headers, strip_prefix=True)
    finally:
        await db.dispose()
    return dict(plan.mapping.rows())


async def _all(client: Client, entity: str) -> list[dict[str, Any]]:
    page = await call(client, f"{entity}_list", {"limit": 100})
    assert not page["has_more"]
    return page["items"]


MAPPED = {
    "organizations": {
        "Organization - Name": "name",
        "Organization - Label": "tags",
        "Organization - Owner": "owner",
        "Organization - Address": "address",
        "Organization - District of Address": "address.city",
        "Organization - State/province of Address": "address.region",
        "Organization - Postal code of Address": "address.postal_code",
        "Organization - Country of Address": "address.country",
        "Organization - Industry": "industry",
        "Organization - Account tier": "custom.account_tier",
    },
    "persons": {
        "Person - Name": "name",
        "Person - First name": "first_name",
        "Person - Last name": "last_name",
        "Person - Label": "tags",
        "Person - Organization": "organizations",
        "Person - Email - Work": "emails:work",
        "Person - Email - Home": "emails:home",
        "Person - Email - Other": "emails:other",
        "Person - Phone - Work": "phones:work",
        "Person - Phone - Mobile": "phones:mobile",
        "Person - Phone - Home": "phones:home",
        "Person - Job title": "job_title",
        "Person - Owner": "owner",
        "Person - Lead source": "custom.lead_source",
    },
    "products": {
        "Product - Name": "name",
        "Product - Product code": "sku",
        "Product - Unit": "unit",
        "Product - Amount of Price": "amount",
        "Product - Currency of Price": "currency",
        "Product - Description": "description",
        "Product - Categories": "custom.categories",
    },
    "deals": {
        "Deal - Title": "name",
        "Deal - Value": "value",
        "Deal - Currency of Value": "currency",
        "Deal - Organization": "organizations",
        "Deal - Contact person": "contacts",
        "Deal - Pipeline": "pipeline",
        "Deal - Stage": "stage",
        "Deal - Status": "status",
        "Deal - Probability": "probability",
        "Deal - Expected close date": "expected_close_date",
        "Deal - Won time": "won_at",
        "Deal - Lost time": "lost_at",
        "Deal - Lost reason": "lost_reason",
        "Deal - Owner": "owner",
        "Deal - Label": "custom.label",
        "Deal - Priority": "custom.priority",
        "Deal - Budget": "custom.budget",
        "Deal - Currency of Budget": "custom.budget.currency",
    },
    "activities": {
        "Activity - Subject": "subject",
        "Activity - Type": "type",
        "Activity - Due date": "due_at.date",
        "Activity - Due time": "due_at.time",
        "Activity - Duration": "duration_minutes",
        "Activity - Done": "done",
        "Activity - Marked as done time": "done_at",
        "Activity - Assigned to user": "owner",
        "Activity - Deal": "deal",
        "Activity - Contact person": "contact",
        "Activity - Organization": "organization",
        "Activity - Location": "location",
        "Activity - Note": "note",
        "Activity - Status": "custom.status",
    },
    "notes": {
        "Note - Content": "body",
        "Note - Deal": "record.deal",
        "Note - Person": "record.contact",
        "Note - Organization": "record.organization",
        "Note - User": "author",
    },
}


async def test_each_pipedrive_column_maps_to_its_field(client: Client, database_url: str) -> None:
    await _setup(client, deal_labels=False)
    shown = await _plan(database_url, "deals", "deals")
    assert shown["Deal - Label"] == "(ignored: deals have no tags; add a custom field labelled 'Label' to keep them)"
    await call(client, "fields_create", {"entity": "deals", "label": "Label", "type": "text"})
    for file, entity in FILES:
        shown = await _plan(database_url, file, entity)
        assert {h: s for h, s in shown.items() if not s.startswith("(ignored")} == MAPPED[file], file
        assert shown[f"{PREFIX[file]} - ID"] == "(ignored: Pipedrive's own id)"
    shown = await _plan(database_url, "organizations", "organizations")
    assert shown["Organization - People"] == "(ignored: a count in Pipedrive)"
    assert shown["Organization - Visible to"] == "(ignored: Pipedrive's visibility setting)"
    for part in ("Street/road name", "House number"):  # the whole address column holds them
        assert shown[f"Organization - {part} of Address"] == "(ignored: part of 'Organization - Address')"
    assert shown["Organization - Add time"] == "(ignored: set by the CRM)"


async def test_a_pipedrive_export_imports_with_its_links(client: Client, database_url: str, tmp_path: Path) -> None:
    await _setup(client)
    for file, entity in FILES:
        copy = tmp_path / f"{file}.csv"
        shutil.copy(FIXTURES / f"{file}.csv", copy)
        result = await cli(database_url, entity, str(copy), "--from", "pipedrive", "--create-missing", "-y")
        assert result.exit_code == 0, result.output
        assert " 0 bad; " in result.output, result.output
        assert not (tmp_path / f"{file}.csv.errors.csv").exists()
        if file == "deals":
            assert "created 1 pipelines, 7 stages" in result.output  # Enterprise: 5 named, and Won and Lost

    users = {u["id"]: u["name"] for u in await _all(client, "users")}
    organizations = {o["name"]: o for o in await _all(client, "organizations")}
    contacts = {f"{c['first_name']} {c['last_name']}": c for c in await _all(client, "contacts")}
    services = {s["name"]: s for s in await _all(client, "services")}
    deals = {d["name"]: d for d in await _all(client, "deals")}
    pipelines = {p["id"]: p["name"] for p in await _all(client, "pipelines")}
    stages = {s["id"]: s for s in await _all(client, "stages")}
    activities = {a["subject"]: a for a in await _all(client, "activities")}
    notes = {n["body"]: n for n in await _all(client, "notes")}
    names = {
        **{o["id"]: o["name"] for o in organizations.values()},
        **{c["id"]: n for n, c in contacts.items()},
        **{d["id"]: d["name"] for d in deals.values()},
    }
    assert (len(organizations), len(contacts), len(services), len(deals), len(activities), len(notes)) == (
        12,
        18,
        10,
        15,
        18,
        12,
    )

    # organizations: labels as tags, the owner by name, the address and its parts, a custom field by its label
    acme = organizations["Acme Corp"]
    assert acme["address"] == {
        "street": "Friedrichstraße 12, 10117 Berlin, Germany",
        "city": "Berlin",
        "region": "Berlin",
        "postal_code": "10117",
        "country": "Germany",
    }
    assert (acme["tags"], acme["industry"], users[acme["owner_id"]], acme["custom"]) == (
        ["Customer"],
        "Manufacturing",
        "Sam Seller",
        {"account_tier": "gold"},
    )
    assert sorted(c["name"] for c in acme["contacts"]) == ["Ada Lovelace", "Charles Babbage"]
    assert organizations["Initech"]["tags"] == ["Customer", "Hot lead"]
    assert (organizations["Vandelay Imports"]["tags"], organizations["Hooli"]["custom"]) == ([], {})
    assert organizations["Umbrella Health"]["address"]["postal_code"] == "M5V 2T6"
    assert organizations["Wayne Enterprises"]["address"]["postal_code"] == "07001"  # a code, not a number

    # persons: their organization, emails and phones with Pipedrive's labels, first and last name over Name
    ada = contacts["Ada Lovelace"]
    assert ada["emails"] == [
        {"value": "ada@acme.example", "label": "work", "primary": True},
        {"value": "ada.lovelace@mail.example", "label": "home", "primary": False},
    ]
    assert ada["phones"] == [
        {"value": "+49 30 1234 5601", "label": "work", "primary": True},
        {"value": "+49 170 555 0101", "label": "mobile", "primary": False},
    ]
    assert (ada["job_title"], ada["tags"], users[ada["owner_id"]], ada["custom"]) == (
        "Head of Engineering",
        ["Customer"],
        "Sam Seller",
        {"lead_source": "Referral"},
    )
    hank = contacts["Hank Scorpio"]
    assert [(e["value"], e["label"]) for e in hank["emails"]] == [
        ("hank@globex.example", "work"),
        ("hank.s@partners.example", "other"),
    ]
    assert hank["tags"] == ["Hot lead", "VIP"]
    assert users[hank["owner_id"]] == "Rita Rep"
    assert contacts["William Birkin"]["phones"] == [{"value": "+1 416 555 0108", "label": "home", "primary": True}]
    assert contacts["William Birkin"]["custom"] == {}
    assert "Nelson Bighetti" in contacts and "Big Head" not in " ".join(contacts)
    in_organization = {name: [o["name"] for o in c["organizations"]] for name, c in contacts.items()}
    assert in_organization == {
        "Ada Lovelace": ["Acme Corp"],
        "Charles Babbage": ["Acme Corp"],
        "Hank Scorpio": ["Globex"],
        "Frank Grimes": ["Globex"],
        "Peter Gibbons": ["Initech"],
        "Bill Lumbergh": ["Initech"],
        "Alice Abernathy": ["Umbrella Health"],
        "William Birkin": ["Umbrella Health"],
        "Pepper Potts": ["Stark Industries"],
        "Lucius Fox": ["Wayne Enterprises"],
        "Gavin Belson": ["Hooli"],
        "Nelson Bighetti": ["Hooli"],
        "Art Vandelay": ["Vandelay Imports"],
        "Sol Green": ["Soylent Foods"],
        "Rachael Tyrell": ["Tyrell Systems"],
        "Miles Dyson": ["Cyberdyne Robotics"],
        "Charlie Bucket": ["Wonka Confectionery"],
        "Grace Hopper": [],
    }

    # products: price and its currency, code, unit, a multiple-options custom field
    package = services["Implementation package"]
    assert {k: package[k] for k in ("amount", "currency", "unit", "sku", "description", "custom")} == {
        "amount": "15000.00",
        "currency": "EUR",
        "unit": "project",
        "sku": "IMP-001",
        "description": "Kick-off, configuration and go-live support",
        "custom": {"categories": ["services"]},
    }
    assert services["Platform licence"]["custom"] == {"categories": ["software", "subscriptions"]}
    kit = services["Robotics sensor kit"]
    assert (kit["amount"], kit["currency"], kit["sku"]) == ("349.99", "USD", "HW-SNS")

    # deals: organization, contact person, pipeline and stage (the row's pipeline's, created when missing),
    # status (a won or lost deal in its pipeline's won or lost stage), value and its currency
    def deal_row(deal: dict[str, Any]) -> tuple[Any, ...]:
        stage = stages[deal["stage_id"]]
        assert stage["pipeline_id"] == deal["pipeline_id"]
        return (
            deal["value"],
            deal["currency"],
            deal["status"],
            pipelines[deal["pipeline_id"]],
            stage["name"],
            [o["name"] for o in deal["organizations"]],
            [c["name"] for c in deal["contacts"]],
            users[deal["owner_id"]],
        )

    assert {name: deal_row(d) for name, d in deals.items()} == {
        "Acme rollout": (
            "45000.00",
            "EUR",
            "open",
            "Enterprise",
            "Solution design",
            ["Acme Corp"],
            ["Ada Lovelace"],
            "Sam Seller",
        ),
        "Acme training": (
            "3600.00",
            "EUR",
            "open",
            "Sales",
            "Proposal made",
            ["Acme Corp"],
            ["Charles Babbage"],
            "Sam Seller",
        ),
        "Globex platform": (
            "96000.00",
            "USD",
            "open",
            "Enterprise",
            "Discovery",
            ["Globex"],
            ["Hank Scorpio"],
            "Rita Rep",
        ),
        "Initech licences": ("24000.00", "USD", "won", "Sales", "Won", ["Initech"], ["Peter Gibbons"], "Sam Seller"),
        "Umbrella security review": (
            "17000.00",
            "USD",
            "open",
            "Sales",
            "Contact made",
            ["Umbrella Health"],
            ["Alice Abernathy"],
            "Rita Rep",
        ),
        "Stark sensors": (
            "34999.00",
            "USD",
            "won",
            "Enterprise",
            "Won",
            ["Stark Industries"],
            ["Pepper Potts"],
            "Sam Seller",
        ),
        "Wayne migration": (
            "5000.00",
            "USD",
            "lost",
            "Sales",
            "Lost",
            ["Wayne Enterprises"],
            ["Lucius Fox"],
            "Rita Rep",
        ),
        "Hooli analytics": (
            "14400.00",
            "EUR",
            "open",
            "Enterprise",
            "Qualified",
            ["Hooli"],
            ["Gavin Belson"],
            "Sam Seller",
        ),
        "Vandelay support": (
            "10800.00",
            "USD",
            "open",
            "Sales",
            "Qualified",
            ["Vandelay Imports"],
            ["Art Vandelay"],
            "Rita Rep",
        ),
        "Soylent onboarding": (
            "750.00",
            "GBP",
            "open",
            "Sales",
            "Proposal made",
            ["Soylent Foods"],
            ["Sol Green"],
            "Sam Seller",
        ),
        "Tyrell expansion": (
            "60000.00",
            "USD",
            "open",
            "Enterprise",
            "Negotiation",
            ["Tyrell Systems"],
            ["Rachael Tyrell"],
            "Rita Rep",
        ),
        "Cyberdyne pilot": (
            "9000.00",
            "USD",
            "lost",
            "Enterprise",
            "Lost",
            ["Cyberdyne Robotics"],
            ["Miles Dyson"],
            "Sam Seller",
        ),
        "Wonka workshop": (
            "1500.00",
            "GBP",
            "open",
            "Sales",
            "Negotiation",
            ["Wonka Confectionery"],
            ["Charlie Bucket"],
            "Rita Rep",
        ),
        "Grace advisory": ("1200.00", "USD", "open", "Sales", "Contact made", [], ["Grace Hopper"], "Sam Seller"),
        "Initech support renewal": (
            "9600.00",
            "USD",
            "open",
            "Enterprise",
            "Solution design",
            ["Initech"],
            ["Bill Lumbergh"],
            "Sam Seller",
        ),
    }
    rollout = deals["Acme rollout"]
    assert (rollout["probability"], rollout["expected_close_date"], rollout["custom"]) == (
        60,
        "2026-04-30",
        {"label": ["hot"], "priority": "high", "budget": {"amount": 50000, "currency": "EUR"}},
    )
    assert deals["Globex platform"]["custom"]["label"] == ["hot", "warm"]
    assert deals["Grace advisory"]["custom"] == {}
    won = deals["Initech licences"]
    assert (won["won_at"], won["lost_at"], won["lost_reason"]) == ("2026-01-28T16:20:00Z", None, None)
    lost = deals["Cyberdyne pilot"]
    assert (lost["won_at"], lost["lost_at"], lost["lost_reason"]) == (
        None,
        "2025-11-29T17:00:00Z",
        "No budget this year",
    )
    assert sorted(pipelines.values()) == ["Enterprise", "Sales"]
    by_pipeline: dict[str, list[tuple[str, str]]] = {}
    for stage in stages.values():
        by_pipeline.setdefault(pipelines[stage["pipeline_id"]], []).append((stage["name"], stage["kind"]))
    assert sorted(by_pipeline["Enterprise"]) == [
        ("Contract sent", "open"),
        ("Discovery", "open"),
        ("Lost", "lost"),
        ("Negotiation", "open"),
        ("Qualified", "open"),
        ("Solution design", "open"),
        ("Won", "won"),
    ]
    assert len(by_pipeline["Sales"]) == 6  # its own stages: none created for rows that name them

    # activities: type, due date and time, duration, done, the deal, person and organization they are about
    call_ada = activities["Kick-off call with Ada"]
    assert {k: call_ada[k] for k in ("type", "due_at", "duration_minutes", "done", "done_at", "note", "custom")} == {
        "type": "call",
        "due_at": "2026-03-02T14:30:00Z",
        "duration_minutes": 30,
        "done": False,
        "done_at": None,
        "note": "Agenda: scope and timeline",
        "custom": {"status": "not_started"},
    }
    assert [names[call_ada[k]] for k in ("deal_id", "contact_id", "organization_id")] == [
        "Acme rollout",
        "Ada Lovelace",
        "Acme Corp",
    ]
    assert users[call_ada["owner_id"]] == "Sam Seller"
    sent = activities["Send training proposal"]
    assert (sent["type"], sent["due_at"], sent["duration_minutes"], sent["done"], sent["done_at"]) == (
        "email",
        "2026-02-16T00:00:00Z",
        None,
        True,
        "2026-02-16T11:05:00Z",
    )
    workshop = activities["Rollout workshop"]
    assert (workshop["duration_minutes"], workshop["location"]) == (120, "Friedrichstraße 12, Berlin")

    def about(activity: dict[str, Any]) -> tuple[Any, ...]:
        linked = (names.get(activity[k]) for k in ("deal_id", "contact_id", "organization_id"))
        return (activity["type"], activity["done"], *linked)

    assert {subject: about(a) for subject, a in activities.items()} == {
        "Kick-off call with Ada": ("call", False, "Acme rollout", "Ada Lovelace", "Acme Corp"),
        "Rollout workshop": ("meeting", False, "Acme rollout", "Ada Lovelace", "Acme Corp"),
        "Send training proposal": ("email", True, "Acme training", "Charles Babbage", "Acme Corp"),
        "Discovery call Globex": ("call", True, "Globex platform", "Hank Scorpio", "Globex"),
        "Platform demo": ("meeting", False, "Globex platform", "Hank Scorpio", "Globex"),
        "Contract signature": ("deadline", True, "Initech licences", "Peter Gibbons", "Initech"),
        "Security questionnaire": ("task", False, "Umbrella security review", "Alice Abernathy", "Umbrella Health"),
        "Lunch with Pepper": ("lunch", True, "Stark sensors", "Pepper Potts", "Stark Industries"),
        "Follow up after loss": ("call", True, "Wayne migration", "Lucius Fox", "Wayne Enterprises"),
        "Analytics requirements": ("meeting", False, "Hooli analytics", "Gavin Belson", "Hooli"),
        "Call Art about support tiers": ("call", False, "Vandelay support", "Art Vandelay", "Vandelay Imports"),
        "Onboarding workshop prep": ("task", False, "Soylent onboarding", "Sol Green", "Soylent Foods"),
        "Negotiation meeting": ("meeting", False, "Tyrell expansion", "Rachael Tyrell", "Tyrell Systems"),
        "Send workshop agenda": ("email", True, "Wonka workshop", "Charlie Bucket", "Wonka Confectionery"),
        "Advisory intro call": ("call", False, "Grace advisory", "Grace Hopper", None),
        "Quarterly check-in with Bill": ("call", False, None, "Bill Lumbergh", "Initech"),
        "Send Christmas cards": ("task", True, None, None, "Wonka Confectionery"),
        "Renewal deadline": ("deadline", False, "Initech support renewal", None, "Initech"),
    }

    # notes: on one record each, the most specific the row names (deal, then person, then organization)
    assert {body.split("\n")[0]: (n["record_type"], names[n["record_id"]]) for body, n in notes.items()} == {
        "Ada wants the rollout in two phases: Berlin first, then Munich.": ("deals", "Acme rollout"),
        "Budget confirmed by the CFO.": ("deals", "Globex platform"),
        "Signed for 50 seats.": ("deals", "Initech licences"),
        "Lost on price; revisit in Q3.": ("deals", "Wayne migration"),
        "Prefers calls before 10am Berlin time.": ("contacts", "Ada Lovelace"),
        "Met Hank at the Web Summit booth.": ("contacts", "Hank Scorpio"),
        "Grace is an independent consultant; no company.": ("contacts", "Grace Hopper"),
        "Parent company of several research labs.": ("organizations", "Umbrella Health"),
        "Uses SAP for procurement.": ("organizations", "Soylent Foods"),
        "Pilot stalled: no budget this year.": ("deals", "Cyberdyne pilot"),
        "Workshop for 8 managers.": ("deals", "Wonka workshop"),
        "Wants a 3-year renewal with a price cap.": ("deals", "Initech support renewal"),
    }
    signed = next(n for body, n in notes.items() if body.startswith("Signed"))
    assert signed["body"] == "Signed for 50 seats.\nInvoice goes to accounts payable, not to Peter."
    assert users[notes["Budget confirmed by the CFO."]["author_id"]] == "Rita Rep"


async def test_without_create_missing_a_deal_in_an_unknown_pipeline_is_a_bad_row(
    client: Client, database_url: str, tmp_path: Path
) -> None:
    await _setup(client)
    for file, entity in FILES[:3]:
        shutil.copy(FIXTURES / f"{file}.csv", tmp_path / f"{file}.csv")
        result = await cli(database_url, entity, str(tmp_path / f"{file}.csv"), "--from", "pipedrive", "-y")
        assert result.exit_code == 0, result.output
    shutil.copy(FIXTURES / "deals.csv", tmp_path / "deals.csv")
    result = await cli(database_url, "deals", str(tmp_path / "deals.csv"), "--from", "pipedrive", "-y")
    assert result.exit_code == 1
    assert "Nothing was imported." in result.output
    assert "Deal - Pipeline: no pipeline named 'Enterprise' (to create it, import with --create-missing" in (
        result.output
    )
    assert await _all(client, "deals") == []
    assert [p["name"] for p in await _all(client, "pipelines")] == ["Sales"]


async def test_the_export_naming_of_prices_and_address_parts(client: Client, database_url: str, tmp_path: Path) -> None:
    """Pipedrive's export also writes a price with its currency in one cell ("Unit prices") and address parts as
    "Address - <part>"; import_file is what the command runs."""
    organizations = tmp_path / "organizations.csv"
    organizations.write_text(
        "Organization - Name,Organization - Address,Organization - Address - City/town/village/locality,"
        "Organization - Address - State/county,Organization - Address - ZIP/Postal code,"
        "Organization - Address - Country,Organization - Address - House number\n"
        'Acme Corp,"Friedrichstraße 12, 10117 Berlin",Berlin,Berlin,10117,Germany,12\n',
        encoding="utf-8",
    )
    products = tmp_path / "products.csv"
    products.write_text(
        "Product - Name,Product - Unit prices,Product - Unit\nConsulting hour,150 EUR,hour\nLicence,$480.00,seat\n",
        encoding="utf-8",
    )
    db = Database(database_url)
    try:
        crm, actor = Crm(db), await local_actor(db, "cli")
        options = ImportOptions(pipedrive=True)
        for path, entity in ((organizations, "organizations"), (products, "services")):
            outcome = await import_file(crm, actor, ENTITIES[entity], path, options)
            assert outcome.written and outcome.report.bad_rows == 0, outcome.report.errors
        shown = dict(outcome.plan.mapping.rows())
        assert shown == {"Product - Name": "name", "Product - Unit prices": "amount", "Product - Unit": "unit"}
    finally:
        await db.dispose()
    (acme,) = await _all(client, "organizations")
    assert acme["address"] == {
        "street": "Friedrichstraße 12, 10117 Berlin",
        "city": "Berlin",
        "region": "Berlin",
        "postal_code": "10117",
        "country": "Germany",
    }
    prices = {s["name"]: (s["amount"], s["currency"], s["unit"]) for s in await _all(client, "services")}
    assert prices == {"Consulting hour": ("150.00", "EUR", "hour"), "Licence": ("480.00", "USD", "seat")}
