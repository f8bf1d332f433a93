"""Custom fields: definitions, values checked by type, `custom` in outputs, filters and sorts on custom.<key>."""

import pytest
from sqlalchemy import text

from mcp_crm.store import Database
from tests.helpers import call, fail, snapshot

pytestmark = pytest.mark.anyio

# type -> (accepted value, what it is stored as, refused value)
CASES = {
    "text": ("Gold partner", "Gold partner", "x" * 256),
    "long_text": ("line\nline", "line\nline", 42),
    "number": ("12.5", 12.5, "twelve"),
    "monetary": ({"amount": "1200.50", "currency": "EUR"}, {"amount": 1200.5, "currency": "EUR"}, {"amount": 1}),
    "date": ("2026-12-01", "2026-12-01", "2026-13-01"),
    "date_range": (
        {"start": "2026-01-01", "end": "2026-03-31"},
        {"start": "2026-01-01", "end": "2026-03-31"},
        {"start": "2026-03-31", "end": "2026-01-01"},
    ),
    "time": ("09:30", "09:30:00", "25:00"),
    "time_range": ({"start": "09:00", "end": "17:30"}, {"start": "09:00:00", "end": "17:30:00"}, {"start": "9"}),
    "boolean": (True, True, "maybe"),
    "single_option": ("Gold", "gold", "bronze"),
    "multiple_options": (["gold", "Silver"], ["gold", "silver"], ["gold", "tin"]),
    "phone": ("+1 (415) 555-0100", "+1 (415) 555-0100", "call me"),
    "email": ("ap@acme.com", "ap@acme.com", "not-an-email"),
    "url": ("https://acme.com/portal", "https://acme.com/portal", "acme.com"),
    "address": ({"city": "Berlin", "country": "DE"}, {"city": "Berlin", "country": "DE"}, {"planet": "Mars"}),
}
OPTIONS = [{"label": "Gold"}, {"label": "Silver"}]


async def _field(client, entity, label, type_, **more):
    options = {"options": OPTIONS} if type_ in ("single_option", "multiple_options") else {}
    return await call(client, "fields_create", {"entity": entity, "label": label, "type": type_, **options, **more})


@pytest.mark.parametrize("type_", sorted(CASES))
async def test_each_type_takes_its_values_and_refuses_others(client, database_url, type_):
    accepted, stored, refused = CASES[type_]
    field = await _field(client, "organizations", f"My {type_} field", type_)
    assert field["key"] == f"my_{type_}_field"
    org = await call(client, "organizations_create", {"name": "Acme", "custom": {field["label"]: accepted}})
    assert org["custom"] == {field["key"]: stored}
    assert (await call(client, "organizations_get", {"id": org["id"]}))["custom"] == {field["key"]: stored}
    before = await snapshot(database_url)
    text_ = await fail(client, "organizations_update", {"id": org["id"], "custom": {field["key"]: refused}})
    assert f"custom: {field['key']}:" in text_
    assert await snapshot(database_url) == before
    cleared = await call(client, "organizations_update", {"id": org["id"], "custom": {field["key"]: None}})
    assert cleared["custom"] == {}


async def test_references_must_exist_and_unknown_fields_name_the_closest(client, database_url):
    await _field(client, "deals", "Partner", "organization")
    await _field(client, "deals", "Contract tier", "single_option")
    acme = await call(client, "organizations_create", {"name": "Acme"})
    deal = await call(client, "deals_create", {"name": "D", "custom": {"partner": acme["id"]}})
    assert deal["custom"] == {"partner": acme["id"]}
    before = await snapshot(database_url)
    text_ = await fail(client, "deals_update", {"id": deal["id"], "custom": {"partner": "nope"}})
    assert "partner: no organization with id 'nope'" in text_
    text_ = await fail(client, "deals_update", {"id": deal["id"], "custom": {"contract_teir": "gold"}})
    assert "Unknown custom field 'contract_teir' on deals. Did you mean 'contract_tier'?" in text_
    text_ = await fail(client, "deals_update", {"id": deal["id"], "custom": {"contract_tier": "bronze"}})
    assert "'bronze' is not an option; options: gold (Gold), silver (Silver)" in text_
    text_ = await fail(client, "contacts_create", {"first_name": "A", "last_name": "B", "custom": {"x": 1}})
    assert "contacts have no custom fields yet" in text_
    assert await snapshot(database_url) == before


