"""Filters, sorting, keyset pagination, field selection and text search in *_list."""

import pytest

from tests.helpers import call, fail

pytestmark = pytest.mark.anyio


async def ids_of(client, tool, **arguments):
    page = await call(client, tool, arguments)
    return [item["id"] for item in page["items"]]


async def walk(client, tool, **arguments):
    """Every page of a listing, following next_cursor."""
    seen, cursor = [], None
    while True:
        page = await call(client, tool, {**arguments, **({"cursor": cursor} if cursor else {})})
        seen.extend(item["id"] for item in page["items"])
        if not page["has_more"]:
            assert page["next_cursor"] is None
            return seen
        cursor = page["next_cursor"]


@pytest.fixture
async def people(client):
    rows = [
        ("Ada", "Lovelace", "ada@acme.com", "CTO", ["vip"], "1815-12-10"),
        ("Grace", "Hopper", "grace@navy.mil", "Admiral", ["navy", "vip"], "1906-12-09"),
        ("Alan", "Turing", "alan@acme.com", None, [], None),
        ("Edsger", "Dijkstra", "edsger@tue.nl", "Professor", ["dutch"], "1930-05-11"),
        ("Barbara", "Liskov", None, "Professor", [], "1939-11-07"),
    ]
    items = [
        {
            "first_name": f,
            "last_name": last,
            "job_title": job,
            "tags": tags,
            "birthday": born,
            **({"emails": [{"value": email}]} if email else {}),
        }
        for f, last, email, job, tags, born in rows
    ]
    created = (await call(client, "contacts_create_many", {"items": items}))["items"]
    return {c["name"].split()[-1]: c["id"] for c in created}


async def test_text_operators(client, people):
    assert await ids_of(
        client, "contacts_list", filter={"field": "email", "op": "ends_with", "value": "@ACME.com"}
    ) == [people["Lovelace"], people["Turing"]]
    assert await ids_of(client, "contacts_list", filter={"field": "last_name", "op": "eq", "value": "Hopper"}) == [
        people["Hopper"]
    ]
    assert await ids_of(client, "contacts_list", filter={"field": "last_name", "op": "starts_with", "value": "l"}) == [
        people["Lovelace"],
        people["Liskov"],
    ]
    assert await ids_of(client, "contacts_list", filter={"field": "job_title", "op": "contains", "value": "fess"}) == [
        people["Dijkstra"],
        people["Liskov"],
    ]
    assert await ids_of(
        client, "contacts_list", filter={"field": "last_name", "op": "in", "value": ["Turing", "X"]}
    ) == [people["Turing"]]


async def test_ne_and_not_in_include_empty_values(client, people):
    found = await ids_of(client, "contacts_list", filter={"field": "job_title", "op": "ne", "value": "Professor"})
    assert set(found) == {people["Lovelace"], people["Hopper"], people["Turing"]}
    found = await ids_of(client, "contacts_list", filter={"field": "job_title", "op": "not_in", "value": ["CTO"]})
    assert people["Turing"] in found and people["Lovelace"] not in found


async def test_null_checks(client, people):
    assert await ids_of(client, "contacts_list", filter={"field": "job_title", "op": "is_null"}) == [people["Turing"]]
    assert await ids_of(client, "contacts_list", filter={"field": "emails", "op": "is_null"}) == [people["Liskov"]]
    assert len(await ids_of(client, "contacts_list", filter={"field": "birthday", "op": "is_not_null"})) == 4


async def test_date_ranges_and_boolean_logic(client, people):
    found = await ids_of(
        client,
        "contacts_list",
        filter={"field": "birthday", "op": "between", "value": ["1900-01-01", "1935-12-31"]},
        sort=[{"field": "birthday"}],
    )
    assert found == [people["Hopper"], people["Dijkstra"]]
    tree = {
        "and": [
            {"field": "tags", "op": "contains", "value": "vip"},
            {"not": {"field": "email", "op": "ends_with", "value": ".mil"}},
        ]
    }
    assert await ids_of(client, "contacts_list", filter=tree) == [people["Lovelace"]]
    either = {
        "or": [
            {"field": "tags", "op": "in", "value": ["dutch", "navy"]},
            {"field": "job_title", "op": "eq", "value": "CTO"},
        ]
    }
    assert set(await ids_of(client, "contacts_list", filter=either)) == {
        people["Lovelace"],
        people["Hopper"],
        people["Dijkstra"],
    }


async def test_tags_match_whole_tags_only(client, people):
    assert await ids_of(client, "contacts_list", filter={"field": "tags", "op": "contains", "value": "vi"}) == []
    assert len(await ids_of(client, "contacts_list", filter={"field": "tags", "op": "contains", "value": "VIP"})) == 2


async def test_relation_filters_find_records_of_an_organization(client, people):
    acme = await call(
        client, "organizations_create", {"name": "Acme", "contact_ids": [people["Lovelace"], people["Turing"]]}
    )
    other = await call(client, "organizations_create", {"name": "Other"})
    assert await ids_of(
        client, "contacts_list", filter={"field": "organization_ids", "op": "eq", "value": acme["id"]}
    ) == [people["Lovelace"], people["Turing"]]
    deal = await call(client, "deals_create", {"name": "Acme deal", "organization_ids": [acme["id"]]})
    await call(client, "deals_create", {"name": "Other deal", "organization_ids": [other["id"]]})
    await call(client, "deals_create", {"name": "Nobody's deal"})
    assert await ids_of(
        client, "deals_list", filter={"field": "organization_ids", "op": "eq", "value": acme["id"]}
    ) == [deal["id"]]
    assert len(await ids_of(client, "deals_list", filter={"field": "organization_ids", "op": "is_null"})) == 1
    task = await call(client, "tasks_create", {"name": "Follow up", "deal_id": deal["id"]})
    assert await ids_of(client, "tasks_list", filter={"field": "deal_id", "op": "eq", "value": deal["id"]}) == [
        task["id"]
    ]


