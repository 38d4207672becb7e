"""The `recommended` merge field: best sellers of the category each customer bought most
(else viewed most) that the customer has not bought, topped up with the shop's best sellers."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import cache
from typing import Any

from sqlalchemy import Integer, Row, bindparam, func, or_, select
from sqlalchemy.orm import Session
from sqlalchemy.sql import Executable

from clientela.commerce.ecommerce import PRODUCT_VIEWED
from clientela.commerce.models import EVENTS_SOURCE, Order, OrderItem, Product
from clientela.messaging.merge_fields.money import Money
from clientela.messaging.merge_fields.sql import run
from clientela.tracking.models import Event

RECOMMENDED = 4
BEST_SELLER_DAYS = 90
# Best sellers ranked once per category and BestSellers, this deep: enough to leave
# RECOMMENDED after removing what one customer already bought, nearly always.
_RANKED = 40


class BestSellers:
    """The shop's best sellers as of one moment, each category ranked when first asked and
    kept: every recipient of a campaign asks the same question, and ranking a category
    reads every order of the last BEST_SELLER_DAYS (it was half the time of a send when
    each batch ranked them again)."""

    def __init__(self, as_of: datetime) -> None:
        self.as_of = as_of
        self._ranked: dict[str | None, list[_Seller]] = {}

    def of(self, session: Session, category: str | None, skip: frozenset[int]
           ) -> list[_Seller]:
        """The best sellers of `category` and the ones below it (None: of the shop), but
        `skip`."""
        ranked = self._ranked.get(category)
        if ranked is None:
            ranked = self._ranked[category] = _rank(session, category, self.as_of,
                                                    frozenset(), _RANKED)
        kept = [row for row in ranked if row.id not in skip]
        if len(kept) >= RECOMMENDED or len(ranked) < _RANKED:
            return kept
        return _rank(session, category, self.as_of, skip, RECOMMENDED)  # bought nearly all


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
    event named; grouped outside, as PostgreSQL cannot tell that two `->>` are the same."""
    properties = Event.properties
    key = func.coalesce(properties["product_id"].as_string(), properties["sku"].as_string())
    views = (select(Event.customer_id,
                    func.coalesce(Product.category, properties["category"].as_string())
                    .label("category"), Event.timestamp)
             .select_from(Event)
             .outerjoin(Product, (Product.source == EVENTS_SOURCE) & (Product.external_id == key))
             .where(Event.customer_id.in_(bindparam("ids", expanding=True)),
                    Event.event == PRODUCT_VIEWED, Event.timestamp <= bindparam("now"))
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
        chosen += best_sellers.of(session, category, taken)[:RECOMMENDED - len(chosen)]
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


def _rank(session: Session, category: str | None, now: datetime, skip: frozenset[int],
          limit: int) -> list[_Seller]:
    params: dict[str, Any] = {"since": now - timedelta(days=BEST_SELLER_DAYS), "now": now,
                              "limit": limit, "category": category, "skip": sorted(skip)}
    if category is not None:
        escaped = category.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        params["below"] = escaped + " > %"
    query = _ranking(category is not None, bool(skip))
    return [_Seller(**row._asdict()) for row in run(session, query, **params)]


@cache
def _ranking(of_category: bool, skipping: bool) -> Executable:
    units = func.sum(OrderItem.quantity)
    query = (select(Product.id, Product.name, Product.url, Product.image_url,
                    Product.price_cents, Product.currency, Product.brand, Product.category)
             .join(OrderItem, OrderItem.product_id == Product.id)
             .join(Order, Order.id == OrderItem.order_id)
             .where(Order.status != "cancelled", Product.active.is_(True),
                    Order.placed_at > bindparam("since"), Order.placed_at <= bindparam("now"))
             .group_by(Product.id).order_by(units.desc(), Product.id)
             .limit(bindparam("limit", type_=Integer)))
    if of_category:  # the category or one below it ("Shoes > Running")
        query = query.where(or_(OrderItem.category == bindparam("category"),
                                OrderItem.category.like(bindparam("below"), escape="\\")))
    if skipping:
        query = query.where(Product.id.not_in(bindparam("skip", expanding=True)))
    return query
