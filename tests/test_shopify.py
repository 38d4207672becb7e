"""Shopify webhooks, with payloads shaped as Shopify's REST resources: signed, applied once."""

from __future__ import annotations

import base64
import hashlib
import hmac
from collections.abc import Iterator
from typing import Any

import orjson
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from clientela.api.app import create_app
from clientela.commerce.models import WebhookDelivery
from clientela.db import session_scope

SECRET = "hush-shopify-app-secret"

ORDER: dict[str, Any] = {
    "id": 450789469, "admin_graphql_api_id": "gid://shopify/Order/450789469",
    "email": "Bob.Norman@mail.example.com", "created_at": "2026-03-13T16:09:54-04:00",
    "updated_at": "2026-03-13T16:09:54-04:00", "cancelled_at": None, "cancel_reason": None,
    "currency": "BRL", "financial_status": "paid", "fulfillment_status": None,
    "name": "#1001", "order_number": 1001, "source_name": "web",
    "subtotal_price": "597.00", "total_discounts": "10.00", "total_line_items_price": "597.00",
    "total_price": "598.94", "total_tax": "11.94",
    "total_shipping_price_set": {"shop_money": {"amount": "0.00", "currency_code": "BRL"},
                                 "presentment_money": {"amount": "0.00",
                                                       "currency_code": "BRL"}},
    "discount_codes": [{"code": "TENOFF", "amount": "10.00", "type": "fixed_amount"}],
    "customer": {"id": 207119551, "email": "bob.norman@mail.example.com",
                 "first_name": "Bob", "last_name": "Norman"},
    "billing_address": {"first_name": "Bob", "last_name": "Norman", "city": "Ottawa"},
    "line_items": [
        {"id": 466157049, "product_id": 632910392, "variant_id": 39072856,
         "sku": "IPOD2008GREEN", "name": "IPod Nano - 8gb - green", "title": "IPod Nano - 8gb",
         "vendor": "Apple", "quantity": 1, "price": "199.00"},
        {"id": 518995019, "product_id": 632910392, "variant_id": 49148385,
         "sku": "IPOD2008RED", "name": "IPod Nano - 8gb - red", "title": "IPod Nano - 8gb",
         "vendor": "Apple", "quantity": 2, "price": "199.00"}],
    "refunds": [],
}
REFUND = {"id": 509562969, "order_id": 450789469, "created_at": "2026-03-14T10:00:00-04:00",
          "note": "it broke during shipping",
          "transactions": [{"id": 179259969, "amount": "41.94", "kind": "refund",
                            "status": "success", "currency": "BRL"},
                           {"id": 179259970, "amount": "5.00", "kind": "refund",
                            "status": "failure", "currency": "BRL"}],
          "refund_line_items": []}
CUSTOMER = {"id": 706405506, "email": "Carla.Lima@Example.com", "first_name": "Carla",
            "last_name": "Lima", "created_at": "2026-03-01T10:00:00-03:00",
            "email_marketing_consent": {"state": "subscribed", "opt_in_level": "single_opt_in"},
            "default_address": {"city": "Recife", "province": "Pernambuco",
                                "country_code": "BR"}}
PRODUCT = {"id": 632910392, "title": "IPod Nano - 8GB", "vendor": "Apple",
           "product_type": "Cult Products", "status": "active", "handle": "ipod-nano",
           "variants": [{"id": 808950810, "sku": "IPOD2008PINK", "price": "199.00",
                         "inventory_quantity": 10}],
           "image": {"src": "https://cdn.example.com/ipod-nano.png"}}


@pytest.fixture
def shop(settings, engine) -> Iterator[TestClient]:
    tuned = settings.model_copy(update={"shopify_webhook_secret": SECRET})
    with TestClient(create_app(tuned, engine)) as client:
        yield client


def _post(client: TestClient, topic: str, payload: dict[str, Any], delivery: str,
          secret: str = SECRET, body: bytes | None = None) -> Any:
    raw = body if body is not None else orjson.dumps(payload)
    signature = base64.b64encode(hmac.new(secret.encode(), raw, hashlib.sha256).digest())
    return client.post("/integrations/shopify/webhooks", content=raw, headers={
        "Content-Type": "application/json", "X-Shopify-Topic": topic,
        "X-Shopify-Hmac-Sha256": signature.decode(), "X-Shopify-Webhook-Id": delivery,
        "X-Shopify-Shop-Domain": "example.myshopify.com", "X-Shopify-API-Version": "2026-01"})


def _orders(api) -> list[dict[str, Any]]:
    return api.get("/api/v1/orders").json()["items"]


