"""Duplicates: finding likely duplicate contacts and organizations, and merging them into one record."""

from datetime import UTC, datetime

import pytest
from sqlalchemy import insert, select
from sqlmodel import SQLModel

from mcp_crm.entities import ENTITIES
from mcp_crm.entities.models import create_model_for
from mcp_crm.errors import NotFound
from mcp_crm.ids import new_id
from mcp_crm.operations import Actor, Crm
from mcp_crm.operations.merge import name_key, phone_key, similar_names
from mcp_crm.operations.workspace import local_actor
from mcp_crm.store import Database
from mcp_crm.store.tables import Workspace
from tests.helpers import call, fail, snapshot

pytestmark = pytest.mark.anyio
CONTACTS = ENTITIES["contacts"]


async def _contact(client, first, last, **more):
    return await call(client, "contacts_create", {"first_name": first, "last_name": last, **more})


def _ids(summaries):
    return sorted(s["id"] for s in summaries)


def _reasons(group):
    return {(r["match"], r["value"]) for r in group["reasons"]}


def test_keys_ignore_formatting_case_accents_and_legal_forms():
    assert phone_key("+49 30 1234567") == phone_key("030 / 123 45 67") == "301234567"
    assert phone_key("12-34") is None
    assert name_key("Grace HÖPPER.") == name_key("hopper grace") == "grace hopper"
    assert name_key("ACME, Inc.", legal_forms=True) == name_key("Acme GmbH & Co. KG", legal_forms=True) == "acme"
    assert name_key("GmbH", legal_forms=True) == "gmbh"
    names = ["grace hopper", "grace hoper", "ada lovelace", "alan turing", "adda lovelace"]
    assert {(a, b) for a, b, _ in similar_names(names)} == {
        ("grace hoper", "grace hopper"),
        ("ada lovelace", "adda lovelace"),
    }


async def test_contacts_are_grouped_by_email_phone_and_name_with_the_reasons(client):
    ada = await _contact(client, "Ada", "Lovelace", emails=[{"value": "ada@acme.com"}])
    king = await _contact(client, "Augusta", "King", emails=[{"value": "x@y.org"}, {"value": "ADA@Acme.com"}])
    bob = await _contact(client, "Bob", "Brown", phones=[{"value": "+49 30 1234567"}])
    robert = await _contact(client, "Robert", "Braun", phones=[{"value": "030 / 123 45 67"}])
    grace = await _contact(client, "Grace", "Hopper")
    hopper = await _contact(client, "grace", "HÖPPER.")
    typo = await _contact(client, "Grace", "Hoper")
    await _contact(client, "Zed", "Unique", emails=[{"value": "zed@else.com"}], phones=[{"value": "+1 415 555 0100"}])

    found = await call(client, "contacts_find_duplicates", {})
    assert (found["total"], found["has_more"]) == (3, False)
    by_first = {g["records"][0]["id"]: g for g in found["groups"]}
    assert list(by_first) == [ada["id"], bob["id"], grace["id"]]  # oldest group first
    email, phone, name = by_first.values()
    assert _ids(email["records"]) == sorted([ada["id"], king["id"]])
    assert _reasons(email) == {("email", "ada@acme.com")}
    assert email["records"][1]["emails"] == ["x@y.org", "ADA@Acme.com"]
    assert _ids(phone["records"]) == sorted([bob["id"], robert["id"]])
    assert _reasons(phone) == {("phone", "301234567")}
    assert _ids(name["records"]) == sorted([grace["id"], hopper["id"], typo["id"]])
    assert ("name", "grace hopper") in _reasons(name)
    similar = next(r for r in name["reasons"] if "~" in r["value"])
    assert similar["ids"] == sorted([grace["id"], hopper["id"], typo["id"]]) and 0.88 <= similar["similarity"] < 1

    only_phones = await call(client, "contacts_find_duplicates", {"by": ["phone"]})
    assert [g["records"][0]["id"] for g in only_phones["groups"]] == [bob["id"]]

    first = await call(client, "contacts_find_duplicates", {"limit": 2})
    assert (len(first["groups"]), first["has_more"], first["total"]) == (2, True, 3)
    rest = await call(client, "contacts_find_duplicates", {"limit": 2, "cursor": first["next_cursor"]})
    assert [g["records"][0]["id"] for g in rest["groups"]] == [grace["id"]] and rest["has_more"] is False

    # the duplicates of one record, through the search index
    of_typo = await call(client, "contacts_find_duplicates", {"record_id": typo["id"]})
    (group,) = of_typo["groups"]
    assert _ids(group["records"]) == sorted([grace["id"], hopper["id"], typo["id"]])
    assert {r["match"] for r in group["reasons"]} == {"name"}
    of_robert = await call(client, "contacts_find_duplicates", {"record_id": robert["id"]})
    assert _ids(of_robert["groups"][0]["records"]) == sorted([bob["id"], robert["id"]])
    of_king = await call(client, "contacts_find_duplicates", {"record_id": king["id"], "by": ["email"]})
    assert _reasons(of_king["groups"][0]) == {("email", "ada@acme.com")}
    alone = await call(client, "contacts_find_duplicates", {"record_id": ada["id"], "by": ["phone"]})
    assert alone["groups"] == []
    assert "No contact with id 'nope'" in await fail(client, "contacts_find_duplicates", {"record_id": "nope"})


