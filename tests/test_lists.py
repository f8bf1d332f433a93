"""Marketing lists: static and dynamic lists, adding and removing members (by id and by filter, set-based), the
members page with email status and opt-outs, and memberships through delete, restore and merge."""

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import pytest
from mcp import Client
from sqlalchemy import Connection, insert

from mcp_crm.entities import ENTITIES
from mcp_crm.errors import NotFound
from mcp_crm.ids import new_id
from mcp_crm.operations.lists import list_member_refs
from mcp_crm.operations.workspace import local_actor
from mcp_crm.store import Database
from tests.helpers import call, fail, snapshot

pytestmark = pytest.mark.anyio

NOTHING = {"contacts": 0, "leads": 0}


def counts(contacts: int = 0, leads: int = 0) -> dict[str, int]:
    return {"contacts": contacts, "leads": leads}


async def _in_db(database_url: str, work: Callable[[Connection, Any], Any], write: bool = False) -> Any:
    db = Database(database_url)
    try:
        actor = await local_actor(db, via="cli")
        return await (db.write if write else db.read)(lambda conn: work(conn, actor))
    finally:
        await db.dispose()


async def _contact(client: Client, first: str, email: str | None = None, **fields: Any) -> str:
    emails = [{"value": email, "primary": True}] if email else []
    args = {"first_name": first, "last_name": "Test", "emails": emails, **fields}
    return (await call(client, "contacts_create", args))["id"]


async def _lead(client: Client, title: str, contact_id: str, **fields: Any) -> str:
    return (await call(client, "leads_create", {"title": title, "contact_id": contact_id, **fields}))["id"]


async def _static(client: Client, name: str = "Q3 webinar") -> str:
    return (await call(client, "lists_create", {"name": name}))["id"]


async def _members(client: Client, list_id: str, limit: int = 200) -> list[tuple[str, str]]:
    page = await call(client, "lists_members", {"list_id": list_id, "limit": limit})
    return [(m["type"], m["id"]) for m in page["items"]]


async def test_list_crud_and_unique_names(client):
    made = await call(client, "lists_create", {"name": "Q3 webinar", "description": "September invitees"})
    assert (made["kind"], made["entity"], made["filter"], made["revision"]) == ("static", None, None, 1)
    text = await fail(client, "lists_create", {"name": "Q3 webinar"})
    assert "name" in text and "Q3 webinar" in text
    changed = await call(client, "lists_update", {"id": made["id"], "description": "Invitees"})
    assert (changed["description"], changed["revision"]) == ("Invitees", 2)
    found = await call(client, "lists_list", {"filter": {"field": "kind", "op": "eq", "value": "static"}})
    assert [item["name"] for item in found["items"]] == ["Q3 webinar"]
    await call(client, "lists_delete", {"id": made["id"]})
    assert (await call(client, "lists_list", {}))["items"] == []
    restored = await call(client, "lists_restore", {"ids": [made["id"]]})
    assert restored["items"][0]["name"] == "Q3 webinar"


async def test_a_dynamic_list_needs_an_entity_and_a_filter_that_works(client):
    base = {"name": "Berlin", "kind": "dynamic"}
    where = {"field": "source", "op": "eq", "value": "webinar"}
    assert "a dynamic list needs entity" in await fail(client, "lists_create", base | {"filter": where})
    assert "needs a filter tree over leads" in await fail(client, "lists_create", base | {"entity": "leads"})
    text = await fail(
        client, "lists_create", base | {"entity": "leads", "filter": {"field": "sorce", "op": "eq", "value": "x"}}
    )
    assert "Unknown filter field 'sorce'. Did you mean 'source'?" in text
    text = await fail(client, "lists_create", base | {"entity": "leads", "filter": {"field": "source", "op": "gt"}})
    assert "Operator 'gt' does not apply" in text
    text = await fail(client, "lists_create", base | {"entity": "leads", "filter": {"field": "source"}})
    assert "not a filter tree" in text and "leads_list" in text
    text = await fail(client, "lists_create", {"name": "S", "filter": where})
    assert "only a dynamic list has one" in text
    made = await call(client, "lists_create", base | {"entity": "leads", "filter": {"and": [where]}})
    assert made["filter"] == {"and": [where]}
    # made static it drops its filter; made dynamic again it needs one
    static = await call(client, "lists_update", {"id": made["id"], "kind": "static"})
    assert (static["entity"], static["filter"]) == (None, None)
    text = await fail(client, "lists_update", {"id": made["id"], "kind": "dynamic", "entity": "contacts"})
    assert "needs a filter tree over contacts" in text


