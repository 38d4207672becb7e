"""Segment e-commerce events build orders, refunds, carts and the catalog, and the profile's
order totals follow them; merges and splits carry orders along."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import orjson
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from clientela.api.app import create_app
from clientela.commerce.carts import abandon_carts
from clientela.commerce.catalog import CatalogMemory
from clientela.commerce.ecommerce import Change, Line, stated_change
from clientela.commerce.models import EarlyOrderEvent
from clientela.core.clock import utcnow
from clientela.db import session_scope
from tests.helpers import batch, customer_by_user, send

LINES = [{"product_id": "P1", "sku": "SKU-1", "name": "Tênis Corrida", "price": 199.90,
          "quantity": 1, "category": ["Calçados", "Corrida"], "brand": "Garoa"},
         {"product_id": "P2", "name": "Meia", "price": "25.05", "quantity": 2}]


def _track(client, key, event, properties, user="u1", at="2026-10-01T12:00:00Z", **extra):
    answer = send(client, key, "track", userId=user, event=event, properties=properties,
                  timestamp=at, **extra)
    assert answer.status_code == 200, answer.text
    return answer


def _totals(api, user="u1"):
    aggregates = customer_by_user(api, user)["aggregates"]
    return aggregates["orders_count"], aggregates["revenue_total"]


def _orders(api, user="u1"):
    customer = customer_by_user(api, user)
    return api.get(f"/api/v1/customers/{customer['id']}/orders").json()["items"]


def test_an_order_lives_through_completion_update_refunds_and_cancellation(
        client, write_key, api):
    _track(client, write_key, "Order Completed", {
        "order_id": "o-1", "total": 250.00, "subtotal": 250.00, "shipping": 0, "coupon": "BF10",
        "products": LINES})
    _track(client, write_key, "Order Completed", {"order_id": "o-1", "total": 250.00},
           messageId="resent")  # the same order again: still one order
    assert _totals(api) == (1, 250.0)
    [order] = _orders(api)
    assert (order["external_id"], order["status"], order["currency"], order["total"],
            order["coupon"], order["channel"]) == ("o-1", "placed", "BRL", "250.00", "BF10", "web")
    assert [(i["sku"], i["name"], i["quantity"], i["unit_price"], i["category"])
            for i in order["items"]] == [("SKU-1", "Tênis Corrida", 1, "199.90",
                                          "Calçados > Corrida"),
                                         (None, "Meia", 2, "25.05", None)]

    _track(client, write_key, "Order Updated", {"order_id": "o-1", "total": "260.00",
                                                "status": "paid"})
    _track(client, write_key, "Order Refunded", {"order_id": "o-1", "total": 60})
    [order] = _orders(api)
    assert (order["status"], order["total"], order["refunded"], order["net_store"]) == (
        "paid", "260.00", "60.00", "200.00")
    assert len(order["items"]) == 2  # an update without products keeps the items
    assert _totals(api) == (1, 200.0)

    _track(client, write_key, "Order Refunded", {"order_id": "o-1"})  # the rest
    [order] = _orders(api)
    assert (order["status"], order["refunded"]) == ("refunded", "260.00")
    assert [r["amount"] for r in order["refunds"]] == ["60.00", "200.00"]
    assert _totals(api) == (1, 0.0)

    _track(client, write_key, "Order Completed", {"order_id": "o-2", "total": 40},
           at="2026-10-05T09:00:00Z")
    assert _totals(api) == (2, 40.0)
    assert customer_by_user(api, "u1")["aggregates"]["last_order_at"] == "2026-10-05T09:00:00Z"
    _track(client, write_key, "Order Cancelled", {"order_id": "o-2"})
    assert _totals(api) == (1, 0.0)
    assert customer_by_user(api, "u1")["aggregates"]["last_order_at"] == "2026-10-01T12:00:00Z"
    statuses = {o["external_id"]: o["status"] for o in _orders(api)}
    assert statuses == {"o-1": "refunded", "o-2": "cancelled"}


def test_orders_in_other_currencies_count_in_the_store_currency(settings, engine, write_key):
    tuned = settings.model_copy(update={"currency_rates": {"USD": Decimal("5.10")}})
    with TestClient(create_app(tuned, engine)) as client:
        _track(client, write_key, "Order Completed", {"order_id": "us-1", "total": "10.00",
                                                      "currency": "usd"})
        _track(client, write_key, "Order Completed", {"order_id": "eu-1", "total": "10.00",
                                                      "currency": "EUR"})
        client.headers["Authorization"] = f"Bearer {_secret(engine)}"
        assert _totals(client) == (2, 51.0)  # no EUR rate: counted, no revenue
        nets = {o["external_id"]: (o["currency"], o["total"], o["net_store"])
                for o in _orders(client)}
    assert nets == {"us-1": ("USD", "10.00", "51.00"), "eu-1": ("EUR", "10.00", None)}


def _secret(engine) -> str:
    from clientela.team import service as team

    with session_scope(engine) as session:
        return team.create_key(session=session, kind="secret").key


def test_a_cart_fills_empties_and_converts_into_the_order(client, write_key, api):
    product = {"product_id": "P1", "name": "Tênis", "price": 199.90}
    _track(client, write_key, "Product Added", {**product, "quantity": 1})
    _track(client, write_key, "Product Added", {**product, "quantity": 2})
    _track(client, write_key, "Product Added", {"product_id": "P2", "name": "Meia",
                                                "price": 25})
    _track(client, write_key, "Product Removed", {"product_id": "P2", "quantity": 1})
    customer = customer_by_user(api, "u1")
    [cart] = api.get(f"/api/v1/customers/{customer['id']}/carts").json()
    assert (cart["status"], cart["quantity"], cart["value"]) == ("open", 3, "599.70")
    assert [(i["product_id"], i["quantity"]) for i in cart["items"]] == [("P1", 3)]
    _track(client, write_key, "Checkout Started", {"value": 599.70, "products": [
        {**product, "quantity": 3}]}, at="2026-10-01T12:05:00Z")
    _track(client, write_key, "Order Completed", {"order_id": "o-9", "total": 599.70},
           at="2026-10-01T12:10:00Z")
    [cart] = api.get(f"/api/v1/customers/{customer['id']}/carts").json()
    [order] = _orders(api)
    assert (cart["status"], cart["order_id"]) == ("converted", order["id"])
    assert cart["checkout_started_at"] == "2026-10-01T12:05:00Z"


def test_a_cart_left_alone_becomes_abandoned_and_reopens_when_touched(
        client, write_key, api, engine):
    recent = utcnow().replace(microsecond=0)
    _track(client, write_key, "Product Added", {"cart_id": "c-old", "sku": "S1", "price": 10},
           at=(recent - timedelta(hours=3)).isoformat())
    _track(client, write_key, "Product Added", {"cart_id": "c-new", "sku": "S2", "price": 10},
           user="u2", at=(recent - timedelta(minutes=10)).isoformat())
    with session_scope(engine) as session:
        assert abandon_carts(session=session, now=recent, after_minutes=60) == 1
    old = customer_by_user(api, "u1")["id"]
    [cart] = api.get(f"/api/v1/customers/{old}/carts").json()
    assert (cart["external_id"], cart["status"]) == ("c-old", "abandoned")
    assert cart["abandoned_at"] is not None
    [other] = api.get(f"/api/v1/customers/{customer_by_user(api, 'u2')['id']}/carts").json()
    assert other["status"] == "open"
    _track(client, write_key, "Product Added", {"cart_id": "c-old", "sku": "S3", "price": 5},
           at=recent.isoformat())
    [cart] = api.get(f"/api/v1/customers/{old}/carts").json()
    assert (cart["status"], cart["abandoned_at"], cart["quantity"]) == ("open", None, 2)


def test_product_views_build_the_catalog_and_orders_tell_what_sold(client, write_key, api):
    _track(client, write_key, "Product Viewed", {"product_id": "P1", "sku": "SKU-1",
                                                 "name": "Tênis", "price": 199.90,
                                                 "brand": "Garoa", "url": "https://s/p1"})
    _track(client, write_key, "Product Viewed", {"product_id": "P1", "price": 179.90})
    _track(client, write_key, "Order Completed", {"order_id": "o-1", "products": [
        {"product_id": "P1", "price": 150.00, "quantity": 2},
        {"product_id": "P3", "name": "Boné", "price": 30}]})
    _track(client, write_key, "Order Completed", {"order_id": "o-2", "products": [
        {"product_id": "P1", "price": 179.90, "quantity": 1}]}, user="u2")
    products = api.get("/api/v1/products").json()["items"]
    assert [(p["external_id"], p["name"], p["price"], p["brand"]) for p in products] == [
        ("P1", "Tênis", "179.90", "Garoa"), ("P3", "Boné", "30.00", None)]
    assert api.get("/api/v1/products", params={"q": "bon"}).json()["items"][0]["name"] == "Boné"
    detail = api.get(f"/api/v1/products/{products[0]['id']}").json()
    assert detail["sales"] == {"orders": 2, "units": 3, "buyers": 2,
                               "revenue": {"BRL": "479.90"}}
    assert detail["top_buyers"] == [customer_by_user(api, "u1")["id"],
                                    customer_by_user(api, "u2")["id"]]
    assert _totals(api) == (1, 330.0)  # no total stated: the sum of the products


def test_merging_customers_moves_their_orders_and_a_split_gives_them_back(
        client, write_key, api):
    _track(client, write_key, "Order Completed", {"order_id": "a-1", "total": 100},
           user=None, anonymousId="device-a")
    _track(client, write_key, "Order Completed", {"order_id": "b-1", "total": 50}, user="u9")
    send(client, write_key, "identify", userId="u9", anonymousId="device-a")
    merged = customer_by_user(api, "u9")
    assert (merged["aggregates"]["orders_count"], merged["aggregates"]["revenue_total"]) == (
        2, 150.0)
    [record] = api.get(f"/api/v1/customers/{merged['id']}/merges").json()
    assert api.post(f"/api/v1/merges/{record['id']}/unmerge").status_code == 200
    kept = api.get(f"/api/v1/customers/{record['kept_id']}").json()["aggregates"]
    dropped = api.get(f"/api/v1/customers/{record['dropped_id']}").json()["aggregates"]
    assert {(kept["orders_count"], kept["revenue_total"]),
            (dropped["orders_count"], dropped["revenue_total"])} == {(1, 100.0), (1, 50.0)}


@pytest.mark.parametrize(("properties", "message"), [
    ({"order_id": "x", "total": "abc"}, "properties.total: 'abc' is not a number"),
    ({"order_id": "x", "products": [{"price": 1, "quantity": -1}]},
     "properties.products[0].quantity: must be a whole number from 0 to 1000000"),
    ({"order_id": "x", "total": 1, "currency": "dollars"},
     "properties.currency: must be a three-letter ISO 4217 currency code"),
    ({"order_id": "x", "total": 1, "status": "lost"},
     "properties.status: must be one of placed, paid, fulfilled"),
])
def test_bad_order_properties_reject_the_call_and_store_nothing(client, write_key, api,
                                                               properties, message):
    answer = batch(client, write_key, [
        {"type": "track", "userId": "u1", "event": "Order Completed", "properties": properties},
        {"type": "track", "userId": "u1", "event": "Order Refunded", "properties": {}},
    ])
    assert [r["message"] for r in answer.json()["rejected"]] == [
        message, "properties.order_id: required for Order Refunded"]
    assert api.get("/api/v1/orders").json()["items"] == []


def test_a_product_named_by_an_order_and_a_cart_in_one_batch_keeps_every_detail(
        client, write_key, api):
    def call(event, properties):
        return {"type": "track", "userId": "u1", "event": event, "properties": properties}

    answer = batch(client, write_key, [
        call("Order Completed", {"order_id": "o-1", "products": [
            {"product_id": "P1", "sku": "SKU-1", "name": "Tênis velho", "price": 90,
             "category": "Calçados"}]}),
        call("Product Added", {"product_id": "P1", "name": "Tênis", "brand": "Garoa",
                               "price": 100, "url": "https://s/p1"}),
        call("Product Added", {"product_id": "P2", "name": "Boné", "brand": "Duna",
                               "price": 50, "image_url": "https://s/p2.jpg"}),
        call("Order Completed", {"order_id": "o-2", "products": [
            {"product_id": "P2", "sku": "SKU-2", "price": 45, "category": "Acessórios"}]}),
    ])
    assert answer.json()["rejected"] == []
    products = api.get("/api/v1/products").json()["items"]
    assert [(p["external_id"], p["sku"], p["name"], p["category"], p["brand"], p["price"],
             p["currency"], p["url"], p["image_url"]) for p in products] == [
        ("P1", "SKU-1", "Tênis", "Calçados", "Garoa", "100.00", "BRL", "https://s/p1", None),
        # The order line after the cart fills in what the cart did not say; its price is
        # what was paid then, not the catalog's.
        ("P2", "SKU-2", "Boné", "Acessórios", "Duna", "50.00", "BRL", None,
         "https://s/p2.jpg")]


def test_short_properties_are_read_once_per_text_and_currency():
    properties = {"product_id": "P1", "price": 10}
    text = orjson.dumps(properties).decode()
    first = stated_change("Product Viewed", properties, text, currency="BRL")
    assert first == Change(event="Product Viewed",
                           lines=(Line(product_id="P1", price_cents=1000),))
    assert stated_change("Product Viewed", dict(properties), text, currency="BRL") is first
    in_yen = stated_change("Product Viewed", properties, text, currency="JPY")
    assert in_yen is not None and in_yen.lines[0].price_cents == 10
    assert stated_change("Signed Up", properties, text, currency="BRL") is None
    order = {"order_id": "o-1", "total": 5, "coupon": "x" * 3000}  # long: read, not kept
    assert stated_change("Order Completed", order, orjson.dumps(order).decode(),
                         currency="BRL") == Change(event="Order Completed", order_id="o-1",
                                                   total_cents=500, coupon="x" * 255)


def test_the_catalog_memory_holds_only_what_was_committed():
    values = ("S-1", "Tênis", None, None, 19990, "BRL", None, None)
    memory = CatalogMemory(seconds=60)
    memory.stage("events", "P1", values)
    memory.forget()  # the write rolled back
    assert not memory.restates("events", "P1", values)
    memory.stage("events", "P1", values)
    memory.keep()
    assert memory.restates("events", "P1", values)
    assert memory.restates("events", "P1", (None,) * 8)  # states nothing new
    assert not memory.restates("events", "P1", ("S-1", "Tênis", None, None, 17990, "BRL",
                                                None, None))
    assert not memory.restates("events", "P1", ("S-1", "Tênis", "Calçados", None, 19990,
                                                "BRL", None, None))  # unknown category
    assert not memory.restates("shopify", "P1", values)
    stale = CatalogMemory(seconds=-1)
    stale.stage("events", "P1", values)
    stale.keep()
    assert not stale.restates("events", "P1", values)


def test_one_write_that_describes_an_order_twice_keeps_the_last_items(client, write_key, api):
    answer = batch(client, write_key, [
        {"type": "track", "userId": "u1", "event": "Order Completed", "properties": {
            "order_id": "o-1", "products": [{"sku": "A", "price": 1}, {"sku": "B", "price": 2}]}},
        {"type": "track", "userId": "u1", "event": "Order Updated", "properties": {
            "order_id": "o-1", "total": 6, "products": [
                {"sku": "A", "price": 1}, {"sku": "B", "price": 2}, {"sku": "C", "price": 3}]}},
    ])
    assert answer.json()["rejected"] == []
    [order] = _orders(api)
    assert [item["sku"] for item in order["items"]] == ["A", "B", "C"]
    _track(client, write_key, "Order Updated", {"order_id": "o-1", "products": [
        {"sku": "D", "price": 6}]})
    [order] = _orders(api)
    assert [item["sku"] for item in order["items"]] == ["D"]


def test_one_write_folds_many_order_events_into_their_orders(client, write_key, api):
    def call(event, **properties):
        return {"type": "track", "userId": "u1", "event": event, "properties": properties}

    _track(client, write_key, "Order Completed", {"order_id": "o-1", "total": 100, "products": [
        {"sku": "A", "price": 60}, {"sku": "B", "price": 40}]})
    answer = batch(client, write_key, [
        call("Order Refunded", order_id="o-3", total=20),  # before its order: kept, then applied
        call("Order Completed", order_id="o-2", total=80, products=[{"sku": "C", "price": 80}]),
        call("Order Updated", order_id="o-1", total=120, products=[{"sku": "D", "price": 120}]),
        call("Order Refunded", order_id="o-1", total=30),
        call("Order Completed", order_id="o-3", total=50, coupon="X"),
        call("Order Cancelled", order_id="o-2"),
        call("Order Refunded", order_id="o-2"),  # the rest of a cancelled order
    ])
    assert answer.json()["rejected"] == []
    orders = sorted(_orders(api), key=lambda order: order["external_id"])
    assert [(o["external_id"], o["status"], o["total"], o["refunded"], o["net_store"],
             o["coupon"], [i["sku"] for i in o["items"]], [r["amount"] for r in o["refunds"]])
            for o in orders] == [
        ("o-1", "placed", "120.00", "30.00", "90.00", None, ["D"], ["30.00"]),
        ("o-2", "cancelled", "80.00", "80.00", "0.00", None, ["C"], ["80.00"]),
        ("o-3", "placed", "50.00", "20.00", "30.00", "X", [], ["20.00"])]
    assert _totals(api) == (2, 120.0)
    with session_scope(client.app.state.engine, writes=False) as session:
        assert session.scalars(select(EarlyOrderEvent.id)).all() == []


def test_an_event_without_currency_speaks_of_the_orders_currency(client, write_key, api):
    _track(client, write_key, "Order Completed", {"order_id": "jp-1", "currency": "JPY",
                                                  "total": 5000})
    _track(client, write_key, "Order Refunded", {"order_id": "jp-1", "total": 1000})
    [order] = _orders(api)
    assert (order["currency"], order["total"], order["refunded"], order["status"]) == (
        "JPY", "5000", "1000", "placed")


def test_long_texts_are_cut_to_their_columns(client, write_key, api):
    _track(client, write_key, "Order Completed", {"order_id": "o-9", "total": 1,
                                                  "channel": "c" * 300, "coupon": "x" * 300})
    [order] = _orders(api)
    assert (len(order["channel"]), len(order["coupon"])) == (64, 255)


def test_a_product_added_after_the_order_starts_a_new_cart(client, write_key, api):
    answer = batch(client, write_key, [
        {"type": "track", "userId": "u1", "event": "Product Added",
         "properties": {"sku": "A", "price": 1}},
        {"type": "track", "userId": "u1", "event": "Order Completed",
         "properties": {"order_id": "o-1", "total": 1}},
        {"type": "track", "userId": "u1", "event": "Product Added",
         "properties": {"sku": "B", "price": 2}},
    ])
    assert answer.json()["rejected"] == []
    customer = customer_by_user(api, "u1")
    carts = api.get(f"/api/v1/customers/{customer['id']}/carts").json()
    assert sorted((cart["status"], [i["sku"] for i in cart["items"]]) for cart in carts) == [
        ("converted", ["A"]), ("open", ["B"])]


def test_a_refund_or_cancellation_that_overtakes_its_order_applies_when_the_order_comes(
        client, write_key, api):
    _track(client, write_key, "Order Refunded", {"order_id": "o-1", "total": 60},
           at="2026-10-01T12:05:00Z")
    _track(client, write_key, "Order Cancelled", {"order_id": "o-2"},
           at="2026-10-02T09:05:00Z")
    assert api.get("/api/v1/orders").json()["items"] == []  # nothing to show yet
    _track(client, write_key, "Order Completed", {"order_id": "o-1", "total": 250,
                                                  "products": LINES})
    # A late Order Completed that states a status does not undo the cancellation.
    _track(client, write_key, "Order Completed", {"order_id": "o-2", "total": 40,
                                                  "status": "paid"}, at="2026-10-02T09:00:00Z")
    orders = {o["external_id"]: o for o in _orders(api)}
    assert (orders["o-1"]["status"], orders["o-1"]["total"], orders["o-1"]["refunded"],
            orders["o-1"]["net_store"], len(orders["o-1"]["items"])) == (
        "placed", "250.00", "60.00", "190.00", 2)
    assert [r["amount"] for r in orders["o-1"]["refunds"]] == ["60.00"]
    assert (orders["o-2"]["status"], orders["o-2"]["total"]) == ("cancelled", "40.00")
    assert _totals(api) == (1, 190.0)
    assert customer_by_user(api, "u1")["aggregates"]["last_order_at"] == "2026-10-01T12:00:00Z"


def test_events_of_one_write_that_come_before_their_order_apply_after_it(
        client, write_key, api):
    answer = batch(client, write_key, [
        {"type": "track", "userId": "u1", "event": "Order Refunded",
         "properties": {"order_id": "o-1"}},  # the whole order
        {"type": "track", "userId": "u1", "event": "Order Updated",
         "properties": {"order_id": "o-2", "status": "fulfilled"}},
        {"type": "track", "userId": "u1", "event": "Order Completed",
         "properties": {"order_id": "o-1", "total": 80}},
        {"type": "track", "userId": "u1", "event": "Order Completed",
         "properties": {"order_id": "o-2", "total": 30}},
    ])
    assert answer.json()["rejected"] == []
    orders = {o["external_id"]: o for o in _orders(api)}
    assert (orders["o-1"]["status"], orders["o-1"]["refunded"], orders["o-1"]["net_store"]) == (
        "refunded", "80.00", "0.00")
    assert [r["amount"] for r in orders["o-1"]["refunds"]] == ["80.00"]
    assert (orders["o-2"]["status"], orders["o-2"]["net_store"]) == ("fulfilled", "30.00")
    assert _totals(api) == (2, 30.0)


def test_a_refund_between_two_descriptions_of_one_write_keeps_the_last_items(
        client, write_key, api):
    answer = batch(client, write_key, [
        {"type": "track", "userId": "u1", "event": "Order Completed", "properties": {
            "order_id": "o-1", "products": [{"sku": "A", "price": 1}, {"sku": "B", "price": 2}]}},
        {"type": "track", "userId": "u1", "event": "Order Refunded",
         "properties": {"order_id": "o-1", "total": 1}},
        {"type": "track", "userId": "u1", "event": "Order Updated", "properties": {
            "order_id": "o-1", "total": 3, "products": [{"sku": "C", "price": 3}]}},
    ])
    assert answer.json()["rejected"] == []
    [order] = _orders(api)
    assert ([item["sku"] for item in order["items"]], order["refunded"], order["net_store"]) == (
        ["C"], "1.00", "2.00")


def test_an_event_waiting_for_its_order_follows_merges_and_splits(
        client, write_key, api, engine):
    send(client, write_key, "identify", userId="u9")
    _track(client, write_key, "Order Refunded", {"order_id": "o-7", "total": 5}, user=None,
           anonymousId="device-a")
    send(client, write_key, "identify", userId="u9", anonymousId="device-a")
    survivor = customer_by_user(api, "u9")["id"]
    with session_scope(engine, writes=False) as session:
        [(owner, origin)] = session.execute(
            select(EarlyOrderEvent.customer_id, EarlyOrderEvent.origin_customer_id)).all()
    assert owner == survivor and origin != survivor
    [record] = api.get(f"/api/v1/customers/{survivor}/merges").json()
    assert api.post(f"/api/v1/merges/{record['id']}/unmerge").status_code == 200
    with session_scope(engine, writes=False) as session:
        assert session.execute(select(EarlyOrderEvent.customer_id)).scalars().all() == [origin]
    _track(client, write_key, "Order Completed", {"order_id": "o-7", "total": 20}, user="u9")
    [order] = _orders(api, "u9")
    assert (order["refunded"], order["net_store"]) == ("5.00", "15.00")
    with session_scope(engine, writes=False) as session:
        assert session.execute(select(EarlyOrderEvent.id)).all() == []