async def test_organizations_are_grouped_by_domain_phone_and_name_without_legal_forms(client):
    acme = await call(client, "organizations_create", {"name": "Acme GmbH"})
    inc = await call(client, "organizations_create", {"name": "ACME, Inc."})
    globex = await call(client, "organizations_create", {"name": "Globex", "domain": "globex.com"})
    europe = await call(
        client, "organizations_create", {"name": "Globex Europe", "website": "https://www.Globex.com/eu"}
    )
    initech = await call(client, "organizations_create", {"name": "Initech", "phone": "+1 (415) 555-0100"})
    branch = await call(client, "organizations_create", {"name": "Initrode", "phone": "415.555.0100"})
    await call(client, "organizations_create", {"name": "Umbrella"})

    found = await call(client, "organizations_find_duplicates", {})
    groups = {g["records"][0]["id"]: g for g in found["groups"]}
    assert _ids(groups[acme["id"]]["records"]) == sorted([acme["id"], inc["id"]])
    assert _reasons(groups[acme["id"]]) == {("name", "acme")}
    assert _reasons(groups[globex["id"]]) == {("domain", "globex.com")}
    assert groups[globex["id"]]["records"][1]["website"] == "https://www.Globex.com/eu"
    assert _ids(groups[initech["id"]]["records"]) == sorted([initech["id"], branch["id"]])
    assert found["total"] == 3
    of_europe = await call(client, "organizations_find_duplicates", {"record_id": europe["id"]})
    assert _reasons(of_europe["groups"][0]) == {("domain", "globex.com")}
    of_inc = await call(client, "organizations_find_duplicates", {"record_id": inc["id"]})
    assert _ids(of_inc["groups"][0]["records"]) == sorted([acme["id"], inc["id"]])


async def _contact_with_everything(client):
    """A primary and its duplicate, and every kind of record that can point at the duplicate."""
    acme = await call(client, "organizations_create", {"name": "Acme"})
    other = await call(client, "organizations_create", {"name": "Other"})
    primary = await _contact(
        client,
        "Ada",
        "Lovelace",
        emails=[{"value": "ada@acme.com", "primary": True}],
        tags=["vip"],
        job_title="CTO",
        organization_ids=[{"organization_id": acme["id"], "role": "buyer", "is_primary": True}],
    )
    duplicate = await _contact(
        client,
        "Ada",
        "Lovelace",
        emails=[{"value": "ada@home.org", "primary": True}, {"value": "ADA@acme.com"}],
        phones=[{"value": "+44 20 1234 5678"}],
        tags=["VIP", "speaker"],
        job_title="Chief Technology Officer",
        birthday="1815-12-10",
        organization_ids=[
            {"organization_id": other["id"], "role": "advisor", "title": "Board", "is_primary": True},
            {"organization_id": acme["id"], "title": "Countess"},
        ],
    )
    d = duplicate["id"]
    deal = await call(client, "deals_create", {"name": "Engine", "contact_ids": [d]})
    shared = await call(client, "deals_create", {"name": "Shared", "contact_ids": [primary["id"], d]})
    lead = await call(client, "leads_create", {"title": "Notes on the engine", "contact_id": d})
    task = await call(client, "tasks_create", {"name": "Write back", "contact_id": d})
    activity = await call(
        client, "activities_create", {"type": "meeting", "subject": "Demo", "contact_id": d, "participant_ids": [d]}
    )
    note = await call(client, "notes_create", {"body": "Met at the fair.", "record_type": "contacts", "record_id": d})
    return {
        "acme": acme,
        "other": other,
        "primary": primary,
        "duplicate": duplicate,
        "deal": deal,
        "shared": shared,
        "lead": lead,
        "task": task,
        "activity": activity,
        "note": note,
    }


