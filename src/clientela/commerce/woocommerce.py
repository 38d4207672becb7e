"""WooCommerce webhooks: the signature, and how its REST resources (/wc/v3 orders,
customers, products) read as Clientela's orders, refunds, customers and products."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from clientela.commerce.catalog import ProductRecord
from clientela.commerce.ecommerce import Line
from clientela.commerce.payloads import (
    count,
    identifier,
    items,
    moment,
    money,
    object_at,
    order_line,
    text,
)
from clientela.commerce.service import OrderRecord, RefundRecord
from clientela.core.errors import InvalidInput
from clientela.core.money import currency_code

SOURCE = "woocommerce"
# WooCommerce order statuses in Clientela's words.
_STATUSES = {"pending": "placed", "on-hold": "placed", "failed": "placed", "draft": "placed",
             "checkout-draft": "placed", "processing": "paid", "completed": "fulfilled",
             "cancelled": "cancelled", "refunded": "refunded", "trash": "cancelled"}
_CHANNELS = {"checkout": "web", "store-api": "web", "admin": "phone", "rest-api": "web",
             "pos": "store"}


def is_ping(body: bytes) -> bool:
    """The unsigned form post WooCommerce sends when a webhook is created."""
    return body.startswith(b"webhook_id=") and body[11:].isdigit()


def delivery_key(topic: str, resource: dict[str, Any]) -> str:
    """What makes a delivery unique: the resource and when it was last changed (WooCommerce's
    delivery id is not unique)."""
    changed = resource.get("date_modified_gmt") or topic.rpartition(".")[2]
    return f"{topic.partition('.')[0]}:{identifier(resource, 'id')}:{changed}"


def order_record(order: dict[str, Any]) -> OrderRecord:
    """A /wc/v3 order as an order; its refunds come with it."""
    currency = currency_code(order.get("currency"), "currency")
    status = str(order.get("status") or "pending")
    if status not in _STATUSES:
        raise InvalidInput(f"status: must be one of {', '.join(_STATUSES)}",
                           code="invalid_webhook")
    coupons = [line for line in items(order, "coupon_lines") if isinstance(line, dict)]
    return OrderRecord(
        external_id=identifier(order, "id"), status=_STATUSES[status], currency=currency,
        placed_at=_gmt(order, "date_created_gmt"),
        total_cents=money(order, "total", currency) or 0,
        discount_cents=money(order, "discount_total", currency) or 0,
        shipping_cents=money(order, "shipping_total", currency) or 0,
        tax_cents=money(order, "total_tax", currency) or 0,
        coupon=text(coupons[0].get("code")) if coupons else None,
        channel=_CHANNELS.get(str(order.get("created_via") or "checkout"), "web"),
        lines=tuple(order_line(item, currency, f"line_items[{index}]")
                    for index, item in enumerate(items(order, "line_items"))),
        refunds=tuple(_refund(refund, currency, order, f"refunds[{index}]")
                      for index, refund in enumerate(items(order, "refunds"))))


def order_email(order: dict[str, Any]) -> str | None:
    email = object_at(order, "billing").get("email")
    return email if isinstance(email, str) and email else None


def profile_fields(resource: dict[str, Any]) -> dict[str, Any]:
    """Profile fields of a customer (or an order's billing address), those it states."""
    billing = object_at(resource, "billing")
    fields: dict[str, Any] = {}
    for key in ("email", "first_name", "last_name"):
        value = resource.get(key) or billing.get(key)
        if isinstance(value, str) and value:
            fields[key] = value
    for key, field in (("city", "city"), ("state", "region"), ("country", "country")):
        if isinstance(billing.get(key), str) and billing[key]:
            fields[field] = billing[key]
    return fields


def product_record(product: dict[str, Any], currency: str) -> ProductRecord:
    categories = [text(category.get("name")) for category in items(product, "categories")
                  if isinstance(category, dict)]
    images = [image for image in items(product, "images") if isinstance(image, dict)]
    stock = product.get("stock_quantity")
    return ProductRecord(
        external_id=identifier(product, "id"), currency=currency,
        line=Line(product_id=identifier(product, "id"), sku=text(product.get("sku")),
                  name=text(product.get("name"), 500),
                  category=" > ".join(name for name in categories if name) or None,
                  price_cents=money(product, "price", currency),
                  url=text(product.get("permalink"), 2000),
                  image_url=text(images[0].get("src"), 2000) if images else None),
        stock=count(stock),
        active=product.get("status", "publish") == "publish")


def _refund(refund: Any, currency: str, order: dict[str, Any], where: str) -> RefundRecord:
    """WooCommerce lists an order's refunds with negative totals."""
    if not isinstance(refund, dict):
        raise InvalidInput(f"{where}: must be an object", code="invalid_webhook")
    total = str(refund.get("total", "0")).strip().lstrip("-")
    return RefundRecord(external_id=identifier(refund, "id"),
                        amount_cents=money({"total": total}, "total", currency, where) or 0,
                        reason=text(refund.get("reason")),
                        refunded_at=_gmt(order, "date_modified_gmt"))


def _gmt(values: dict[str, Any], key: str) -> datetime:
    """WooCommerce's *_gmt times carry no offset: they are UTC, as `moment` reads them."""
    return moment(values, key)
