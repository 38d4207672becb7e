"""WooCommerce webhooks, with payloads shaped as its /wc/v3 resources: signed, applied once
per change of a resource (the delivery id is not unique)."""

from __future__ import annotations

import base64
import hashlib
import hmac
from collections.abc import Iterator
from typing import Any

import orjson
import pytest
from fastapi.testclient import TestClient

from clientela.api.app import create_app

SECRET = "hush-woo-secret"

ORDER: dict[str, Any] = {
    "id": 727, "parent_id": 0, "number": "727", "order_key": "wc_order_58d2d042d1d",
    "created_via": "checkout", "version": "9.4.0", "status": "processing", "currency": "BRL",
    "date_created": "2026-03-22T13:28:02", "date_created_gmt": "2026-03-22T16:28:02",
    "date_modified": "2026-03-22T13:28:08", "date_modified_gmt": "2026-03-22T16:28:08",
    "discount_total": "0.00", "discount_tax": "0.00", "shipping_total": "10.00",
    "shipping_tax": "0.00", "cart_tax": "1.35", "total": "29.35", "total_tax": "1.35",
    "prices_include_tax": False, "customer_id": 0,
    "billing": {"first_name": "John", "last_name": "Doe", "company": "",
                "address_1": "969 Market", "city": "San Francisco", "state": "CA",
                "postcode": "94103", "country": "US", "email": "John.Doe@Example.com",
                "phone": "(555) 555-5555"},
    "payment_method": "bacs", "payment_method_title": "Direct Bank Transfer",
    "line_items": [
        {"id": 315, "name": "Woo Single #1", "product_id": 93, "variation_id": 0,
         "quantity": 2, "tax_class": "", "subtotal": "6.00", "total": "6.00",
         "sku": "", "price": 3},
        {"id": 316, "name": "Ship Your Idea &ndash; Color: Black, Size: M Test",
         "product_id": 22, "variation_id": 23, "quantity": 1, "subtotal": "12.00",
         "total": "12.00", "sku": "SYI-B-M", "price": 12}],
    "coupon_lines": [], "refunds": [],
}
PRODUCT = {"id": 794, "name": "Premium Quality", "slug": "premium-quality",
           "permalink": "https://example.com/product/premium-quality-19/",
           "date_modified_gmt": "2026-03-20T12:00:00", "type": "simple", "status": "publish",
           "sku": "PQ-1", "price": "21.99", "regular_price": "21.99", "stock_quantity": 7,
           "categories": [{"id": 9, "name": "Clothing", "slug": "clothing"},
                          {"id": 14, "name": "T-shirts", "slug": "t-shirts"}],
           "images": [{"id": 792, "src": "https://example.com/wp-content/T_2_front.jpg"}]}


@pytest.fixture
def woo(settings, engine) -> Iterator[TestClient]:
    tuned = settings.model_copy(update={"woocommerce_webhook_secret": SECRET})
    with TestClient(create_app(tuned, engine)) as client:
        yield client


def _post(client: TestClient, topic: str, payload: dict[str, Any], delivery: str = "1",
          secret: str = SECRET) -> Any:
    raw = orjson.dumps(payload)
    signature = base64.b64encode(hmac.new(secret.encode(), raw, hashlib.sha256).digest())
    return client.post("/integrations/woocommerce/webhooks", content=raw, headers={
        "Content-Type": "application/json", "X-WC-Webhook-Source": "https://example.com/",
        "X-WC-Webhook-Topic": topic, "X-WC-Webhook-Resource": topic.split(".")[0],
        "X-WC-Webhook-Event": topic.split(".")[1], "X-WC-Webhook-ID": "12",
        "X-WC-Webhook-Delivery-ID": delivery, "X-WC-Webhook-Signature": signature.decode()})


def _orders(api) -> list[dict[str, Any]]:
    return api.get("/api/v1/orders").json()["items"]


def test_the_creation_ping_is_answered_without_a_signature(woo):
    answer = woo.post("/integrations/woocommerce/webhooks", content=b"webhook_id=12",
                      headers={"Content-Type": "application/x-www-form-urlencoded"})
    assert answer.status_code == 200