async def test_an_update_changes_only_the_keys_it_sends(client):
    await _field(client, "contacts", "Tier", "single_option")
    await _field(client, "contacts", "Score", "number")
    ada = await call(
        client, "contacts_create", {"first_name": "Ada", "last_name": "L", "custom": {"tier": "gold", "score": 7}}
    )
    ada = await call(client, "contacts_update", {"id": ada["id"], "custom": {"score": 9}})
    assert ada["custom"] == {"tier": "gold", "score": 9}
    same = await call(client, "contacts_update", {"id": ada["id"], "custom": {}})
    assert (same["custom"], same["revision"]) == ({"tier": "gold", "score": 9}, ada["revision"])


async def _orgs_with(client):
    await _field(client, "organizations", "Tier", "single_option")
    await _field(client, "organizations", "Seats", "number")
    await _field(client, "organizations", "Renewal", "date")
    await _field(client, "organizations", "Products", "multiple_options")
    await _field(client, "organizations", "Strategic", "boolean")
    await _field(client, "organizations", "ARR", "monetary")
    await _field(client, "organizations", "Contract", "date_range")
    rows = [
        ("A", {"tier": "gold", "seats": 120, "renewal": "2026-12-15", "products": ["gold", "silver"], "strategic": True,
               "arr": {"amount": 50000, "currency": "EUR"}, "contract": {"start": "2026-01-01", "end": "2026-12-31"}}),
        ("B", {"tier": "silver", "seats": 8, "renewal": "2027-03-01", "products": ["silver"], "strategic": False,
               "arr": {"amount": 4000, "currency": "EUR"}}),
        ("C", {"tier": "gold", "seats": 40.5}),
        ("D", {}),
    ]  # fmt: skip
    return {name: (await call(client, "organizations_create", {"name": name, "custom": c}))["id"] for name, c in rows}


async def _names(client, **arguments):
    page = await call(client, "organizations_list", {"fields": ["name"], **arguments})
    return [o["name"] for o in page["items"]]


async def test_filters_use_the_operators_of_each_type(client):
    await _orgs_with(client)

    async def where(condition):
        return sorted(await _names(client, filter=condition))

    assert await where({"field": "custom.tier", "op": "in", "value": ["gold"]}) == ["A", "C"]
    assert await where({"field": "custom.seats", "op": "gt", "value": 40}) == ["A", "C"]
    assert await where({"field": "custom.seats", "op": "between", "value": [8, 40.5]}) == ["B", "C"]
    assert await where({"field": "custom.renewal", "op": "lt", "value": "2027-01-01"}) == ["A"]
    assert await where({"field": "custom.products", "op": "contains", "value": "silver"}) == ["A", "B"]
    assert await where({"field": "custom.strategic", "op": "eq", "value": True}) == ["A"]
    assert await where({"field": "custom.arr.amount", "op": "gte", "value": 5000}) == ["A"]
    assert await where({"field": "custom.contract.end", "op": "gte", "value": "2026-06-01"}) == ["A"]
    assert await where({"field": "custom.tier", "op": "is_null"}) == ["D"]
    text_ = await fail(client, "organizations_list", {"filter": {"field": "custom.tier", "op": "gt", "value": 1}})
    assert "Operator 'gt' does not apply" in text_
    text_ = await fail(client, "organizations_list", {"filter": {"field": "custom.arr", "op": "eq", "value": 1}})
    assert "filter on custom.arr.amount" in text_
    text_ = await fail(client, "organizations_list", {"filter": {"field": "custom.seets", "op": "eq", "value": 1}})
    assert "Did you mean 'seats'?" in text_


