"""The catalog: products as events, platforms and imports describe them.

Product views are most of a store's events and mostly restate what the catalog holds, so
the catalog is written by the database itself (insert if missing, update if different),
and a writer remembers what it stored (`CatalogMemory`) to skip even that.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from clientela.commerce.ecommerce import (
    CART_VIEWED,
    ORDER_EVENTS,
    PRODUCT_ADDED,
    PRODUCT_VIEWED,
    Happened,
    Line,
)
from clientela.commerce.models import Product
from clientela.core.clock import utcnow
from clientela.core.types import db_time
from clientela.db import driver_executemany, driver_query_in

# Events whose products describe the catalog as it is now (an order line is a past price).
_DESCRIBES_CATALOG = (PRODUCT_VIEWED, PRODUCT_ADDED, CART_VIEWED)
_CATALOG = ("sku", "name", "category", "brand", "price_cents", "currency", "url", "image_url")


class CatalogMemory:
    """What one writer last stored for each product, for a while, so that a product view
    restating it skips the database. Changes are staged during a write and kept only once
    it commits (`keep`), or dropped if it does not (`forget`)."""

    def __init__(self, *, size: int = 100_000, seconds: float = 600.0) -> None:
        self.size, self.seconds = size, seconds
        self._known: OrderedDict[tuple[str, str], tuple[float, tuple[Any, ...]]] = OrderedDict()
        self._staged: dict[tuple[str, str], tuple[Any, ...]] = {}

    def restates(self, source: str, key: str, values: tuple[Any, ...]) -> bool:
        """Whether every value stated is the one stored (None: not stated, or not known)."""
        entry = self._known.get((source, key))
        if entry is None or entry[0] < time.monotonic():
            return False
        return values == entry[1] or all(value is None or value == known
                                         for value, known in zip(values, entry[1], strict=True))

    def stage(self, source: str, key: str, values: tuple[Any, ...]) -> None:
        self._staged[(source, key)] = values

    def keep(self) -> None:
        expires = time.monotonic() + self.seconds
        for product, values in self._staged.items():
            self._known[product] = (expires, values)
            self._known.move_to_end(product)
        while len(self._known) > self.size:
            self._known.popitem(last=False)
        self._staged.clear()

    def forget(self) -> None:
        self._staged.clear()


def observe_products(*, session: Session, source: str, happened: Iterable[Happened],
                     currency: str, memory: CatalogMemory | None = None) -> dict[str, int]:
    """Create the products these events name that the catalog lacks, refresh the ones a
    product view or cart describes, and return the ids of the products order lines name.

    Both writes are left to the database, which skips rows that exist or did not change:
    most views name a known product exactly as the catalog has it."""
    rows, describing, ordered = _observed(happened, currency)
    if not rows:
        return {}
    now = db_time(utcnow())
    if memory is not None:
        rows = {key: values for key, values in rows.items()
                if not memory.restates(source, key, values)}
        for key, values in rows.items():
            if key in describing:  # written below as stated; an order line only inserts
                memory.stage(source, key, values)
    driver_executemany(session, _ADD_PRODUCT, [(source, key, *values, now, now)
                                               for key, values in rows.items()])
    distinct = "IS NOT" if session.get_bind().dialect.name == "sqlite" else "IS DISTINCT FROM"
    driver_executemany(session, _REFRESH_PRODUCT.format(distinct=distinct), [
        (*values, now, source, key, *values)
        for key, values in rows.items() if key in describing])
    return {key: product_id for product_id, key in driver_query_in(
        session, _PRODUCT_IDS, ordered, before=[source])} if ordered else {}


def _observed(happened: Iterable[Happened], currency: str
              ) -> tuple[dict[str, tuple[Any, ...]], set[str], set[str]]:
    """(catalog values of each product named, by key; the keys a product view or cart
    describes; the keys order lines name). A product named twice gets every detail either
    names: among views and carts the newer wins where both state one, and what they state
    wins over an order line's, which is a past price (as it is across writes)."""
    described: dict[str, tuple[Any, ...]] = {}
    others: dict[str, tuple[Any, ...]] = {}
    ordered: set[str] = set()
    for item in happened:
        line_currency = item.change.currency or currency
        describes = item.change.event in _DESCRIBES_CATALOG
        for line in item.change.lines:
            if line.key is None:
                continue
            found = described if describes else others
            values = _catalog_values(line, line_currency)
            known = found.get(line.key)
            found[line.key] = values if known is None else _newer(known, values)
            if item.change.event in ORDER_EVENTS:
                ordered.add(line.key)
    rows = dict(others)
    for key, values in described.items():
        rows[key] = _newer(rows[key], values) if key in rows else values
    return rows, set(described), ordered


def _newer(known: tuple[Any, ...], values: tuple[Any, ...]) -> tuple[Any, ...]:
    """Per field, the newer value where it states one; the price and its currency go
    together (`_catalog_values` states both or neither)."""
    return tuple(known_value if value is None else value
                 for known_value, value in zip(known, values, strict=True))


def _catalog_values(line: Line, currency: str) -> tuple[Any, ...]:
    return (line.sku, line.name, line.category, line.brand, line.price_cents,
            currency if line.price_cents is not None else None, line.url, line.image_url)


_PRODUCT_IDS = "SELECT id, external_id FROM products WHERE source = ? AND external_id IN ({marks})"
_ADD_PRODUCT = (f"INSERT INTO products (source, external_id, {', '.join(_CATALOG)}, "
                "active, created_at, updated_at) VALUES (?, ?, "
                + "?, " * len(_CATALOG) + "TRUE, ?, ?) "
                "ON CONFLICT (source, external_id) DO NOTHING")
# A stated value replaces the stored one; the row is written only if one of them differs.
_REFRESH_PRODUCT = (
    "UPDATE products SET " + ", ".join(f"{name} = coalesce(?, {name})" for name in _CATALOG)
    + ", updated_at = ? WHERE source = ? AND external_id = ? AND ("
    + " OR ".join(f"{name} {{distinct}} coalesce(?, {name})" for name in _CATALOG) + ")")


@dataclass(frozen=True, slots=True)
class ProductRecord:
    """A product as a store platform describes it."""

    external_id: str
    line: Line
    currency: str
    stock: int | None = None
    active: bool = True


def record_product(*, session: Session, source: str, record: ProductRecord) -> int:
    """Create or update a product of `source`'s catalog; its id."""
    product = session.scalar(select(Product).where(Product.source == source,
                                                   Product.external_id == record.external_id))
    now = utcnow()
    if product is None:
        product = Product(source=source, external_id=record.external_id, created_at=now)
        session.add(product)
    values = dict(zip(_CATALOG, _catalog_values(record.line, record.currency), strict=True))
    for name, value in values.items():
        setattr(product, name, value)
    product.stock, product.active, product.updated_at = record.stock, record.active, now
    session.flush()
    return product.id