async def test_static_membership_is_idempotent_with_exact_reports(client, database_url):
    ada, bob, cy = [await _contact(client, name, f"{name}@acme.com") for name in ("ada", "bob", "cy")]
    lead = await _lead(client, "Acme: 40 seats", ada)
    list_id = await _static(client)
    args = {"list_id": list_id, "contact_ids": [ada, bob, "no-such-id", ada], "lead_ids": [lead]}
    done = await call(client, "lists_add_members", args)
    assert done == {
        "list": {"id": list_id, "name": "Q3 webinar"},
        "added": counts(2, 1),
        "already_there": NOTHING,
        "skipped": [
            {"type": "contacts", "id": "no-such-id", "why": "no contact has this id (find ids with contacts_list)"}
        ],
        "members": counts(2, 1),
    }
    again = await call(client, "lists_add_members", args)
    assert (again["added"], again["already_there"], again["members"]) == (NOTHING, counts(2, 1), counts(2, 1))
    assert (await call(client, "lists_get", {"id": list_id}))["revision"] == 2  # the repeat changed nothing
    removed = await call(client, "lists_remove_members", {"list_id": list_id, "contact_ids": [bob, cy]})
    assert (removed["removed"], removed["not_there"], removed["members"]) == (counts(1), counts(1), counts(1, 1))
    removed = await call(client, "lists_remove_members", {"list_id": list_id, "contact_ids": [bob, cy]})
    assert (removed["removed"], removed["not_there"]) == (NOTHING, counts(2))
    assert await _members(client, list_id) == [("contacts", ada), ("leads", lead)]
    assert await _in_db(database_url, lambda c, a: list_member_refs(c, a, list_id)) == [
        ("contacts", ada),
        ("leads", lead),
    ]
    changes = await call(
        client, "audit_list", {"filter": {"field": "record_id", "op": "eq", "value": list_id}, "limit": 10}
    )
    assert [e["before"] for e in changes["items"] if e["action"] == "updated"] == [
        {"members": counts(2, 1)},
        {"members": NOTHING},
    ]


async def test_a_filter_adds_and_removes_everyone_matching_it_counting_each_once(client):
    vip = [await _contact(client, f"v{i}", f"v{i}@acme.com", tags=["vip"]) for i in range(3)]
    other = await _contact(client, "other", "o@acme.com")
    list_id = await _static(client)
    await call(client, "lists_add_members", {"list_id": list_id, "contact_ids": [vip[0]]})
    vips = {"field": "tags", "op": "contains", "value": "vip"}
    done = await call(
        client,
        "lists_add_members",
        {"list_id": list_id, "contact_ids": [vip[1], other], "entity": "contacts", "filter": vips},
    )
    # vip[1] is named and matched: added once; vip[0] was there already
    assert (done["added"], done["already_there"], done["members"]) == (counts(3), counts(1), counts(4))
    done = await call(client, "lists_remove_members", {"list_id": list_id, "entity": "contacts", "filter": vips})
    assert (done["removed"], done["not_there"], done["members"]) == (counts(3), NOTHING, counts(1))
    assert await _members(client, list_id) == [("contacts", other)]
    preview = await call(
        client, "lists_add_members", {"list_id": list_id, "entity": "contacts", "filter": vips, "dry_run": True}
    )
    assert preview["added"] == counts(3) and preview["preview"]["counts"] == {"lists": {"updated": 1}}
    assert await _members(client, list_id) == [("contacts", other)]