async def test_merging_contacts_moves_every_relation_and_reports_the_choices(client):
    w = await _contact_with_everything(client)
    p, d = w["primary"]["id"], w["duplicate"]["id"]
    merged = await call(client, "contacts_merge", {"primary_id": p, "duplicate_ids": [d]})
    assert merged["merged_ids"] == [d] and "preview" not in merged

    fields = {f["field"]: f for f in merged["fields"]}
    assert fields["job_title"] | {"values": None} == {
        "field": "job_title",
        "chosen": "CTO",
        "from_id": p,
        "values": None,
        "conflict": True,
    }
    assert fields["job_title"]["values"] == [{"id": p, "value": "CTO"}, {"id": d, "value": "Chief Technology Officer"}]
    assert (fields["birthday"]["chosen"], fields["birthday"]["from_id"], fields["birthday"]["conflict"]) == (
        "1815-12-10",
        d,
        False,
    )
    assert "first_name" not in fields  # the same on both

    ada = await call(client, "contacts_get", {"id": p})
    assert ada == merged["record"] | {"related": ada["related"]}
    assert [(e["value"], e["primary"]) for e in ada["emails"]] == [("ada@acme.com", True), ("ada@home.org", False)]
    assert [e["value"] for e in ada["phones"]] == ["+44 20 1234 5678"]
    assert ada["tags"] == ["vip", "speaker"]
    assert (ada["job_title"], ada["birthday"]) == ("CTO", "1815-12-10")
    memberships = {m["id"]: m for m in ada["organizations"]}
    acme, other = memberships[w["acme"]["id"]], memberships[w["other"]["id"]]
    assert (acme["role"], acme["title"], acme["is_primary"]) == ("buyer", "Countess", True)
    assert (other["role"], other["title"], other["is_primary"]) == ("advisor", "Board", False)  # one primary

    assert _ids((await call(client, "deals_get", {"id": w["deal"]["id"]}))["contacts"]) == [p]
    assert _ids((await call(client, "deals_get", {"id": w["shared"]["id"]}))["contacts"]) == [p]
    assert (await call(client, "leads_get", {"id": w["lead"]["id"]}))["contact_id"] == p
    assert (await call(client, "tasks_get", {"id": w["task"]["id"]}))["contact_id"] == p
    activity = await call(client, "activities_get", {"id": w["activity"]["id"]})
    assert (activity["contact_id"], _ids(activity["participants"])) == (p, [p])
    assert (await call(client, "notes_get", {"id": w["note"]["id"]}))["record_id"] == p
    moved = {m["through"]: m["ids"] for m in merged["moved"]}
    assert moved == {
        "contacts.organization_ids": [w["other"]["id"]],
        "deals.contact_ids": sorted([w["deal"]["id"], w["shared"]["id"]]),
        "activities.participant_ids": [w["activity"]["id"]],
        "leads.contact_id": [w["lead"]["id"]],
        "tasks.contact_id": [w["task"]["id"]],
        "activities.contact_id": [w["activity"]["id"]],
        "notes.record_id": [w["note"]["id"]],
    }

    # each move is an ordinary write: a change event per record, all under the merge's tool
    audit = await call(
        client, "audit_list", {"filter": {"field": "tool", "op": "eq", "value": "contacts_merge"}, "limit": 50}
    )
    events = {(e["entity"], e["record_id"], e["action"]) for e in audit["items"]}
    assert {
        ("contacts", p, "updated"),
        ("contacts", d, "deleted"),
        ("deals", w["deal"]["id"], "updated"),
        ("deals", w["shared"]["id"], "updated"),
        ("leads", w["lead"]["id"], "updated"),
        ("tasks", w["task"]["id"], "updated"),
        ("activities", w["activity"]["id"], "updated"),
        ("notes", w["note"]["id"], "updated"),
    } <= events
    task_event = next(e for e in audit["items"] if e["entity"] == "tasks")
    assert (task_event["before"]["contact_id"], task_event["after"]["contact_id"]) == (d, p)

    # the duplicate is in the trash, and comes back (without what moved to the primary)
    trash = await call(client, "trash_list", {"entity": "contacts"})
    assert [t["id"] for t in trash["items"]] == [d]
    restored = await call(client, "contacts_restore", {"ids": [d]})
    assert restored["count"] == 1
    back = await call(client, "contacts_get", {"id": d})
    assert (back["job_title"], back["organizations"]) == ("Chief Technology Officer", [])
    # and the search index knows the primary by the duplicate's email now
    found = await call(client, "contacts_list", {"q": "ada@home.org"})
    assert sorted(c["id"] for c in found["items"]) == sorted([p, d])


