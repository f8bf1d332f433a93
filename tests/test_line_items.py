"""A deal's line items: their price, discount and total, and the deal's value that follows from them."""

import pytest

from tests.helpers import call, fail, snapshot

pytestmark = pytest.mark.anyio


@pytest.fixture
async def catalog(client):
    workshop = await call(client, "services_create", {"name": "Workshop", "amount": "1500", "currency": "EUR"})
    seats = await call(client, "services_create", {"name": "Seat", "amount": "40", "currency": "EUR"})
    support = await call(client, "services_create", {"name": "Support", "amount": "99.99", "currency": "USD"})
    return {"workshop": workshop["id"], "seats": seats["id"], "support": support["id"]}


async def test_a_deal_with_line_items_is_worth_their_total(client, catalog):
    deal = await call(
        client,
        "deals_create",
        {
            "name": "Rollout",
            "currency": "EUR",
            "services": [
                catalog["workshop"],  # a bare id: one unit at the service's price
                {"service_id": catalog["seats"], "quantity": "25", "unit_price": "36", "discount_percent": "10"},
                {"service_id": catalog["support"], "quantity": "12", "unit_price": "80", "discount_amount": "60.50"},
            ],
        },
    )
    lines = {line["name"]: line for line in deal["services"]}
    assert (lines["Workshop"]["quantity"], lines["Workshop"]["unit_price"]) == ("1.0000", "1500.00")
    assert lines["Workshop"]["total"] == "1500.00"
    assert lines["Seat"]["total"] == "810.00"  # 25 x 36 = 900, less 10%
    assert lines["Support"]["total"] == "899.50"  # 12 x 80 = 960, less 60.50
    assert deal["value"] == "3209.50"
    assert (await call(client, "deals_get", {"id": deal["id"]}))["services"] == deal["services"]


async def test_the_price_is_kept_on_the_line(client, catalog):
    deal = await call(client, "deals_create", {"name": "D", "currency": "EUR", "services": [catalog["workshop"]]})
    await call(client, "services_update", {"id": catalog["workshop"], "amount": "2000"})
    assert (await call(client, "deals_get", {"id": deal["id"]}))["value"] == "1500.00"
    # sending the line again changes only what is given: the quantity; the price stays
    deal = await call(
        client, "deals_update", {"id": deal["id"], "services": [{"service_id": catalog["workshop"], "quantity": "2"}]}
    )
    assert (deal["services"][0]["unit_price"], deal["value"]) == ("1500.00", "3000.00")
    deal = await call(
        client,
        "deals_update",
        {"id": deal["id"], "services": [{"service_id": catalog["workshop"], "unit_price": "2000"}]},
    )
    assert (deal["services"][0]["quantity"], deal["value"]) == ("2.0000", "4000.00")


async def test_the_value_is_set_by_hand_only_without_line_items(client, database_url, catalog):
    deal = await call(client, "deals_create", {"name": "D", "currency": "EUR", "services": [catalog["seats"]]})
    before = await snapshot(database_url)
    text = await fail(client, "deals_update", {"id": deal["id"], "value": "999"})
    assert "value: a deal with line items is worth their total" in text
    text = await fail(
        client, "deals_create", {"name": "E", "currency": "EUR", "value": "5", "services": [catalog["seats"]]}
    )
    assert "send services: [] to set the value by hand" in text
    assert await snapshot(database_url) == before
    # the same value as the lines is not a contradiction
    await call(client, "deals_update", {"id": deal["id"], "value": "40", "services": [catalog["seats"]]})
    deal = await call(client, "deals_update", {"id": deal["id"], "services": [], "value": "999"})
    assert (deal["services"], deal["value"]) == ([], "999.00")


async def test_bad_lines_are_refused_and_change_nothing(client, database_url, catalog):
    deal = await call(client, "deals_create", {"name": "D", "currency": "EUR", "services": [catalog["seats"]]})
    before = await snapshot(database_url)
    text = await fail(client, "deals_update", {"id": deal["id"], "services": [catalog["support"]]})
    assert "'Support' is priced in USD and the deal is in EUR: give this line a unit_price" in text
    both = {"service_id": catalog["seats"], "discount_percent": "5", "discount_amount": "1"}
    text = await fail(client, "deals_update", {"id": deal["id"], "services": [both]})
    assert "discount_percent or discount_amount, not both" in text
    too_much = {"service_id": catalog["seats"], "discount_amount": "41"}
    text = await fail(client, "deals_update", {"id": deal["id"], "services": [too_much]})
    assert "the discount on 'Seat' is more than its price" in text
    text = await fail(client, "deals_update", {"id": deal["id"], "services": [{"service_id": "nope"}]})
    assert "no service with id 'nope'" in text
    text = await fail(
        client, "deals_update", {"id": deal["id"], "services": [{"service_id": catalog["seats"], "x": 1}]}
    )
    assert "x" in text
    assert await snapshot(database_url) == before


async def test_a_currency_change_needs_the_lines_repriced(client, database_url, catalog):
    deal = await call(client, "deals_create", {"name": "D", "currency": "EUR", "services": [catalog["seats"]]})
    before = await snapshot(database_url)
    text = await fail(client, "deals_update", {"id": deal["id"], "currency": "USD"})
    assert "currency: the line items are priced in the deal's currency" in text
    assert await snapshot(database_url) == before
    line = {"service_id": catalog["seats"], "unit_price": "45"}
    deal = await call(client, "deals_update", {"id": deal["id"], "currency": "USD", "services": [line]})
    assert (deal["currency"], deal["value"]) == ("USD", "45.00")


async def test_deals_filter_on_their_lines(client, catalog):
    plain = await call(client, "deals_create", {"name": "Plain", "currency": "EUR", "services": [catalog["seats"]]})
    discounted = await call(
        client,
        "deals_create",
        {
            "name": "Discounted",
            "currency": "EUR",
            "services": [{"service_id": catalog["seats"], "discount_percent": 5}],
        },
    )
    found = await call(client, "deals_list", {"filter": {"field": "services.discount_percent", "op": "gt", "value": 0}})
    assert [d["id"] for d in found["items"]] == [discounted["id"]]
    big = {"field": "services.quantity", "op": "gte", "value": 1}
    assert {d["id"] for d in (await call(client, "deals_list", {"filter": big}))["items"]} == {
        plain["id"],
        discounted["id"],
    }