async def test_dynamic_membership_follows_the_data(client, database_url):
    ada = await _contact(client, "ada", "ada@acme.com")
    first = await _lead(client, "First", ada, source="webinar")
    await _lead(client, "Other", ada, source="referral")
    made = await call(
        client,
        "lists_create",
        {
            "name": "Webinar leads",
            "kind": "dynamic",
            "entity": "leads",
            "filter": {"field": "source", "op": "eq", "value": "webinar"},
        },
    )
    assert await _members(client, made["id"]) == [("leads", first)]
    second = await _lead(client, "Second", ada, source="webinar")
    assert await _members(client, made["id"]) == [("leads", first), ("leads", second)]
    await call(client, "leads_update", {"id": first, "source": "referral"})
    assert await _members(client, made["id"]) == [("leads", second)]
    assert await _in_db(database_url, lambda c, a: list_member_refs(c, a, made["id"])) == [("leads", second)]
    with pytest.raises(NotFound, match="No list with id 'nope'"):
        await _in_db(database_url, lambda c, a: list_member_refs(c, a, "nope"))


async def test_a_dynamic_list_whose_filter_stops_working_says_how_to_fix_it(client):
    field = await call(client, "fields_create", {"entity": "contacts", "label": "Tier", "type": "text"})
    made = await call(
        client,
        "lists_create",
        {
            "name": "Gold",
            "kind": "dynamic",
            "entity": "contacts",
            "filter": {"field": "custom.tier", "op": "eq", "value": "gold"},
        },
    )
    await _contact(client, "ada", custom={"tier": "gold"})
    assert len(await _members(client, made["id"])) == 1
    await call(client, "fields_delete", {"id": field["id"]})
    text = await fail(client, "lists_members", {"list_id": made["id"]})
    assert "The filter of list 'Gold' no longer works: contacts have no custom fields" in text
    assert "Fix it with lists_update." in text


async def test_members_page_shows_email_status_and_opt_outs(client):
    ok = await _contact(client, "a-ok", "ok@acme.com")
    out = await _contact(
        client, "b-out", "out@acme.com", email_opt_out=True, email_opt_out_reason="unsubscribed from the newsletter"
    )
    none = await _contact(client, "c-none")
    org = (await call(client, "organizations_create", {"name": "Acme"}))["id"]
    via_out = await _lead(client, "Lead of b", out)
    no_contact = (await call(client, "leads_create", {"title": "Org only", "organization_id": org}))["id"]
    list_id = await _static(client)
    await call(
        client,
        "lists_add_members",
        {"list_id": list_id, "contact_ids": [ok, out, none], "lead_ids": [via_out, no_contact]},
    )
    seen, cursor = [], None
    while True:
        page = await call(
            client, "lists_members", {"list_id": list_id, "limit": 2} | ({"cursor": cursor} if cursor else {})
        )
        assert (page["total"], page["email_statuses"]) == (5, {"ok": 1, "opted_out": 2, "no_email": 2})
        seen += page["items"]
        cursor = page["next_cursor"]
        if not page["has_more"]:
            break
    assert [(m["type"], m["id"], m["email"], m["email_status"]) for m in seen] == [
        ("contacts", ok, "ok@acme.com", "ok"),
        ("contacts", out, "out@acme.com", "opted_out"),
        ("contacts", none, None, "no_email"),
        ("leads", via_out, "out@acme.com", "opted_out"),
        ("leads", no_contact, None, "no_email"),
    ]
    assert seen[3]["contact_id"] == out and seen[0]["added_at"] and seen[0]["name"] == "a-ok Test"