def test_an_order_arrives_changes_is_refunded_and_cancelled(shop, api):
    answer = _post(shop, "orders/create", ORDER, "w-1")
    assert answer.json() == {"success": True, "duplicate": False}
    assert _post(shop, "orders/create", ORDER, "w-1").json() == {"success": True,
                                                                 "duplicate": True}
    [order] = _orders(api)
    assert (order["source"], order["external_id"], order["status"], order["total"],
            order["subtotal"], order["discount"], order["tax"], order["shipping"],
            order["coupon"], order["channel"], order["placed_at"]) == (
        "shopify", "450789469", "paid", "598.94", "597.00", "10.00", "11.94", "0.00",
        "TENOFF", "web", "2026-03-13T20:09:54Z")
    assert [(i["sku"], i["quantity"], i["unit_price"]) for i in order["items"]] == [
        ("IPOD2008GREEN", 1, "199.00"), ("IPOD2008RED", 2, "199.00")]
    customer = api.get(f"/api/v1/customers/{order['customer_id']}").json()
    assert (customer["email"], customer["first_name"], customer["last_name"]) == (
        "bob.norman@mail.example.com", "Bob", "Norman")
    assert (customer["aggregates"]["orders_count"],
            customer["aggregates"]["revenue_total"]) == (1, 598.94)

    assert _post(shop, "refunds/create", REFUND, "w-2").status_code == 200
    [order] = _orders(api)
    assert (order["refunded"], order["status"]) == ("41.94", "paid")
    assert order["refunds"][0]["reason"] == "it broke during shipping"
    # The order's update carries the same refund: it is not counted twice.
    updated = {**ORDER, "financial_status": "partially_refunded", "refunds": [REFUND],
               "line_items": ORDER["line_items"][:1], "total_price": "199.00"}
    _post(shop, "orders/updated", updated, "w-3")
    [order] = _orders(api)
    assert (order["total"], order["refunded"], len(order["items"])) == ("199.00", "41.94", 1)
    _post(shop, "orders/cancelled", {**updated, "cancelled_at": "2026-03-15T09:00:00-04:00"},
          "w-4")
    [order] = _orders(api)
    assert order["status"] == "cancelled"
    customer = api.get(f"/api/v1/customers/{order['customer_id']}").json()
    assert (customer["aggregates"]["orders_count"],
            customer["aggregates"]["revenue_total"]) == (0, 0.0)


def test_customers_and_products_update_the_profile_and_the_catalog(shop, api):
    _post(shop, "customers/create", CUSTOMER, "w-10")
    [found] = api.get("/api/v1/customers", params={"email": "carla.lima@example.com"}
                      ).json()["items"]
    assert (found["first_name"], found["city"], found["region"], found["country"],
            found["consent"]["email_marketing"]) == ("Carla", "Recife", "Pernambuco", "BR",
                                                     "subscribed")
    _post(shop, "customers/update", {**CUSTOMER, "first_name": "Carla Maria"}, "w-11")
    assert api.get(f"/api/v1/customers/{found['id']}").json()["first_name"] == "Carla Maria"
    _post(shop, "products/create", PRODUCT, "w-12")
    _post(shop, "products/update", {**PRODUCT, "status": "draft",
                                    "variants": [{**PRODUCT["variants"][0], "price": "179.00"}]},
          "w-13")
    [product] = api.get("/api/v1/products").json()["items"]
    assert (product["source"], product["external_id"], product["name"], product["brand"],
            product["category"], product["sku"], product["price"], product["stock"],
            product["active"], product["image_url"]) == (
        "shopify", "632910392", "IPod Nano - 8GB", "Apple", "Cult Products", "IPOD2008PINK",
        "179.00", 10, False, "https://cdn.example.com/ipod-nano.png")


def test_privacy_requests_are_recorded_with_the_customer_they_name(shop, api, engine):
    _post(shop, "customers/create", CUSTOMER, "w-20")
    request = {"shop_id": 954889, "shop_domain": "example.myshopify.com",
               "orders_requested": [299938, 280263],
               "customer": {"id": 706405506, "email": "carla.lima@example.com",
                            "phone": "+5581999999999"},
               "data_request": {"id": 9999}}
    assert _post(shop, "customers/data_request", request, "w-21").status_code == 200
    assert _post(shop, "shop/redact", {"shop_id": 954889,
                                       "shop_domain": "example.myshopify.com"},
                 "w-22").status_code == 200
    with session_scope(engine, writes=False) as session:
        rows = session.execute(select(WebhookDelivery.topic, WebhookDelivery.customer_id)
                               .order_by(WebhookDelivery.id)).all()
    customer_id = api.get("/api/v1/customers", params={"email": "carla.lima@example.com"}
                          ).json()["items"][0]["id"]
    assert [tuple(row) for row in rows] == [("customers/create", customer_id),
                                            ("customers/data_request", customer_id),
                                            ("shop/redact", None)]


