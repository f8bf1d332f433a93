"""`import_rows` as a model calls it: mapping shown, values read leniently, atomic by default, dry run, match."""

from __future__ import annotations

import pytest
from mcp import Client

from tests.helpers import call, fail, snapshot

pytestmark = pytest.mark.anyio

ROWS = [
    {
        "Name": "Ada Lovelace",
        "E-mail": "ada@acme.com",
        "Mobile": "+44 20 1234 5678",
        "Company": "Acme",
        "DOB": "10.12.1815",
    },
    {"Name": "Grace Hopper", "E-mail": "grace@navy.mil", "Company": "US Navy; Acme", "Tags": "admiral, cobol"},
]


async def test_rows_become_records_with_links_and_lenient_values(client: Client) -> None:
    done = await call(client, "import_rows", {"entity": "contacts", "rows": ROWS, "create_missing": True})
    assert {m["column"]: m["field"] for m in done["mapping"]} == {
        "Name": "name",
        "E-mail": "emails",
        "Mobile": "phones:mobile",
        "Company": "organizations",
        "DOB": "birthday",
        "Tags": "tags",
    }
    report = done["report"]
    assert (report["created"], report["bad"], report["linked"]) == (2, 0, 3)
    assert report["related_created"] == {"organizations": 2}
    found = await call(client, "contacts_list", {"sort": [{"field": "first_name"}]})
    ada, grace = found["items"]
    assert (ada["first_name"], ada["last_name"], ada["birthday"]) == ("Ada", "Lovelace", "1815-12-10")
    assert ada["phones"] == [{"value": "+44 20 1234 5678", "label": "mobile", "primary": True}]
    assert sorted(o["name"] for o in grace["organizations"]) == ["Acme", "US Navy"]
    assert grace["tags"] == ["admiral", "cobol"]
    organizations = await call(client, "organizations_list", {})
    assert sorted(o["name"] for o in organizations["items"]) == ["Acme", "US Navy"]


async def test_one_bad_row_writes_nothing_and_names_every_bad_row(client: Client, database_url: str) -> None:
    before = await snapshot(database_url)
    rows = [*ROWS, {"Name": "Nobody", "DOB": "someday"}, {"Name": "Alan Turing", "E-mail": "not an email"}]
    text = await fail(client, "import_rows", {"entity": "contacts", "rows": rows, "create_missing": True})
    assert "2 of 4 rows are bad; nothing was imported" in text
    assert "rows[2]: DOB: 'someday' is not a date" in text and "'Nobody' needs a first and a last name" in text
    assert "rows[3]: emails.0.value" in text
    assert await snapshot(database_url) == before


async def test_dry_run_reports_without_writing(client: Client, database_url: str) -> None:
    before = await snapshot(database_url)
    rows = [*ROWS, {"Name": "Nobody"}]
    done = await call(
        client, "import_rows", {"entity": "contacts", "rows": rows, "create_missing": True, "dry_run": True}
    )
    assert (done["report"]["created"], done["report"]["bad"]) == (2, 1)
    assert done["report"]["errors"] == [{"line": 2, "error": "Name: 'Nobody' needs a first and a last name"}]
    assert done["preview"]["applied"] is False
    assert await snapshot(database_url) == before


async def test_skip_bad_rows_writes_the_good_ones(client: Client) -> None:
    rows = [{"Organization": "Acme", "Website": "https://acme.com"}, {"Organization": "", "Industry": "Oops"}]
    done = await call(client, "import_rows", {"entity": "organizations", "rows": rows, "skip_bad_rows": True})
    assert (done["report"]["created"], done["report"]["bad"]) == (1, 1)
    assert "name" in done["report"]["errors"][0]["error"]
    assert [o["name"] for o in (await call(client, "organizations_list", {}))["items"]] == ["Acme"]


async def test_match_updates_instead_of_duplicating(client: Client) -> None:
    await call(client, "import_rows", {"entity": "contacts", "rows": ROWS, "create_missing": True})
    again = [{"Email": "ADA@acme.com", "Job title": "Countess", "Tags": "vip"}]
    mapping = {"Email": "emails:home"}
    done = await call(
        client, "import_rows", {"entity": "contacts", "rows": again, "match": "email", "mapping": mapping}
    )
    assert (done["report"]["created"], done["report"]["updated"]) == (0, 1)
    ada = (await call(client, "contacts_list", {"filter": {"field": "first_name", "op": "eq", "value": "Ada"}}))[
        "items"
    ]
    assert len(ada) == 1
    assert ada[0]["job_title"] == "Countess" and ada[0]["tags"] == ["vip"]
    assert [e["value"] for e in ada[0]["emails"]] == ["ada@acme.com"]  # the same address, any case: not added twice
    same = await call(client, "import_rows", {"entity": "contacts", "rows": again, "match": "email"})
    assert (same["report"]["updated"], same["report"]["unchanged"]) == (0, 1)


async def test_mapping_errors_name_the_closest_field(client: Client) -> None:
    text = await fail(client, "import_rows", {"entity": "contacts", "rows": ROWS, "mapping": {"Name": "frist_name"}})
    assert "'frist_name' is not something contacts can be imported into. Did you mean 'first_name'?" in text
    text = await fail(client, "import_rows", {"entity": "contacts", "rows": ROWS, "match": "colour"})
    assert "contacts cannot be matched by 'colour'" in text
