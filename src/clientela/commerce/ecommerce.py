"""Segment's e-commerce spec (v2): which events change orders, carts and the catalog, and
how their properties are read.

Reading happens while a call is validated, so a bad amount is that call's rejection; what
comes out (`Change`) is plain data that the writer applies (`commerce.service`).
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from datetime import datetime
from functools import lru_cache
from typing import Any

import orjson

from clientela.core.errors import InvalidInput
from clientela.core.money import currency_code, to_minor

PRODUCT_VIEWED = "Product Viewed"
PRODUCT_ADDED = "Product Added"
PRODUCT_REMOVED = "Product Removed"
CART_VIEWED = "Cart Viewed"
CHECKOUT_STARTED = "Checkout Started"
ORDER_COMPLETED = "Order Completed"
ORDER_UPDATED = "Order Updated"
ORDER_CANCELLED = "Order Cancelled"
ORDER_REFUNDED = "Order Refunded"
CART_EVENTS = (PRODUCT_ADDED, PRODUCT_REMOVED, CART_VIEWED, CHECKOUT_STARTED)
ORDER_EVENTS = (ORDER_COMPLETED, ORDER_UPDATED, ORDER_CANCELLED, ORDER_REFUNDED)
COMMERCE_EVENTS = (PRODUCT_VIEWED, *CART_EVENTS, *ORDER_EVENTS)
_NEED_ORDER_ID = (ORDER_UPDATED, ORDER_CANCELLED, ORDER_REFUNDED)
_ONE_PRODUCT = (PRODUCT_VIEWED, PRODUCT_ADDED, PRODUCT_REMOVED)
# Statuses an order event may state; cancellations and refunds have their own events.
_STATED_STATUSES = ("placed", "paid", "fulfilled")
_AMOUNTS = ("subtotal", "discount", "shipping", "tax")
MAX_LINES = 1000
MAX_QUANTITY = 1_000_000


@dataclass(frozen=True, slots=True)
class Line:
    """A product as an event names it, with the quantity and unit price in that event."""

    product_id: str | None = None
    sku: str | None = None
    name: str | None = None
    category: str | None = None
    brand: str | None = None
    quantity: int = 1
    price_cents: int | None = None
    url: str | None = None
    image_url: str | None = None

    @property
    def key(self) -> str | None:
        """How the catalog knows the product: its product id, else its SKU."""
        return self.product_id or self.sku

    @property
    def cart_key(self) -> str:
        """How a cart tells its lines apart: the catalog key, else the name."""
        return self.key or f"name:{self.name}"


@dataclass(frozen=True, slots=True)
class Change:
    """What one e-commerce event says about an order, a cart or a product."""

    event: str
    currency: str | None = None  # as the event states it; amounts are read in this one
    order_id: str | None = None
    cart_id: str | None = None
    subtotal_cents: int | None = None
    discount_cents: int | None = None
    shipping_cents: int | None = None
    tax_cents: int | None = None
    total_cents: int | None = None
    coupon: str | None = None
    channel: str | None = None
    status: str | None = None
    reason: str | None = None
    lines: tuple[Line, ...] = ()

    def as_wire(self) -> list[Any]:
        """Plain values in field order (lines last), for JSON; `from_wire` reads them back."""
        return [*(getattr(self, name) for name in _CHANGE_FIELDS),
                [[getattr(line, name) for name in _LINE_FIELDS] for line in self.lines]]

    @classmethod
    def from_wire(cls, values: list[Any]) -> Change:
        *stated, lines = values
        change = dict(zip(_CHANGE_FIELDS, stated, strict=True))
        return cls(**change, lines=tuple(Line(*line) for line in lines))


_LINE_FIELDS = tuple(field.name for field in fields(Line))
_CHANGE_FIELDS = tuple(field.name for field in fields(Change) if field.name != "lines")


def change_of(event: str | None, properties: dict[str, Any], *, currency: str) -> Change | None:
    """The change an e-commerce event makes, or None for other events; amounts are read in
    `currency` (the store's) unless the event names its own. InvalidInput names the property
    that cannot be read. Each event is read for what it can change, no more."""
    if event not in COMMERCE_EVENTS:
        return None
    assert event is not None
    stated = None
    if properties.get("currency") not in (None, ""):
        stated = currency = currency_code(properties["currency"], "properties.currency")
    if event in _ONE_PRODUCT:
        # A product no one can name (no id, SKU or name) is stored as an event only.
        single = _line(properties, "properties", currency)
        return Change(event=event, currency=stated, cart_id=_cart_id(properties),
                      lines=(single,) if single.key or single.name else ())
    lines = _lines(properties, currency)
    total = _amount(properties, ("total", "revenue", "value"), currency)
    if event in CART_EVENTS:
        return Change(event=event, currency=stated, cart_id=_cart_id(properties),
                      total_cents=total, lines=lines)
    order_id = _text(properties, "order_id")
    if order_id is None and event in _NEED_ORDER_ID:
        raise InvalidInput(f"properties.order_id: required for {event}",
                           code="missing_order_id")
    if event == ORDER_COMPLETED and total is None and lines:
        total = sum((line.price_cents or 0) * line.quantity for line in lines)
    return Change(
        event=event, currency=stated, order_id=order_id, cart_id=_cart_id(properties),
        **{f"{name}_cents": _amount(properties, (name,), currency) for name in _AMOUNTS},
        total_cents=total, coupon=_text(properties, "coupon"),
        channel=_text(properties, "channel", limit=64)
        or _text(properties, "affiliation", limit=64),
        status=_status(properties), reason=_text(properties, "reason", limit=500), lines=lines)


def stated_change(event: str | None, properties: dict[str, Any], text: str, *,
                  currency: str) -> Change | None:
    """`change_of` for properties whose JSON text (`text`) is known. Short ones (a product
    viewed, added or removed: most e-commerce events, naming the same products again and
    again) are read once per text and remembered: the same text is the same properties."""
    if event not in COMMERCE_EVENTS:
        return None
    if len(text) > _REMEMBERED_CHARS:
        return change_of(event, properties, currency=currency)
    return _remembered_change(event, text, currency)


_REMEMBERED_CHARS = 2000  # with the cache's size, at most ~16 MB of texts remembered


@lru_cache(maxsize=8192)
def _remembered_change(event: str, text: str, currency: str) -> Change | None:
    return change_of(event, orjson.loads(text), currency=currency)


def _cart_id(properties: dict[str, Any]) -> str | None:
    return _text(properties, "cart_id") or _text(properties, "checkout_id")


def _text(values: dict[str, Any], key: str, where: str = "properties",
          limit: int = 255) -> str | None:
    """Text (or a number as text), cut to what its column holds."""
    value = values.get(key)
    if value.__class__ is str:  # the common case first
        return value[:limit] or None
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        raise InvalidInput(f"{where}.{key}: must be a string or a number", code="invalid_value")
    return str(value)[:limit]


def _amount(values: dict[str, Any], keys: tuple[str, ...], currency: str,
            where: str = "properties") -> int | None:
    """The first of `keys` present, in minor units."""
    for key in keys:
        if values.get(key) not in (None, ""):
            return to_minor(values[key], f"{where}.{key}", currency)
    return None


def _status(properties: dict[str, Any]) -> str | None:
    status = _text(properties, "status")
    if status is None:
        return None
    status = status.lower()
    if status not in _STATED_STATUSES:
        raise InvalidInput(f"properties.status: must be one of {', '.join(_STATED_STATUSES)}",
                           code="invalid_status")
    return status


def _lines(properties: dict[str, Any], currency: str) -> tuple[Line, ...]:
    products = properties.get("products")
    if products is None:
        return ()
    if not isinstance(products, list) or len(products) > MAX_LINES:
        raise InvalidInput(f"properties.products: must be a list of at most {MAX_LINES} "
                           "products", code="invalid_products")
    return tuple(_line(product, f"properties.products[{index}]", currency)
                 for index, product in enumerate(products))


def _line(product: Any, where: str, currency: str) -> Line:
    if not isinstance(product, dict):
        raise InvalidInput(f"{where}: must be an object", code="invalid_products")
    quantity = product.get("quantity", 1)
    if quantity is None:
        quantity = 1
    if isinstance(quantity, bool) or not isinstance(quantity, int) \
            or not 0 <= quantity <= MAX_QUANTITY:
        raise InvalidInput(f"{where}.quantity: must be a whole number from 0 to {MAX_QUANTITY}",
                           code="invalid_quantity")
    return Line(
        product_id=_text(product, "product_id", where), sku=_text(product, "sku", where),
        name=_text(product, "name", where, 500), category=_category(product, where),
        brand=_text(product, "brand", where), quantity=quantity,
        price_cents=_amount(product, ("price",), currency, where),
        url=_text(product, "url", where, 2000),
        image_url=_text(product, "image_url", where, 2000))


def _category(product: dict[str, Any], where: str) -> str | None:
    """The category path: a list (["Shoes", "Running"]) or text is kept as "Shoes > Running"."""
    value = product.get("category")
    if isinstance(value, list):
        parts = [_text({"category": part}, "category", where) for part in value]
        return " > ".join(part for part in parts if part)[:500] or None
    return _text(product, "category", where, 500)


@dataclass(frozen=True, slots=True)
class Happened:
    """An e-commerce event resolved to its customer (`origin_id`: the one it first reached)."""

    customer_id: int
    origin_id: int
    message_id: str
    at: datetime
    change: Change

    @property
    def order_key(self) -> str:
        """The order it is about; an Order Completed without order_id is one of its own."""
        return self.change.order_id or self.message_id