def test_a_tampered_or_unsigned_webhook_is_refused_and_changes_nothing(shop, api):
    raw = orjson.dumps(ORDER)
    tampered = raw.replace(b"598.94", b"5.00")
    signature = base64.b64encode(hmac.new(SECRET.encode(), raw, hashlib.sha256).digest())
    answer = shop.post("/integrations/shopify/webhooks", content=tampered, headers={
        "X-Shopify-Topic": "orders/create", "X-Shopify-Hmac-Sha256": signature.decode(),
        "X-Shopify-Webhook-Id": "w-30"})
    assert answer.status_code == 401
    assert answer.json() == {"code": "invalid_signature",
                             "message": "X-Shopify-Hmac-Sha256: does not match the body"}
    assert _post(shop, "orders/create", ORDER, "w-31", secret="another").status_code == 401
    unsigned = shop.post("/integrations/shopify/webhooks", content=raw,
                         headers={"X-Shopify-Topic": "orders/create"})
    assert unsigned.status_code == 401
    assert _orders(api) == []


@pytest.mark.parametrize(("payload", "message"), [
    ({**ORDER, "total_price": "lots"}, "total_price: 'lots' is not a number"),
    ({**ORDER, "currency": None}, "currency: must be a three-letter ISO 4217 currency code"),
    ({**ORDER, "line_items": [{"quantity": -2, "price": "1.00"}]},
     "line_items[0].quantity: must be a whole number from 0 to 1000000"),
    ({k: v for k, v in ORDER.items() if k != "id"}, "id: required"),
])
def test_a_malformed_order_is_a_clear_400_and_is_not_recorded(shop, api, engine, payload,
                                                              message):
    answer = _post(shop, "orders/create", payload, "w-40")
    assert answer.status_code == 400
    assert answer.json()["message"] == message
    assert _orders(api) == []
    with session_scope(engine, writes=False) as session:
        assert session.scalars(select(WebhookDelivery)).all() == []


def test_without_a_secret_the_endpoint_is_not_there(client):
    answer = client.post("/integrations/shopify/webhooks", content=b"{}")
    assert answer.status_code == 404
    assert answer.json()["code"] == "not_configured"


def test_a_guest_order_that_later_names_an_email_moves_to_that_customer(shop, api):
    guest = {**ORDER, "email": None, "customer": None, "billing_address": None}
    _post(shop, "orders/create", guest, "w-50")
    [order] = _orders(api)
    guest_id = order["customer_id"]
    assert api.get(f"/api/v1/customers/{guest_id}").json()["aggregates"]["orders_count"] == 1
    _post(shop, "orders/updated", ORDER, "w-51")
    [order] = _orders(api)
    assert order["customer_id"] != guest_id
    owner = api.get(f"/api/v1/customers/{order['customer_id']}").json()
    assert (owner["email"], owner["aggregates"]["orders_count"]) == (
        "bob.norman@mail.example.com", 1)
    assert api.get(f"/api/v1/customers/{guest_id}").json()["aggregates"]["orders_count"] == 0


def _refund(refund_id: int, amount: str) -> dict[str, Any]:
    return {**REFUND, "id": refund_id, "transactions": [
        {"id": refund_id + 1, "amount": amount, "kind": "refund", "status": "success"}]}


def _totals(api, order: dict[str, Any]) -> tuple[int, float]:
    aggregates = api.get(f"/api/v1/customers/{order['customer_id']}").json()["aggregates"]
    return aggregates["orders_count"], aggregates["revenue_total"]


def test_a_late_restatement_without_refunds_leaves_a_refunded_order_refunded(shop, api):
    _post(shop, "orders/create", ORDER, "w-60")
    _post(shop, "refunds/create", _refund(600, "598.94"), "w-61")
    [order] = _orders(api)
    assert (order["status"], order["refunded"], order["net_store"]) == (
        "refunded", "598.94", "0.00")
    _post(shop, "orders/updated", ORDER, "w-62")  # sent before the refund, delivered after
    [order] = _orders(api)
    assert (order["status"], order["refunded"], order["net_store"]) == (
        "refunded", "598.94", "0.00")
    assert _totals(api, order) == (1, 0.0)


def test_a_refund_beyond_the_known_total_counts_in_full_once_the_total_grows(shop, api):
    _post(shop, "orders/create", {**ORDER, "total_price": "100.00"}, "w-70")
    _post(shop, "refunds/create", _refund(700, "150.00"), "w-71")  # after an order edit
    [order] = _orders(api)
    assert (order["status"], order["refunded"], order["net_store"]) == (
        "refunded", "100.00", "0.00")
    edited = {**ORDER, "total_price": "200.00", "financial_status": "partially_refunded",
              "refunds": [_refund(700, "150.00")]}
    _post(shop, "orders/updated", edited, "w-72")
    [order] = _orders(api)
    assert (order["status"], order["total"], order["refunded"], order["net_store"]) == (
        "paid", "200.00", "150.00", "50.00")
    assert _totals(api, order) == (1, 50.0)


def test_an_order_the_platform_calls_refunded_counts_as_an_order_without_revenue(shop, api):
    _post(shop, "orders/create", {**ORDER, "financial_status": "refunded"}, "w-80")
    [order] = _orders(api)
    assert (order["status"], order["total"], order["refunded"], order["net_store"]) == (
        "refunded", "598.94", "0.00", "0.00")
    assert _totals(api, order) == (1, 0.0)