async def test_money_filters_compare_numerically(client):
    for name, value in [("small", "999.99"), ("ten k", "10000"), ("big", "250000"), ("none", None)]:
        await call(client, "deals_create", {"name": name, "value": value})
    page = await call(client, "deals_list", {"filter": {"field": "value", "op": "gt", "value": 10000}})
    assert [d["name"] for d in page["items"]] == ["big"]
    page = await call(
        client,
        "deals_list",
        {
            "filter": {"field": "value", "op": "gte", "value": "10000.00"},
            "sort": [{"field": "value", "direction": "desc"}],
        },
    )
    assert [d["name"] for d in page["items"]] == ["big", "ten k"]


async def test_multi_key_sort_with_nulls_first_ascending(client, people):
    page = await call(
        client, "contacts_list", {"sort": [{"field": "job_title"}, {"field": "last_name", "direction": "desc"}]}
    )
    assert [c["last_name"] for c in page["items"]] == ["Turing", "Hopper", "Lovelace", "Liskov", "Dijkstra"]
    page = await call(client, "contacts_list", {"sort": [{"field": "job_title", "direction": "desc"}]})
    assert [c["last_name"] for c in page["items"]][-1] == "Turing"


async def test_pagination_over_ties_returns_every_record_once(client):
    items = [{"first_name": f"P{i:02}", "last_name": ["Same", "Tie", None][i % 3] or "Null"} for i in range(37)]
    created = (await call(client, "contacts_create_many", {"items": items}))["items"]
    for sort in (
        [{"field": "last_name"}],
        [{"field": "last_name", "direction": "desc"}],
        [{"field": "last_name"}, {"field": "first_name", "direction": "desc"}],
        [{"field": "job_title"}],  # all NULL: order falls back to id
    ):
        seen = await walk(client, "contacts_list", sort=sort, limit=4)
        assert sorted(seen) == sorted(c["id"] for c in created), sort
        assert len(seen) == len(set(seen))


async def test_pagination_survives_deletes_between_pages(client):
    items = [{"first_name": "N", "last_name": f"L{i:02}"} for i in range(10)]
    created = (await call(client, "contacts_create_many", {"items": items}))["items"]
    first = await call(client, "contacts_list", {"sort": [{"field": "last_name"}], "limit": 3})
    assert [c["last_name"] for c in first["items"]] == ["L00", "L01", "L02"]
    # delete the last row of page 1 and the first row of page 2
    await call(client, "contacts_delete_many", {"ids": [created[2]["id"], created[3]["id"]]})
    second = await call(
        client, "contacts_list", {"sort": [{"field": "last_name"}], "limit": 3, "cursor": first["next_cursor"]}
    )
    assert [c["last_name"] for c in second["items"]] == ["L04", "L05", "L06"]


async def test_total_fields_and_q(client, people):
    page = await call(client, "contacts_list", {"limit": 2, "include_total": True, "fields": ["last_name"]})
    assert page["total"] == 5 and page["has_more"] is True
    assert set(page["items"][0]) == {"id", "last_name"}
    page = await call(client, "contacts_list", {"q": "acme"})
    assert {c["id"] for c in page["items"]} == {people["Lovelace"], people["Turing"]}
    assert "total" not in await call(client, "contacts_list", {})


async def test_list_mistakes_are_explained(client, people):
    text = await fail(client, "contacts_list", {"filter": {"field": "job_titel", "op": "eq", "value": "x"}})
    assert "Unknown filter field 'job_titel'. Did you mean 'job_title'?" in text
    text = await fail(client, "contacts_list", {"filter": {"field": "last_name", "op": "gt", "value": "x"}})
    assert "Operator 'gt' does not apply to text field 'last_name'" in text and "starts_with" in text
    text = await fail(client, "contacts_list", {"filter": {"field": "birthday", "op": "gt", "value": "soon"}})
    assert "'soon' is not a valid date (YYYY-MM-DD)" in text
    text = await fail(client, "deals_list", {"filter": {"field": "status", "op": "eq", "value": "wonn"}})
    assert "Did you mean 'won'?" in text
    text = await fail(client, "contacts_list", {"filter": {"field": "last_name", "op": "equals", "value": "x"}})
    assert "filter.op" in text
    text = await fail(client, "contacts_list", {"sort": [{"field": "tags"}]})
    assert "Unknown sort field 'tags'" in text
    text = await fail(client, "contacts_list", {"fields": ["frist_name"]})
    assert "Did you mean 'first_name'?" in text
    text = await fail(client, "contacts_list", {"limit": 500})
    assert "limit" in text


async def test_cursor_is_bound_to_its_query(client, people):
    page = await call(client, "contacts_list", {"limit": 2, "sort": [{"field": "last_name"}]})
    text = await fail(client, "contacts_list", {"limit": 2, "cursor": page["next_cursor"]})
    assert "different filter, sort or search" in text
    text = await fail(client, "contacts_list", {"cursor": "garbage!"})
    assert "cursor is not valid" in text


async def test_deep_filter_trees_are_refused(client):
    node = {"field": "last_name", "op": "eq", "value": "x"}
    for _ in range(10):
        node = {"not": node}
    assert "nested deeper" in await fail(client, "contacts_list", {"filter": node})


async def test_q_matches_every_word_across_fields(client, people):
    assert await ids_of(client, "contacts_list", q="ada lovelace") == [people["Lovelace"]]
    assert await ids_of(client, "contacts_list", q="professor liskov") == [people["Liskov"]]
    assert await ids_of(client, "contacts_list", q="grace acme") == []
