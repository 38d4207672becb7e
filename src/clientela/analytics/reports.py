"""Aggregate views of the shop: who buys how much and how often, revenue over time, new
and returning customers, cohorts, top products and categories, countries.

Purchases are orders neither cancelled nor refunded; money is in the store currency (net of
refunds; orders in a currency without a rate add nothing). Periods and cohorts are UTC
calendar days, ISO weeks (from Monday) and months.
"""

from __future__ import annotations

from datetime import date, datetime, time, timedelta
from typing import Any, Literal

import numpy as np
from sqlalchemy import ColumnElement, and_, case, func, literal_column, select
from sqlalchemy.orm import Session

from clientela.analytics.schemas import (
    Bucket,
    CohortRow,
    CountryRow,
    Overview,
    PeriodRow,
    TopRow,
)
from clientela.commerce import queries as commerce
from clientela.commerce.models import Order, OrderItem
from clientela.core.clock import as_utc
from clientela.core.money import Exchange, as_decimal
from clientela.customers.models import Customer

Interval = Literal["day", "week", "month"]
C = Customer.__table__.c
O = Order.__table__.c  # noqa: E741
I = OrderItem.__table__.c  # noqa: E741
_PURCHASE = O.status.not_in(("cancelled", "refunded"))
_ORDER_BUCKETS = ((1, 1), (2, 2), (3, 3), (4, 4), (5, 5), (6, 10), (11, 20), (21, None))


def _span(start: date | None, end: date | None, column: Any = O.placed_at
          ) -> list[ColumnElement[bool]]:
    """`column` (by default when the order was placed) from the start of `start` to the
    end of `end` (UTC days)."""
    found = []
    if start is not None:
        found.append(column >= as_utc(datetime.combine(start, time())))
    if end is not None:
        found.append(column < as_utc(datetime.combine(end + timedelta(days=1), time())))
    return found


def _money(cents: Any, currency: str) -> float:
    return float(as_decimal(int(cents or 0), currency))


def overview(*, session: Session, currency: str, start: date | None, end: date | None
             ) -> Overview:
    """Totals over the period: orders, revenue, average order value, buyers, how many of
    them were new (first purchase in the period) and the repeat-purchase rate (buyers with
    two purchases or more, among all buyers)."""
    per_buyer = (select(O.customer_id, func.count().label("orders"),
                        func.coalesce(func.sum(O.net_store_cents), 0).label("revenue"))
                 .where(_PURCHASE, *_span(start, end)).group_by(O.customer_id).subquery())
    orders, revenue, buyers, repeat = session.execute(select(
        func.coalesce(func.sum(per_buyer.c.orders), 0),
        func.coalesce(func.sum(per_buyer.c.revenue), 0), func.count(),
        func.coalesce(func.sum(case((per_buyer.c.orders > 1, 1), else_=0)), 0))).one()
    firsts = (select(O.customer_id, func.min(O.placed_at).label("first"))
              .where(_PURCHASE).group_by(O.customer_id).subquery())
    new = session.scalar(select(func.count()).select_from(firsts).where(
        *_span(start, end, firsts.c.first))) or 0
    customers = session.scalar(select(func.count()).where(C.merged_into_id.is_(None))) or 0
    return Overview(customers=customers, buyers=buyers, new_buyers=new,
                    returning_buyers=buyers - new, orders=orders,
                    revenue_total=_money(revenue, currency),
                    average_order_value=_money(revenue / orders, currency) if orders else None,
                    repeat_purchase_rate=round(repeat / buyers, 6) if buyers else None)


def period_of(dialect: str, column: Any, interval: Interval) -> Any:
    """The first day of `column`'s day, ISO week or month, as YYYY-MM-DD text."""
    if dialect == "sqlite":
        return {"day": func.date(column),
                "week": func.date(column, "weekday 0", "-6 days"),
                "month": func.strftime("%Y-%m-01", column)}[interval]
    return func.to_char(func.date_trunc(interval, column), literal_column("'YYYY-MM-DD'"))


def over_time(*, session: Session, currency: str, interval: Interval, start: date | None,
              end: date | None) -> list[PeriodRow]:
    """Per period: purchases, revenue, buyers, and of them new (their first purchase ever
    is in the period) and returning."""
    dialect = session.get_bind().dialect.name
    firsts = (select(O.customer_id, func.min(O.placed_at).label("first"))
              .where(_PURCHASE).group_by(O.customer_id).subquery())
    period = period_of(dialect, O.placed_at, interval)
    first_period = period_of(dialect, firsts.c.first, interval)
    rows = session.execute(
        select(period.label("period"), func.count(O.id),
               func.coalesce(func.sum(O.net_store_cents), 0),
               func.count(func.distinct(O.customer_id)),
               func.count(func.distinct(case((first_period == period, O.customer_id)))))
        .join(firsts, firsts.c.customer_id == O.customer_id)
        .where(_PURCHASE, *_span(start, end)).group_by(period).order_by(period))
    return [PeriodRow(period=date.fromisoformat(when), orders=orders,
                      revenue_total=_money(revenue, currency), buyers=buyers,
                      new_buyers=new, returning_buyers=buyers - new)
            for when, orders, revenue, buyers, new in rows]