async def test_merging_organizations_moves_memberships_with_their_attributes(client):
    primary = await call(client, "organizations_create", {"name": "Acme", "industry": "Robots"})
    duplicate = await call(client, "organizations_create", {"name": "ACME GmbH", "domain": "acme.com", "tags": ["eu"]})
    p, d = primary["id"], duplicate["id"]
    cfo = await _contact(
        client,
        "Carl",
        "F",
        organization_ids=[{"organization_id": d, "role": "buyer", "title": "CFO", "is_primary": True}],
    )
    both = await _contact(
        client,
        "Bea",
        "B",
        organization_ids=[{"organization_id": p}, {"organization_id": d, "role": "champion", "is_primary": True}],
    )
    deal = await call(client, "deals_create", {"name": "Rollout", "organization_ids": [d]})
    task = await call(client, "tasks_create", {"name": "Call", "organization_id": d})
    lead = await call(client, "leads_create", {"title": "Upsell", "organization_id": d})
    note = await call(client, "notes_create", {"body": "HQ moved.", "record_type": "organizations", "record_id": d})
    # the duplicate is the most recently updated: with prefer newest its values win
    await call(client, "organizations_update", {"id": d, "industry": "Automation"})

    merged = await call(client, "organizations_merge", {"primary_id": p, "duplicate_ids": [d], "prefer": "newest"})
    fields = {f["field"]: f for f in merged["fields"]}
    assert (fields["industry"]["chosen"], fields["industry"]["from_id"], fields["industry"]["conflict"]) == (
        "Automation",
        d,
        True,
    )
    assert (fields["name"]["chosen"], fields["domain"]["chosen"]) == ("ACME GmbH", "acme.com")
    org = await call(client, "organizations_get", {"id": p})
    assert (org["name"], org["industry"], org["domain"], org["tags"]) == ("ACME GmbH", "Automation", "acme.com", ["eu"])
    assert _ids(org["contacts"]) == sorted([cfo["id"], both["id"]])

    carl = (await call(client, "contacts_get", {"id": cfo["id"]}))["organizations"]
    assert [(m["id"], m["role"], m["title"], m["is_primary"]) for m in carl] == [(p, "buyer", "CFO", True)]
    bea = (await call(client, "contacts_get", {"id": both["id"]}))["organizations"]
    assert [(m["id"], m["role"], m["is_primary"]) for m in bea] == [(p, "champion", True)]
    assert _ids((await call(client, "deals_get", {"id": deal["id"]}))["organizations"]) == [p]
    assert (await call(client, "tasks_get", {"id": task["id"]}))["organization_id"] == p
    assert (await call(client, "leads_get", {"id": lead["id"]}))["organization_id"] == p
    assert (await call(client, "notes_get", {"id": note["id"]}))["record_id"] == p
    assert [t["id"] for t in (await call(client, "trash_list", {}))["items"]] == [d]