async def test_sorting_by_a_custom_field_pages_without_gaps(client):
    await _orgs_with(client)
    names = await _names(client, sort=[{"field": "custom.seats", "direction": "desc"}])
    assert names[:3] == ["A", "C", "B"]
    seen, cursor = [], None
    while True:
        args = {"sort": [{"field": "custom.seats", "direction": "desc"}], "limit": 1, "fields": ["name"]}
        page = await call(client, "organizations_list", args | ({"cursor": cursor} if cursor else {}))
        seen += [o["name"] for o in page["items"]]
        if not page["has_more"]:
            break
        cursor = page["next_cursor"]
    assert seen == names and sorted(seen) == ["A", "B", "C", "D"]
    by_renewal = await _names(client, sort=[{"field": "custom.renewal"}, {"field": "name"}])
    assert by_renewal == ["C", "D", "A", "B"]  # no value sorts first


async def test_renaming_an_option_keeps_values_and_deleting_one_clears_them(client):
    ids = await _orgs_with(client)
    fields = await call(client, "fields_list", {"filter": {"field": "key", "op": "eq", "value": "tier"}})
    tier = fields["items"][0]
    await call(
        client,
        "fields_update",
        {"id": tier["id"], "label": "Level", "options": [{"key": "gold", "label": "Gold+"}, {"label": "Bronze"}]},
    )
    assert (await call(client, "organizations_get", {"id": ids["A"]}))["custom"]["tier"] == "gold"
    assert "tier" not in (await call(client, "organizations_get", {"id": ids["B"]}))["custom"]  # silver is gone
    b = await call(client, "organizations_update", {"id": ids["B"], "custom": {"Level": "Bronze"}})
    assert b["custom"]["tier"] == "bronze"
    text_ = await fail(client, "fields_update", {"id": tier["id"], "key": "level"})
    assert "key: cannot change" in text_


async def test_a_deleted_field_hides_its_values_until_restored(client):
    ids = await _orgs_with(client)
    seats = (await call(client, "fields_list", {"filter": {"field": "key", "op": "eq", "value": "seats"}}))["items"][0]
    await call(client, "fields_delete", {"id": seats["id"]})
    assert "seats" not in (await call(client, "organizations_get", {"id": ids["A"]}))["custom"]
    text_ = await fail(client, "organizations_list", {"filter": {"field": "custom.seats", "op": "gt", "value": 1}})
    assert "Unknown custom field 'seats'" in text_
    await call(client, "fields_restore", {"ids": [seats["id"]]})
    assert (await call(client, "organizations_get", {"id": ids["A"]}))["custom"]["seats"] == 120
    # erased for good, then made again: the old values do not come back
    await call(client, "fields_delete", {"id": seats["id"]})
    await call(client, "trash_purge", {"ids": [seats["id"]]})
    seats = await _field(client, "organizations", "Seats", "number")
    assert "seats" not in (await call(client, "organizations_get", {"id": ids["A"]}))["custom"]
    # a deleted field whose key was taken meanwhile cannot come back, and says why
    await call(client, "fields_delete", {"id": seats["id"]})
    again = await _field(client, "organizations", "Seats", "text")
    text_ = await fail(client, "fields_restore", {"ids": [seats["id"]]})
    assert f"'organizations seats' is already used by custom field {again['id']}" in text_


async def test_config_describes_custom_fields(client):
    await _orgs_with(client)
    config = await call(client, "organizations_config", {})
    by_key = {f["key"]: f for f in config["custom_fields"]}
    assert by_key["tier"]["options"] == [{"key": "gold", "label": "Gold"}, {"key": "silver", "label": "Silver"}]
    assert by_key["arr"]["filters"] == {"custom.arr.amount": list(by_key["seats"]["filters"]["custom.seats"])}
    assert "in" in by_key["tier"]["filters"]["custom.tier"]
    assert (await call(client, "contacts_config", {}))["custom_fields"] == []