def _edges(top: float) -> list[float]:
    """Readable bucket edges (1, 2, 5 × 10^k) from 0 up past `top`, at most 12 buckets."""
    edges = [0.0]
    step = 0
    while edges[-1] <= top and len(edges) < 12:
        edges.append(float((1, 2, 5)[step % 3] * 10 ** (step // 3 + 1)))
        step += 1
    return edges


def distribution(*, session: Session, currency: str, by: Literal["revenue", "orders"]
                 ) -> list[Bucket]:
    """Live customers with purchases by their total revenue (readable money buckets, the
    last one open) or by their number of orders."""
    live = and_(C.merged_into_id.is_(None), C.orders_count > 0)
    if by == "orders":
        by_count: dict[int, int] = dict(session.execute(
            select(C.orders_count, func.count()).where(live).group_by(C.orders_count))
            .tuples().all())
        return [Bucket(low=low, high=high, customers=sum(
            n for orders, n in by_count.items()
            if orders >= low and (high is None or orders <= high)))
            for low, high in _ORDER_BUCKETS]
    revenue = np.fromiter(session.scalars(select(C.revenue_cents).where(live)),
                          dtype=np.float64) / 100
    if not len(revenue):
        return []
    edges = _edges(float(np.percentile(revenue, 99)))
    counts, _ = np.histogram(np.clip(revenue, 0, edges[-1]), bins=[*edges, np.inf])
    return [Bucket(low=edges[index], high=edges[index + 1] if index + 1 < len(edges) else None,
                   customers=int(count)) for index, count in enumerate(counts[:len(edges)])]


def cohorts(*, session: Session, cohorts: int, months: int, until: datetime
            ) -> list[CohortRow]:
    """The last `cohorts` months' new buyers (by the month of their first purchase) and the
    share of each cohort that bought in each of the `months` months after (month 0, the
    first month itself, is always 1)."""
    log = commerce.purchase_log(session=session, until=until)
    if not len(log.customer):
        return []
    month = log.day.astype("datetime64[M]").astype(np.int64)
    ids, index = np.unique(log.customer, return_inverse=True)
    first = np.full(len(ids), np.iinfo(np.int64).max)
    np.minimum.at(first, index, month)
    pairs = np.unique(np.stack([index, month - first[index]]), axis=1)  # (buyer, offset)
    rows = []
    for start in np.unique(first)[-cohorts:]:
        size = int((first == start).sum())
        offsets = pairs[1][(first[pairs[0]] == start) & (pairs[1] <= months)]
        active = np.bincount(offsets, minlength=months + 1)
        rows.append(CohortRow(cohort=np.datetime64(int(start), "M").astype(date),
                              customers=size,
                              retention=[round(int(n) / size, 6) for n in active]))
    return rows


def top_products(*, session: Session, exchange: Exchange, by: Literal["product", "category"],
                 limit: int, start: date | None, end: date | None) -> list[TopRow]:
    """The products (by product id, else SKU, else name as sold) or categories (the top of
    the path) that sold the most, by revenue in the store currency; units and orders too."""
    key: Any = func.coalesce(I.sku, I.name) if by == "product" else _top_category(
        session.get_bind().dialect.name)
    rows = session.execute(
        select(key.label("key"), func.min(I.name), O.currency, func.sum(I.quantity),
               func.sum(I.quantity * I.unit_price_cents), func.count(func.distinct(O.id)))
        .join(Order, Order.id == I.order_id).where(_PURCHASE, key.is_not(None),
                                                   *_span(start, end))
        .group_by(key, O.currency))
    totals: dict[str, list[Any]] = {}
    for name, label, currency, units, cents, orders in rows:
        entry = totals.setdefault(name, [label if by == "product" else name, 0, 0, 0])
        entry[1] += units
        entry[2] += exchange.to_store(int(cents), currency) or 0
        entry[3] += orders
    ranked = sorted(totals.items(), key=lambda item: (-item[1][2], item[0]))[:limit]
    return [TopRow(key=key_value, name=name, units=units,
                   revenue_total=_money(cents, exchange.store_currency), orders=orders)
            for key_value, (name, units, cents, orders) in ranked]


def _top_category(dialect: str) -> Any:
    """The top of an item's category path ("Shoes" for "Shoes > Running")."""
    if dialect == "sqlite":
        cut = func.instr(I.category, " > ")
        return case((cut > 0, func.substr(I.category, 1, cut - 1)), else_=I.category)
    return func.split_part(I.category, " > ", 1)


def countries(*, session: Session, currency: str, limit: int) -> list[CountryRow]:
    """Live customers by country: how many, how many bought, their revenue."""
    rows = session.execute(
        select(C.country, func.count(), func.sum(case((C.orders_count > 0, 1), else_=0)),
               func.coalesce(func.sum(C.revenue_cents), 0))
        .where(C.merged_into_id.is_(None)).group_by(C.country)
        .order_by(func.count().desc(), C.country).limit(limit))
    return [CountryRow(country=country, customers=customers, buyers=buyers,
                       revenue_total=_money(revenue, currency))
            for country, customers, buyers, revenue in rows]

