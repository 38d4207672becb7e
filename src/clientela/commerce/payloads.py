"""Reading store platforms' JSON payloads: amounts, ids, times, lists and texts, each with
an error that names the field."""

from __future__ import annotations

import base64
import hashlib
import hmac
from datetime import datetime
from typing import Any

from clientela.commerce.ecommerce import MAX_QUANTITY, Line
from clientela.core.errors import InvalidInput
from clientela.core.money import to_minor
from clientela.tracking.schemas import parse_time

MAX_COUNT = 2**31 - 1


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
    if len(str(value)) > 255:
        raise InvalidInput(f"{key}: at most 255 characters", code="invalid_webhook")
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


def text(value: Any, limit: int = 255) -> str | None:
    """Text (or a number as text), cut to what its column holds."""
    return str(value)[:limit] if isinstance(value, str | int) and value != "" else None


def count(value: Any) -> int | None:
    """A stock or similar count that fits an integer column, else None."""
    return value if type(value) is int and abs(value) <= MAX_COUNT else None


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
    if type(quantity) is not int or not 0 <= quantity <= MAX_QUANTITY:
        raise InvalidInput(f"{where}.quantity: must be a whole number from 0 to {MAX_QUANTITY}",
                           code="invalid_webhook")
    product_id = item.get("product_id")
    return Line(product_id=str(product_id) if product_id else None, sku=text(item.get("sku")),
                name=text(item.get("name") or item.get("title"), 500),
                brand=text(item.get("vendor")), quantity=quantity,
                price_cents=money(item, "price", currency, where))
