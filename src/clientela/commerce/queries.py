"""Read-side SQL over products, orders and carts."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from itertools import chain

import numpy as np
from numpy.typing import NDArray
from sqlalchemy import func, or_, select
from sqlalchemy.orm import Session

from clientela.commerce.models import ORDER_STATUSES, Cart, Order, OrderItem, Product, Refund
from clientela.commerce.schemas import (
    CartOut,
    OrderItemOut,
    OrderOut,
    ProductDetail,
    ProductOut,
    ProductSales,
    RefundOut,
)
from clientela.core.errors import InvalidInput, NotFound
from clientela.core.money import as_decimal
from clientela.core.types import db_time
from clientela.db import driver_query


def products(*, session: Session, q: str | None, limit: int, after: int | None
             ) -> list[ProductOut]:
    """Products by id, those whose name, SKU, brand or category contain `q`."""
    query = select(Product).order_by(Product.id).limit(limit)
    if q:
        pattern = f"%{q.lower()}%"
        query = query.where(or_(*(func.lower(column).like(pattern) for column in (
            Product.name, Product.sku, Product.brand, Product.category, Product.external_id))))
    if after is not None:
        query = query.where(Product.id > after)
    return [_product(row) for row in session.scalars(query)]


def product(*, session: Session, product_id: int, top: int = 10) -> ProductDetail:
    """One product with what it sold and its best buyers."""
    row = session.get(Product, product_id)
    if row is None:
        raise NotFound(f"product {product_id}: no such product", code="product_not_found")
    sold = (select(Order.customer_id, Order.currency, OrderItem.order_id, OrderItem.quantity,
                   OrderItem.unit_price_cents)
            .join(Order, Order.id == OrderItem.order_id)
            .where(OrderItem.product_id == product_id, Order.status != "cancelled"))
    lines = session.execute(sold).all()
    revenue: dict[str, int] = {}
    units: dict[int, int] = {}
    for customer_id, currency, _order, quantity, price in lines:
        revenue[currency] = revenue.get(currency, 0) + quantity * price
        units[customer_id] = units.get(customer_id, 0) + quantity
    sales = ProductSales(orders=len({line[2] for line in lines}), units=sum(units.values()),
                         buyers=len(units),
                         revenue={code: as_decimal(cents, code) for code, cents in revenue.items()})
    ranked = sorted(units, key=lambda customer: (-units[customer], customer))[:top]
    return ProductDetail(**_product(row).model_dump(), sales=sales, top_buyers=ranked)


def orders(*, session: Session, customer_id: int | None, status: str | None, limit: int,
           before: tuple[datetime, int] | None, store_currency: str) -> list[OrderOut]:
    """Orders newest first (by when they were placed), after the keyset position `before`."""
    if status is not None and status not in ORDER_STATUSES:
        raise InvalidInput(f"status: must be one of {', '.join(ORDER_STATUSES)}",
                           code="invalid_status")
    query = select(Order).order_by(Order.placed_at.desc(), Order.id.desc()).limit(limit)
    if customer_id is not None:
        query = query.where(Order.customer_id == customer_id)
    if status is not None:
        query = query.where(Order.status == status)
    if before is not None:
        moment, order_id = before
        query = query.where((Order.placed_at < moment)
                            | ((Order.placed_at == moment) & (Order.id < order_id)))
    return _orders(session, list(session.scalars(query)), store_currency)


def order(*, session: Session, order_id: int, store_currency: str) -> OrderOut:
    row = session.get(Order, order_id)
    if row is None:
        raise NotFound(f"order {order_id}: no such order", code="order_not_found")
    return _orders(session, [row], store_currency)[0]


def carts(*, session: Session, customer_id: int) -> list[CartOut]:
    """The customer's carts, most recently changed first."""
    rows = session.scalars(select(Cart).where(Cart.customer_id == customer_id)
                           .order_by(Cart.updated_at.desc(), Cart.id.desc()))
    return [CartOut(id=cart.id, external_id=cart.external_id, customer_id=cart.customer_id,
                    status=cart.status, currency=cart.currency, items=cart.items or [],
                    quantity=cart.quantity,
                    value=as_decimal(cart.value_cents, cart.currency or "BRL"),
                    checkout_started_at=cart.checkout_started_at, order_id=cart.order_id,
                    updated_at=cart.updated_at, abandoned_at=cart.abandoned_at)
            for cart in rows]