async def test_opting_out_stamps_the_time_and_opting_in_clears_it(client):
    made = await call(client, "contacts_create", {"first_name": "Ada", "last_name": "L"})
    assert (made["email_opt_out"], made["email_opted_out_at"]) == (False, None)
    out = await call(client, "contacts_update", {"id": made["id"], "email_opt_out": True})
    stamped = out["email_opted_out_at"]
    assert stamped and datetime.fromisoformat(stamped) <= datetime.now(UTC)
    later = await call(client, "contacts_update", {"id": made["id"], "email_opt_out_reason": "asked by phone"})
    assert (later["email_opted_out_at"], later["email_opt_out_reason"]) == (stamped, "asked by phone")
    back = await call(client, "contacts_update", {"id": made["id"], "email_opt_out": False})
    assert (back["email_opted_out_at"], back["email_opt_out_reason"]) == (None, None)
    found = await call(client, "contacts_list", {"filter": {"field": "email_opt_out", "op": "eq", "value": False}})
    assert [c["id"] for c in found["items"]] == [made["id"]]


async def test_deleting_and_restoring_a_contact_or_a_list_keeps_memberships(client):
    ada, bob = await _contact(client, "ada"), await _contact(client, "bob")
    lead = await _lead(client, "L", ada)
    list_id = await _static(client)
    await call(client, "lists_add_members", {"list_id": list_id, "contact_ids": [ada, bob], "lead_ids": [lead]})
    await call(client, "contacts_delete", {"id": ada})
    assert await _members(client, list_id) == [("contacts", bob), ("leads", lead)]
    done = await call(client, "lists_add_members", {"list_id": list_id, "contact_ids": [ada]})
    assert done["skipped"] == [
        {"type": "contacts", "id": ada, "why": "this contact is in the trash (contacts_restore brings it back)"}
    ]
    await call(client, "contacts_restore", {"ids": [ada]})
    assert await _members(client, list_id) == [("contacts", ada), ("contacts", bob), ("leads", lead)]
    await call(client, "leads_delete", {"id": lead})
    assert await _members(client, list_id) == [("contacts", ada), ("contacts", bob)]
    await call(client, "leads_restore", {"ids": [lead]})
    assert await _members(client, list_id) == [("contacts", ada), ("contacts", bob), ("leads", lead)]
    await call(client, "lists_delete", {"id": list_id})
    await call(client, "lists_restore", {"ids": [list_id]})
    assert await _members(client, list_id) == [("contacts", ada), ("contacts", bob), ("leads", lead)]


async def test_merging_contacts_keeps_every_list_on_the_primary(client):
    ada = await _contact(client, "ada", "ada@acme.com")
    dup = await _contact(client, "ada2", "ada@acme.com")
    both, only_dup = await _static(client, "Both"), await _static(client, "Only the duplicate")
    await call(client, "lists_add_members", {"list_id": both, "contact_ids": [ada, dup]})
    await call(client, "lists_add_members", {"list_id": only_dup, "contact_ids": [dup]})
    merged = await call(client, "contacts_merge", {"primary_id": ada, "duplicate_ids": [dup]})
    assert {"entity": "lists", "through": "lists.list_contacts", "ids": [only_dup]} in merged["moved"]
    assert await _members(client, both) == [("contacts", ada)]
    assert await _members(client, only_dup) == [("contacts", ada)]


