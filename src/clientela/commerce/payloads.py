"""Reading store platforms' JSON payloads: amounts, ids, times, lists and texts, each with
an error that names the field."""

from __future__ import annotations

import base64
import hashlib
import hmac
from datetime import datetime
from typing import Any

from clientela.commerce.ecommerce import Line
from clientela.core.errors import InvalidInput
from clientela.core.money import to_minor
from clientela.tracking.schemas import parse_time


def object_at(values: dict[str, Any], key: str) -> dict[str, Any]:
    """The object under `key`, or an empty one."""
    found = values.get(key)
    return found if isinstance(found, dict) else {}


def money(values: dict[str, Any], key: str, currency: str, where: str = "") -> int | None:
    value = values.get(key)
    if value is None or value == "":
        return None
    return to_minor(value, f"{where}.{key}" if where else key, currency)


def identifier(values: dict[str, Any], key: str) -> str:
    value = values.get(key)
    if type(value) not in (int, str) or value == "":
        raise InvalidInput(f"{key}: required", code="invalid_webhook")
    return str(value)


def moment(values: dict[str, Any], key: str) -> datetime:
    moment = parse_time(values.get(key), key)
    if moment is None:
        raise InvalidInput(f"{key}: required", code="invalid_webhook")
    return moment


def items(values: dict[str, Any], key: str) -> list[Any]:
    found = values.get(key)
    if found is None:
        return []
    if not isinstance(found, list):
        raise InvalidInput(f"{key}: must be a list", code="invalid_webhook")
    return found


def text(value: Any) -> str | None:
    return str(value)[:500] if isinstance(value, str | int) and value != "" else None


def signed(body: bytes, signature: str | None, secret: str) -> bool:
    """Whether `signature` is the base64 HMAC-SHA256 of the raw body with `secret` (how
    Shopify and WooCommerce sign webhooks); compared in constant time."""
    if not signature:
        return False
    expected = base64.b64encode(hmac.new(secret.encode(), body, hashlib.sha256).digest())
    return hmac.compare_digest(expected, signature.strip().encode())


def order_line(item: Any, currency: str, where: str) -> Line:
    """An order's line item: product id, SKU, name (or title), vendor, quantity, price."""
    if not isinstance(item, dict):
        raise InvalidInput(f"{where}: must be an object", code="invalid_webhook")
    quantity = item.get("quantity", 1)
    if type(quantity) is not int or quantity < 0:
        raise InvalidInput(f"{where}.quantity: must be a whole number", code="invalid_webhook")
    product_id = item.get("product_id")
    return Line(product_id=str(product_id) if product_id else None, sku=text(item.get("sku")),
                name=text(item.get("name") or item.get("title")),
                brand=text(item.get("vendor")), quantity=quantity,
                price_cents=money(item, "price", currency, where))
