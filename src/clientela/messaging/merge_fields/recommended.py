"""The `recommended` merge field: best sellers of the category each customer bought most
(else viewed most) that the customer has not bought, topped up with the shop's best sellers."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from itertools import islice
from typing import Any

from sqlalchemy import Row, bindparam, func, select
from sqlalchemy.orm import Session
from sqlalchemy.sql import Executable

from clientela.commerce.ecommerce import PRODUCT_VIEWED
from clientela.commerce.models import EVENTS_SOURCE, Order, OrderItem, Product
from clientela.db import unindexed
from clientela.messaging.merge_fields.money import Money
from clientela.messaging.merge_fields.sql import run
from clientela.tracking.models import Event

RECOMMENDED = 4
BEST_SELLER_DAYS = 90


class BestSellers:
    """The shop's best sellers as of one moment. The units each product sold in the last
    BEST_SELLER_DAYS, by order line category, are read once (one statement for the whole
    sending run: ranking each category in SQL for each batch was half the time of a send)
    and each category is ranked from them when first asked."""

    def __init__(self, as_of: datetime) -> None:
        self.as_of = as_of
        self._sales: list[Row[Any]] | None = None
        self._ranked: dict[str | None, list[_Seller]] = {}

    def of(self, session: Session, category: str | None, skip: frozenset[int],
           count: int) -> list[_Seller]:
        """The first `count` best sellers of `category` and the ones below it ("Shoes"
        and "Shoes > Running"; None: of the whole shop), but `skip`."""
        if category not in self._ranked:
            self._ranked[category] = _rank(self._sold(session), category)
        return list(islice((row for row in self._ranked[category] if row.id not in skip),
                           count))

    def _sold(self, session: Session) -> list[Row[Any]]:
        if self._sales is None:
            self._sales = list(run(session, _SOLD, since=self.as_of - timedelta(
                days=BEST_SELLER_DAYS), now=self.as_of))
        return self._sales


def recommendations(session: Session, ids: list[int], money: Money, now: datetime,
                    best_sellers: BestSellers) -> dict[int, list[dict[str, Any]]]:
    """The `recommended` field of each of `ids` (at most IN_LIST_SIZE ids)."""
    bought = _bought(session, ids, now)
    viewed = _viewed_most(session, [key for key in ids if bought[key].favourite is None], now)
    return {customer_id: _recommended(session, bought[customer_id],
                                      bought[customer_id].favourite or viewed.get(customer_id),
                                      money, best_sellers)
            for customer_id in ids}


@dataclass(frozen=True)
class _Bought:
    """What a customer bought (orders not cancelled, up to now)."""

    products: frozenset[int]
    favourite: str | None  # the category of the most units, then the latest, then by name


_BOUGHT = (select(Order.customer_id, OrderItem.product_id, OrderItem.category,
                  func.sum(OrderItem.quantity).label("units"),
                  func.max(Order.placed_at).label("latest"))
           .join(Order, Order.id == OrderItem.order_id)
           .where(Order.customer_id.in_(bindparam("ids", expanding=True)),
                  Order.status != "cancelled", Order.placed_at <= bindparam("now"))
           .group_by(Order.customer_id, OrderItem.product_id, OrderItem.category))


def _bought(session: Session, ids: list[int], now: datetime) -> dict[int, _Bought]:
    rows: dict[int, list[Row[Any]]] = {}
    for row in run(session, _BOUGHT, ids=ids, now=now):
        rows.setdefault(row.customer_id, []).append(row)
    return {customer_id: _purchases(rows.get(customer_id, [])) for customer_id in ids}


def _purchases(rows: list[Row[Any]]) -> _Bought:
    units: dict[str, tuple[int, datetime]] = {}
    for row in rows:
        if row.category:
            total, latest = units.get(row.category, (0, row.latest))
            units[row.category] = (total + row.units, max(latest, row.latest))
    return _Bought(products=frozenset(row.product_id for row in rows if row.product_id),
                   favourite=_first(units))


def _first(weights: dict[str, tuple[int, datetime]]) -> str | None:
    ranked = sorted(weights.items(), key=lambda entry: (-entry[1][0], -entry[1][1].timestamp(),
                                                        entry[0]))
    return ranked[0][0] if ranked else None


def _viewed() -> Executable:
    """The categories of the products each customer viewed: the catalog's, else the one the
    event named; grouped outside, as PostgreSQL cannot tell that two `->>` are the same.
    Found by customer (the event name unindexed: SQLite read every view in the shop)."""
    properties = Event.properties
    key = func.coalesce(properties["product_id"].as_string(), properties["sku"].as_string())
    views = (select(Event.customer_id,
                    func.coalesce(Product.category, properties["category"].as_string())
                    .label("category"), Event.timestamp)
             .select_from(Event)
             .outerjoin(Product, (Product.source == EVENTS_SOURCE) & (Product.external_id == key))
             .where(Event.customer_id.in_(bindparam("ids", expanding=True)),
                    unindexed(Event.event) == PRODUCT_VIEWED,
                    Event.timestamp <= bindparam("now"))
             .subquery())
    return (select(views.c.customer_id, views.c.category, func.count().label("views"),
                   func.max(views.c.timestamp).label("latest"))
            .group_by(views.c.customer_id, views.c.category))


_VIEWED = _viewed()


def _viewed_most(session: Session, ids: list[int], now: datetime) -> dict[int, str]:
    """The category each of `ids` viewed most, for those who viewed any."""
    if not ids:
        return {}
    views: dict[int, dict[str, tuple[int, datetime]]] = {}
    for row in run(session, _VIEWED, ids=ids, now=now):
        if isinstance(row.category, str) and row.category:
            views.setdefault(row.customer_id, {})[row.category] = (row.views, row.latest)
    return {customer_id: category for customer_id, weights in views.items()
            if (category := _first(weights))}


def _recommended(session: Session, bought: _Bought, favourite: str | None, money: Money,
                 best_sellers: BestSellers) -> list[dict[str, Any]]:
    """Up to RECOMMENDED best sellers of the customer's favourite category the customer
    has not bought, then of the whole shop."""
    chosen: list[_Seller] = []
    for category in ((favourite, None) if favourite else (None,)):
        taken = bought.products | {row.id for row in chosen}
        chosen += best_sellers.of(session, category, taken, RECOMMENDED - len(chosen))
        if len(chosen) == RECOMMENDED:
            break
    return [{"name": row.name, "url": row.url, "image_url": row.image_url,
             "price": money(row.price_cents, row.currency), "brand": row.brand,
             "category": row.category} for row in chosen]


@dataclass(frozen=True, slots=True)
class _Seller:
    id: int
    name: str | None
    url: str | None
    image_url: str | None
    price_cents: int | None
    currency: str | None
    brand: str | None
    category: str | None


# Units sold per active product and order line category (orders not cancelled).
_SOLD = (select(Product.id, Product.name, Product.url, Product.image_url, Product.price_cents,
                Product.currency, Product.brand, Product.category,
                OrderItem.category.label("line_category"),
                func.sum(OrderItem.quantity).label("units"))
         .join(OrderItem, OrderItem.product_id == Product.id)
         .join(Order, Order.id == OrderItem.order_id)
         .where(Order.status != "cancelled", Product.active.is_(True),
                Order.placed_at > bindparam("since"), Order.placed_at <= bindparam("now"))
         .group_by(Product.id, OrderItem.category))


def _rank(sold: list[Row[Any]], category: str | None) -> list[_Seller]:
    """Products by units sold in lines of `category` or below it (None: in all lines),
    most first, then by id."""
    below = f"{category} > "
    units: dict[int, int] = {}
    products: dict[int, _Seller] = {}
    for row in sold:
        line = row.line_category
        if category is None or line == category or (line and line.startswith(below)):
            units[row.id] = units.get(row.id, 0) + row.units
            products[row.id] = _Seller(row.id, row.name, row.url, row.image_url,
                                       row.price_cents, row.currency, row.brand, row.category)
    return [products[key] for key in sorted(units, key=lambda key: (-units[key], key))]