async def test_custom_values_merge_and_custom_references_move(client):
    tier = {"entity": "contacts", "label": "Tier", "type": "single_option", "options": [{"label": "Gold"}]}
    await call(client, "fields_create", tier)
    await call(client, "fields_create", {"entity": "contacts", "label": "Since", "type": "date"})
    await call(client, "fields_create", {"entity": "deals", "label": "Champion", "type": "contact"})
    primary = await _contact(client, "Ada", "L", custom={"since": "2020-01-01"})
    duplicate = await _contact(client, "Ada", "L", custom={"tier": "gold", "since": "2021-05-05"})
    deal = await call(client, "deals_create", {"name": "Engine", "custom": {"champion": duplicate["id"]}})
    merged = await call(client, "contacts_merge", {"primary_id": primary["id"], "duplicate_ids": [duplicate["id"]]})
    assert merged["record"]["custom"] == {"since": "2020-01-01", "tier": "gold"}
    fields = {f["field"]: f for f in merged["fields"]}
    assert (fields["custom.since"]["chosen"], fields["custom.since"]["conflict"]) == ("2020-01-01", True)
    assert (fields["custom.tier"]["chosen"], fields["custom.tier"]["from_id"]) == ("gold", duplicate["id"])
    assert (await call(client, "deals_get", {"id": deal["id"]}))["custom"] == {"champion": primary["id"]}
    assert {"entity": "deals", "through": "deals.custom.champion", "ids": [deal["id"]]} in merged["moved"]


async def test_a_dry_run_merge_previews_and_changes_nothing(client, database_url):
    w = await _contact_with_everything(client)
    args = {"primary_id": w["primary"]["id"], "duplicate_ids": [w["duplicate"]["id"]]}
    before = await snapshot(database_url)
    rehearsed = await call(client, "contacts_merge", args | {"dry_run": True})
    assert await snapshot(database_url) == before
    preview = rehearsed["preview"]
    assert preview["applied"] is False
    assert preview["counts"]["contacts"] == {"updated": 2, "deleted": 1}  # the duplicate is emptied, then trashed
    assert preview["counts"]["deals"] == {"updated": 2}
    assert rehearsed["record"]["tags"] == ["vip", "speaker"]
    done = await call(client, "contacts_merge", args)
    assert done["fields"] == rehearsed["fields"] and done["moved"] == rehearsed["moved"]


async def test_refused_merges_name_the_problem_and_change_nothing(client, database_url):
    ada = await _contact(client, "Ada", "L")
    bob = await _contact(client, "Bob", "L")
    before = await snapshot(database_url)
    text = await fail(client, "contacts_merge", {"primary_id": ada["id"], "duplicate_ids": [bob["id"], ada["id"]]})
    assert "is the primary and also in duplicate_ids" in text
    text = await fail(
        client, "contacts_merge", {"primary_id": ada["id"], "duplicate_ids": [bob["id"], "gone-1", "gone-2"]}
    )
    assert "'gone-1', 'gone-2'" in text and "Nothing was changed" in text
    text = await fail(client, "contacts_merge", {"primary_id": "gone-0", "duplicate_ids": [bob["id"]]})
    assert "'gone-0'" in text
    text = await fail(
        client, "contacts_merge", {"primary_id": ada["id"], "duplicate_ids": [f"x{i}" for i in range(21)]}
    )
    assert "duplicate_ids" in text and "20" in text
    text = await fail(client, "organizations_merge", {"primary_id": ada["id"], "duplicate_ids": [bob["id"]]})
    assert "No organization with id" in text
    assert await snapshot(database_url) == before