async def test_bad_definitions_are_refused(client, database_url):
    await _field(client, "deals", "Tier", "single_option")
    before = await snapshot(database_url)
    text_ = await fail(client, "fields_create", {"entity": "deals", "label": "Tier", "type": "text"})
    assert "key: 'deals tier' is already used by custom field" in text_
    text_ = await fail(client, "fields_create", {"entity": "deals", "label": "Kind", "type": "single_option"})
    assert "needs at least one option" in text_
    text_ = await fail(client, "fields_create", {"entity": "deals", "label": "N", "type": "number", "options": OPTIONS})
    assert "only option fields have options" in text_
    text_ = await fail(client, "fields_create", {"entity": "notes", "label": "N", "type": "number"})
    assert "entity" in text_
    text_ = await fail(client, "fields_create", {"entity": "deals", "label": "N", "type": "colour"})
    assert "type" in text_
    assert await snapshot(database_url) == before


async def test_an_indexed_field_is_served_by_an_index(client, database_url):
    await _field(client, "contacts", "Score", "number", indexed=True)
    await call(client, "contacts_create", {"first_name": "A", "last_name": "B", "custom": {"score": 3}})
    found = await call(client, "contacts_list", {"filter": {"field": "custom.score", "op": "gt", "value": 1}})
    assert len(found["items"]) == 1
    db = Database(database_url)
    try:
        if database_url.startswith("sqlite"):
            plan = await db.read(
                lambda c: c.execute(
                    text(
                        "EXPLAIN QUERY PLAN SELECT id FROM contacts WHERE workspace_id = 'w' "
                        "AND json_extract(contacts.custom, '$.\"score\"') > 1"
                    )
                ).all()
            )
            assert "ix_custom_contacts_score" in str(plan)
        else:
            names = await db.read(lambda c: c.execute(text("SELECT indexname FROM pg_indexes")).scalars().all())
            assert "ix_custom_contacts_score" in names
    finally:
        await db.dispose()


async def test_crm_schema_is_a_short_index_of_everything(client):
    await _field(client, "deals", "Contract tier", "single_option")
    result = await client.call_tool("crm_schema", {})
    schema = result.structured_content
    assert len(result.content[0].text) < 4000  # a few hundred tokens: cheap to read first
    lines = {line.split(":")[0]: line for line in schema["entities"]}
    assert set(lines) == {
        "contacts", "organizations", "leads", "lead_stages", "deals", "pipelines", "stages", "services", "tasks",
        "activities", "activity_types", "notes", "lists", "users", "fields",
    }  # fmt: skip
    assert "Needs name." in lines["deals"] and "stage_id -> stages" in lines["deals"]
    assert schema["custom_fields"] == {"deals": ["contract_tier (single_option)"]}
    assert {"deals_move", "associate", "leads_convert"} <= set(schema["verbs"])


async def test_fields_of_one_type_never_share_a_compiled_query(client):
    """The field's path is in the SQL text: a query on one field must not reuse another's cached statement."""
    await _field(client, "contacts", "Score", "number")
    await _field(client, "contacts", "Rank", "number")
    ada = await call(
        client, "contacts_create", {"first_name": "A", "last_name": "A", "custom": {"score": 5, "rank": 1}}
    )
    bob = await call(
        client, "contacts_create", {"first_name": "B", "last_name": "B", "custom": {"score": 1, "rank": 5}}
    )
    for key, expected in (("score", ada), ("rank", bob), ("score", ada)):
        page = await call(client, "contacts_list", {"filter": {"field": f"custom.{key}", "op": "gt", "value": 3}})
        assert [c["id"] for c in page["items"]] == [expected["id"]], key
        page = await call(client, "contacts_list", {"sort": [{"field": f"custom.{key}", "direction": "desc"}]})
        assert page["items"][0]["id"] == expected["id"], key