def test_an_order_is_applied_once_per_change_and_its_refunds_follow(woo, api):
    assert _post(woo, "order.created", ORDER, delivery="5").json() == {
        "success": True, "duplicate": False}
    # Same change delivered again (with another delivery id): nothing changes.
    assert _post(woo, "order.created", ORDER, delivery="6").json()["duplicate"] is True
    [order] = _orders(api)
    assert (order["source"], order["external_id"], order["status"], order["total"],
            order["shipping"], order["tax"], order["placed_at"], order["channel"]) == (
        "woocommerce", "727", "paid", "29.35", "10.00", "1.35", "2026-03-22T16:28:02Z", "web")
    assert [(i["name"], i["sku"], i["quantity"], i["unit_price"]) for i in order["items"]] == [
        ("Woo Single #1", None, 2, "3.00"),
        ("Ship Your Idea &ndash; Color: Black, Size: M Test", "SYI-B-M", 1, "12.00")]
    customer = api.get(f"/api/v1/customers/{order['customer_id']}").json()
    assert (customer["email"], customer["first_name"], customer["city"], customer["country"]) \
        == ("john.doe@example.com", "John", "San Francisco", "US")

    refunded = {**ORDER, "date_modified_gmt": "2026-03-23T09:00:00",
                "refunds": [{"id": 726, "reason": "damaged", "total": "-10.00"}]}
    assert _post(woo, "order.updated", refunded).json()["duplicate"] is False
    [order] = _orders(api)
    assert (order["refunded"], order["net_store"], order["refunds"][0]["reason"]) == (
        "10.00", "19.35", "damaged")
    completed = {**refunded, "status": "completed", "date_modified_gmt": "2026-03-24T09:00:00"}
    _post(woo, "order.updated", completed)
    [order] = _orders(api)
    assert (order["status"], order["refunded"]) == ("fulfilled", "10.00")
    assert api.get(f"/api/v1/customers/{order['customer_id']}").json()["aggregates"][
        "revenue_total"] == 19.35
    _post(woo, "order.deleted", {"id": 727})
    [order] = _orders(api)
    assert order["status"] == "cancelled"
    assert api.get(f"/api/v1/customers/{order['customer_id']}").json()["aggregates"][
        "orders_count"] == 0


def test_customers_and_products(woo, api):
    customer = {"id": 25, "date_modified_gmt": "2026-03-01T10:00:00",
                "email": "Maria.Silva@Example.com", "first_name": "Maria", "last_name": "Silva",
                "role": "customer", "username": "maria.silva",
                "billing": {"first_name": "Maria", "last_name": "Silva", "city": "Curitiba",
                            "state": "PR", "country": "BR", "email": "maria.silva@example.com"}}
    _post(woo, "customer.created", customer)
    [found] = api.get("/api/v1/customers", params={"email": "maria.silva@example.com"}
                      ).json()["items"]
    assert (found["first_name"], found["city"], found["region"], found["country"]) == (
        "Maria", "Curitiba", "PR", "BR")
    _post(woo, "product.created", PRODUCT)
    _post(woo, "product.updated", {**PRODUCT, "price": "19.99", "status": "draft",
                                   "date_modified_gmt": "2026-03-21T12:00:00"})
    [product] = api.get("/api/v1/products").json()["items"]
    assert (product["source"], product["external_id"], product["name"], product["sku"],
            product["price"], product["category"], product["stock"], product["active"],
            product["url"]) == ("woocommerce", "794", "Premium Quality", "PQ-1", "19.99",
                                "Clothing > T-shirts", 7, False,
                                "https://example.com/product/premium-quality-19/")


def test_a_bad_signature_or_payload_changes_nothing(woo, api):
    assert _post(woo, "order.created", ORDER, secret="wrong").status_code == 401
    unsigned = woo.post("/integrations/woocommerce/webhooks", content=orjson.dumps(ORDER),
                        headers={"X-WC-Webhook-Topic": "order.created"})
    assert unsigned.status_code == 401
    bad = _post(woo, "order.created", {**ORDER, "status": "teleported"})
    assert bad.status_code == 400
    assert bad.json()["message"].startswith("status: must be one of pending, on-hold")
    assert _orders(api) == []


def test_without_a_secret_the_endpoint_is_not_there(client):
    assert client.post("/integrations/woocommerce/webhooks",
                       content=b"webhook_id=1").status_code == 404


def test_an_order_marked_refunded_counts_as_an_order_without_revenue(woo, api):
    # Marked refunded by hand: the refunds listed do not add up to the total.
    marked = {**ORDER, "status": "refunded",
              "refunds": [{"id": 726, "reason": "damaged", "total": "-10.00"}]}
    _post(woo, "order.created", marked)
    [order] = _orders(api)
    assert (order["status"], order["total"], order["refunded"], order["net_store"]) == (
        "refunded", "29.35", "10.00", "0.00")
    aggregates = api.get(f"/api/v1/customers/{order['customer_id']}").json()["aggregates"]
    assert (aggregates["orders_count"], aggregates["revenue_total"]) == (1, 0.0)