async def test_a_record_of_another_workspace_is_refused_as_missing(database_url):
    db = Database(database_url)
    try:
        ours = await local_actor(db, via="cli")
        other_id = new_id()
        workspace = {"id": other_id, "slug": "other", "name": "Other", "created_at": datetime.now(UTC)}
        await db.write(lambda conn: conn.execute(insert(Workspace.__table__).values(workspace)))
        theirs = Actor(workspace_id=other_id, user_id=None, via="cli")
        crm = Crm(db)
        model = create_model_for(CONTACTS)
        mine = await crm.create(ours, CONTACTS, model(first_name="Ada", last_name="L"))
        secret = await crm.create(theirs, CONTACTS, model(first_name="Ada", last_name="L"))
        before = await snapshot(database_url)
        with pytest.raises(NotFound, match=secret["id"]):
            await crm.merge(ours, CONTACTS, mine["id"], [secret["id"]])
        assert await snapshot(database_url) == before
        assert (await crm.find_duplicates(ours, CONTACTS))["groups"] == []
    finally:
        await db.dispose()


async def test_a_merge_that_leaves_the_primary_as_it_was_returns_it_with_its_new_links(client):
    primary = await call(client, "organizations_create", {"name": "Acme"})
    duplicate = await call(client, "organizations_create", {"name": "Acme"})
    ada = await _contact(client, "Ada", "L", organization_ids=[duplicate["id"]])
    args = {"primary_id": primary["id"], "duplicate_ids": [duplicate["id"]], "idempotency_key": "merge-acme-1"}
    merged = await call(client, "organizations_merge", args)
    assert merged["fields"] == [] and merged["record"]["revision"] == primary["revision"]
    assert _ids(merged["record"]["contacts"]) == [ada["id"]]
    assert merged["moved"] == [{"entity": "contacts", "through": "contacts.organization_ids", "ids": [ada["id"]]}]
    # the same call again is answered from its idempotency key, not merged twice
    assert await call(client, "organizations_merge", args) == merged


async def _naming(database_url, record_id):
    """{table: rows} of the live rows that hold the id anywhere (history and the record's own trash entry aside)."""
    db = Database(database_url)

    def read(conn):
        found = {}
        for table in SQLModel.metadata.sorted_tables:
            if table.name in ("change_events", "idempotency_keys"):
                continue  # what happened, not what points at it now
            rows = [dict(r) for r in conn.execute(select(table)).mappings()]
            own = table.name == "trash"  # the record's own entry names it, of course
            hits = [r for r in rows if record_id in repr(r) and not (own and r["record_id"] == record_id)]
            if hits:
                found[table.name] = hits
        return found

    try:
        return await db.read(read)
    finally:
        await db.dispose()


async def test_a_merge_moves_what_the_trash_holds_to_the_primary(client, database_url):
    await call(client, "fields_create", {"entity": "deals", "label": "Champion", "type": "contact"})
    primary = await _contact(client, "Ada", "Lovelace")
    duplicate = await _contact(client, "Ada", "Lovelace")
    p, d = primary["id"], duplicate["id"]
    engine = await call(client, "deals_create", {"name": "Engine", "contact_ids": [d], "custom": {"champion": d}})
    shared = await call(client, "deals_create", {"name": "Shared", "contact_ids": [p, d]})
    task = await call(client, "tasks_create", {"name": "Write back", "contact_id": d})
    note = await call(client, "notes_create", {"body": "Met at the fair.", "record_type": "contacts", "record_id": d})
    club = await call(client, "organizations_create", {"name": "Analytical Society"})
    await call(client, "contacts_update", {"id": d, "organization_ids": [{"organization_id": club["id"], "role": "x"}]})
    for entity, record in (("deals", engine), ("deals", shared), ("tasks", task), ("notes", note)):
        await call(client, f"{entity}_delete", {"id": record["id"]})
    await call(client, "organizations_delete", {"id": club["id"]})

    merged = await call(client, "contacts_merge", {"primary_id": p, "duplicate_ids": [d]})

    assert [m for m in merged["moved"] if m["through"] == "trash"] == [
        {"entity": "deals", "through": "trash", "ids": sorted([engine["id"], shared["id"]])},
        {"entity": "notes", "through": "trash", "ids": [note["id"]]},
        {"entity": "organizations", "through": "trash", "ids": [club["id"]]},
        {"entity": "tasks", "through": "trash", "ids": [task["id"]]},
    ]
    assert await _naming(database_url, d) == {}  # only history and the duplicate's own trash entry name it

    restored = await call(client, "deals_restore", {"ids": [engine["id"], shared["id"]]})
    assert restored["notes"] == []
    engine_back = await call(client, "deals_get", {"id": engine["id"]})
    assert (_ids(engine_back["contacts"]), engine_back["custom"]) == ([p], {"champion": p})
    assert _ids((await call(client, "deals_get", {"id": shared["id"]}))["contacts"]) == [p]
    await call(client, "tasks_restore", {"ids": [task["id"]]})
    assert (await call(client, "tasks_get", {"id": task["id"]}))["contact_id"] == p
    await call(client, "notes_restore", {"ids": [note["id"]]})
    assert (await call(client, "notes_get", {"id": note["id"]}))["record_id"] == p
    await call(client, "organizations_restore", {"ids": [club["id"]]})
    members = (await call(client, "organizations_get", {"id": club["id"]}))["contacts"]
    assert [(m["id"], m["role"]) for m in members] == [(p, "x")]

    # the duplicate's own entry was kept: it still comes back
    assert (await call(client, "contacts_restore", {"ids": [d]}))["count"] == 1