async def test_refusals_change_nothing(client, database_url):
    ada = await _contact(client, "ada")
    list_id = await _static(client)
    dynamic = await call(
        client,
        "lists_create",
        {
            "name": "D",
            "kind": "dynamic",
            "entity": "contacts",
            "filter": {"field": "tags", "op": "contains", "value": "x"},
        },
    )
    before = await snapshot(database_url)
    text = await fail(client, "lists_add_members", {"list_id": dynamic["id"], "contact_ids": [ada]})
    assert "'D' is a dynamic list" in text and "lists_update" in text and "Nothing was changed" in text
    assert "is a dynamic list" in await fail(
        client, "lists_remove_members", {"list_id": dynamic["id"], "contact_ids": [ada]}
    )
    bad = {"field": "emial", "op": "eq", "value": "x"}
    text = await fail(client, "lists_add_members", {"list_id": list_id, "entity": "contacts", "filter": bad})
    assert "Unknown filter field 'emial'. Did you mean 'email'?" in text
    text = await fail(client, "lists_add_members", {"list_id": list_id, "filter": {"field": "email", "op": "is_null"}})
    assert "A filter needs its entity" in text
    assert "Name whom to change" in await fail(client, "lists_add_members", {"list_id": list_id})
    text = await fail(client, "lists_add_members", {"list_id": "nope", "contact_ids": [ada]})
    assert "No list with id 'nope'" in text
    text = await fail(client, "lists_members", {"list_id": list_id, "cursor": "garbage"})
    assert "cursor is not valid" in text
    await call(client, "lists_add_members", {"list_id": list_id, "contact_ids": [ada], "dry_run": True})
    assert await snapshot(database_url) == before


def _many_leads(conn: Connection, actor: Any, count: int) -> None:
    now = datetime.now(UTC)
    table = ENTITIES["leads"].table.__table__  # type: ignore[attr-defined]
    rows = [
        {
            "id": new_id(),
            "workspace_id": actor.workspace_id,
            "created_at": now,
            "updated_at": now,
            "revision": 1,
            "title": f"Fair lead {i}",
            "currency": "EUR",
            "source": "fair" if i < 10_000 else "web",
            "labels": [],
            "archived": False,
            "custom": {},
        }
        for i in range(count)
    ]
    conn.execute(insert(table), rows)


async def test_a_filter_adds_10000_leads_in_one_call(client, database_url):
    await _in_db(database_url, lambda conn, actor: _many_leads(conn, actor, 11_000), write=True)
    list_id = await _static(client, "Fair")
    fair = {"field": "source", "op": "eq", "value": "fair"}
    args = {"list_id": list_id, "entity": "leads", "filter": fair}
    done = await call(client, "lists_add_members", args)
    assert (done["added"], done["members"]) == (counts(leads=10_000), counts(leads=10_000))
    again = await call(client, "lists_add_members", args)
    assert (again["added"], again["already_there"]) == (NOTHING, counts(leads=10_000))
    page = await call(client, "lists_members", {"list_id": list_id, "limit": 3})
    assert page["total"] == 10_000 and page["email_statuses"]["no_email"] == 10_000


async def test_qualified_leads_join_a_list_by_their_stage_name(client):
    ada = await _contact(client, "Ada", "ada@acme.com")
    stages = await call(client, "lead_stages_list", {"filter": {"field": "name", "op": "eq", "value": "Qualified"}})
    qualified = await _lead(client, "Acme: 40 seats", ada, stage_id=stages["items"][0]["id"])
    await _lead(client, "Acme: support", ada)  # stays in New
    list_id = await _static(client)
    by_stage = {"field": "stage_id", "op": "eq", "value": "qualified"}  # a stage's name, in any case
    done = await call(client, "lists_add_members", {"list_id": list_id, "entity": "leads", "filter": by_stage})
    assert done["added"] == counts(leads=1) and await _members(client, list_id) == [("leads", qualified)]
    text = await fail(
        client,
        "lists_add_members",
        {"list_id": list_id, "entity": "leads", "filter": {"field": "stage_id", "op": "eq", "value": "Qualifed"}},
    )
    assert "Did you mean 'Qualified'?" in text