def _product(row: Product) -> ProductOut:
    price = None if row.price_cents is None else as_decimal(row.price_cents,
                                                            row.currency or "BRL")
    return ProductOut(id=row.id, source=row.source, external_id=row.external_id, sku=row.sku,
                      name=row.name, category=row.category, brand=row.brand, price=price,
                      currency=row.currency, url=row.url, image_url=row.image_url,
                      stock=row.stock, active=row.active, updated_at=row.updated_at)


def _orders(session: Session, rows: list[Order], store_currency: str) -> list[OrderOut]:
    ids = [row.id for row in rows]
    items: dict[int, list[OrderItem]] = {order_id: [] for order_id in ids}
    refunds: dict[int, list[Refund]] = {order_id: [] for order_id in ids}
    if ids:
        for item in session.scalars(select(OrderItem).where(OrderItem.order_id.in_(ids))
                                    .order_by(OrderItem.id)):
            items[item.order_id].append(item)
        for refund in session.scalars(select(Refund).where(Refund.order_id.in_(ids))
                                      .order_by(Refund.id)):
            refunds[refund.order_id].append(refund)
    return [_order(row, items[row.id], refunds[row.id], store_currency) for row in rows]


def _order(row: Order, items: list[OrderItem], refunds: list[Refund], store_currency: str
           ) -> OrderOut:
    def money(cents: int) -> Decimal:
        return as_decimal(cents, row.currency)

    return OrderOut(
        id=row.id, source=row.source, external_id=row.external_id, customer_id=row.customer_id,
        status=row.status, currency=row.currency,
        subtotal=None if row.subtotal_cents is None else money(row.subtotal_cents),
        discount=money(row.discount_cents), shipping=money(row.shipping_cents),
        tax=money(row.tax_cents), total=money(row.total_cents), refunded=money(row.refunded_cents),
        net_store=None if row.net_store_cents is None
        else as_decimal(row.net_store_cents, store_currency),
        coupon=row.coupon, channel=row.channel, placed_at=row.placed_at,
        items=[OrderItemOut(product_id=item.product_id, sku=item.sku, name=item.name,
                            category=item.category, brand=item.brand, quantity=item.quantity,
                            unit_price=money(item.unit_price_cents)) for item in items],
        refunds=[RefundOut(external_id=refund.external_id, amount=money(refund.amount_cents),
                           reason=refund.reason, refunded_at=refund.refunded_at)
                 for refund in refunds])


@dataclass(frozen=True, slots=True)
class PurchaseLog:
    """Every purchase (an order neither cancelled nor refunded) up to a moment, as arrays:
    who bought, on which day (UTC), for how much (net, store-currency minor units; 0 for an
    order in a currency without a rate)."""

    customer: NDArray[np.int64]
    day: NDArray[np.datetime64]
    value: NDArray[np.int64]


def purchase_log(*, session: Session, until: datetime) -> PurchaseLog:
    """The purchases placed before `until`, for the models (BG/NBD, Gamma-Gamma, RFM)."""
    # Whole days since 1970-01-01, as numbers: reading 2M dates as text costs seconds.
    sqlite = session.get_bind().dialect.name == "sqlite"
    day = ("CAST(julianday(substr(placed_at, 1, 10)) - 2440587.5 AS INTEGER)" if sqlite
           else "(CAST(placed_at AS DATE) - DATE '1970-01-01')")  # both store naive UTC
    # Nearly every order is before `until`: on SQLite a plain scan ("+") beats the index.
    placed = "+placed_at" if sqlite else "placed_at"
    rows = driver_query(session, f"SELECT customer_id, {day}, coalesce(net_store_cents, 0) "
                        "FROM orders WHERE status NOT IN ('cancelled', 'refunded') "
                        f"AND {placed} < ?", [db_time(until)])
    table = np.fromiter(chain.from_iterable(rows), dtype=np.int64,
                        count=3 * len(rows)).reshape(len(rows), 3)
    return PurchaseLog(table[:, 0], table[:, 1].astype("datetime64[D]"), table[:, 2])