async def test_a_primary_referring_to_a_duplicate_loses_the_reference(client):
    await call(client, "fields_create", {"entity": "contacts", "label": "Referred by", "type": "contact"})
    await call(client, "fields_create", {"entity": "contacts", "label": "Mentor", "type": "contact"})
    primary = await _contact(client, "Ada", "L")
    duplicate = await _contact(client, "Ada", "L")
    p, d = primary["id"], duplicate["id"]
    await call(client, "contacts_update", {"id": p, "custom": {"referred_by": d}})
    await call(client, "contacts_update", {"id": d, "custom": {"mentor": p}})

    merged = await call(client, "contacts_merge", {"primary_id": p, "duplicate_ids": [d]})

    assert merged["record"]["custom"] == {}  # neither points at the primary itself or at the trash
    assert (await call(client, "contacts_get", {"id": p}))["custom"] == {}
    fields = {f["field"]: f for f in merged["fields"]}
    assert fields["custom.referred_by"] == {
        "field": "custom.referred_by",
        "chosen": None,
        "from_id": None,
        "values": [{"id": p, "value": d}],
        "conflict": False,
    }
    assert "custom.mentor" not in fields


async def test_a_merge_keeps_the_earliest_opt_out_of_any_record(client):
    primary = await _contact(client, "Ada", "L")
    first = await _contact(client, "Ada", "L", email_opt_out=True, email_opt_out_reason="unsubscribed")
    later = await _contact(client, "Ada", "L", email_opt_out=True, email_opt_out_reason="complaint")
    p, d1, d2 = primary["id"], first["id"], later["id"]
    assert first["email_opted_out_at"] < later["email_opted_out_at"]

    merged = await call(client, "contacts_merge", {"primary_id": p, "duplicate_ids": [d2, d1], "prefer": "newest"})

    ada = await call(client, "contacts_get", {"id": p})
    assert ada == merged["record"] | {"related": ada["related"]}
    assert (ada["email_opt_out"], ada["email_opt_out_reason"], ada["email_opted_out_at"]) == (
        True,
        "unsubscribed",
        first["email_opted_out_at"],
    )
    fields = {f["field"]: f for f in merged["fields"]}
    assert (fields["email_opt_out"]["chosen"], fields["email_opt_out"]["from_id"]) == (True, d1)
    assert (fields["email_opt_out_reason"]["chosen"], fields["email_opt_out_reason"]["conflict"]) == (
        "unsubscribed",
        True,
    )

    # an opted-out primary keeps its own opt-out when it is the earliest
    other = await _contact(client, "Bo", "B", email_opt_out=True, email_opt_out_reason="asked by phone")
    plain = await _contact(client, "Bo", "B")
    merged = await call(client, "contacts_merge", {"primary_id": other["id"], "duplicate_ids": [plain["id"]]})
    record = merged["record"]
    assert (record["email_opt_out"], record["email_opt_out_reason"], record["email_opted_out_at"]) == (
        True,
        "asked by phone",
        other["email_opted_out_at"],
    )