async def test_a_dynamic_list_stores_a_stage_named_in_its_filter_by_id(client):
    ada = await _contact(client, "Ada", "ada@acme.com")
    stages = {s["name"]: s["id"] for s in (await call(client, "lead_stages_list", {}))["items"]}
    qualified = await _lead(client, "Acme: 40 seats", ada, stage_id=stages["Qualified"])
    await _lead(client, "Acme: support", ada)  # stays in New
    by_name = {
        "and": [
            {"not": {"field": "stage_id", "op": "in", "value": ["new"]}},
            {"field": "stage_id", "op": "eq", "value": "qualified"},
        ]
    }
    made = await call(
        client, "lists_create", {"name": "Qualified", "kind": "dynamic", "entity": "leads", "filter": by_name}
    )
    by_id = {
        "and": [
            {"not": {"field": "stage_id", "op": "in", "value": [stages["New"]]}},
            {"field": "stage_id", "op": "eq", "value": stages["Qualified"]},
        ]
    }
    assert made["filter"] == by_id
    assert await _members(client, made["id"]) == [("leads", qualified)]

    # renaming the stage keeps the members; another stage taking the old name does not join them
    await call(client, "lead_stages_update", {"id": stages["Qualified"], "name": "Sales ready"})
    await call(client, "lead_stages_create", {"name": "Qualified", "kind": "open"})
    assert await _members(client, made["id"]) == [("leads", qualified)]
    assert (await call(client, "lists_get", {"id": made["id"]}))["filter"] == by_id

    updated = await call(
        client, "lists_update", {"id": made["id"], "filter": {"field": "stage_id", "op": "eq", "value": "Sales ready"}}
    )
    assert updated["filter"] == {"field": "stage_id", "op": "eq", "value": stages["Qualified"]}


async def test_removing_more_than_50_members_needs_the_confirm_token_of_its_dry_run(client, database_url):
    await _in_db(database_url, lambda conn, actor: _many_leads(conn, actor, 60), write=True)
    list_id = await _static(client, "Fair")
    fair = {"field": "source", "op": "eq", "value": "fair"}
    await call(client, "lists_add_members", {"list_id": list_id, "entity": "leads", "filter": fair})
    ids = [lead_id for _, lead_id in await _members(client, list_id)]
    assert len(ids) == 60

    # a filter matching few removes them at once; one matching more than 50 is refused, changing nothing
    first = {"field": "title", "op": "in", "value": ["Fair lead 0", "Fair lead 1"]}
    done = await call(client, "lists_remove_members", {"list_id": list_id, "entity": "leads", "filter": first})
    assert (done["removed"], done["members"]) == (counts(leads=2), counts(leads=58))
    args = {"list_id": list_id, "entity": "leads", "filter": fair}
    text = await fail(client, "lists_remove_members", args)
    assert "Not done: this call would remove 0 contacts and 58 leads from list 'Fair', more than 50" in text
    assert len(await _members(client, list_id)) == 58

    rehearsed = await call(client, "lists_remove_members", args | {"dry_run": True})
    assert rehearsed["removed"] == counts(leads=58) and len(await _members(client, list_id)) == 58
    token = rehearsed["preview"]["confirm"]
    other = {"list_id": list_id, "entity": "leads", "filter": {"field": "archived", "op": "eq", "value": False}}
    assert "Not done" in await fail(client, "lists_remove_members", other | {"confirm": token})  # another call
    done = await call(client, "lists_remove_members", args | {"confirm": token})
    assert (done["removed"], done["members"]) == (counts(leads=58), NOTHING)

    # so does a removal of more than 50 ids
    await call(client, "lists_add_members", {"list_id": list_id, "lead_ids": ids})
    text = await fail(client, "lists_remove_members", {"list_id": list_id, "lead_ids": ids})
    assert "Not done: this call would remove 0 contacts and 60 leads from list 'Fair', more than 50" in text
    token = text.split('confirm: "')[1].split('"')[0]
    done = await call(client, "lists_remove_members", {"list_id": list_id, "lead_ids": ids, "confirm": token})
    assert done["members"] == NOTHING
