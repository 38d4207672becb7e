"""The `last_order` merge field: each customer's latest order that was not cancelled."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Row, bindparam, func, select
from sqlalchemy.orm import Session

from clientela.commerce.models import Order, OrderItem, Product
from clientela.messaging.merge_fields.money import Money, line
from clientela.messaging.merge_fields.sql import run

# Each customer's orders that were not cancelled, numbered from the latest.
_NUMBERED = (select(Order.id, func.row_number().over(
                 partition_by=Order.customer_id,
                 order_by=(Order.placed_at.desc(), Order.id.desc())).label("number"))
             .where(Order.customer_id.in_(bindparam("ids", expanding=True)),
                    Order.status != "cancelled")
             .subquery())
_LAST_ORDERS = (
    select(Order.customer_id, Order.id, Order.external_id, Order.status, Order.currency,
           Order.total_cents, Order.placed_at, Order.coupon, OrderItem.id.label("item_id"),
           func.coalesce(OrderItem.name, Product.name).label("name"), OrderItem.sku,
           OrderItem.quantity, OrderItem.unit_price_cents,
           func.coalesce(OrderItem.category, Product.category).label("category"),
           func.coalesce(OrderItem.brand, Product.brand).label("brand"),
           Product.url, Product.image_url)
    .select_from(_NUMBERED)
    .join(Order, Order.id == _NUMBERED.c.id)
    .outerjoin(OrderItem, OrderItem.order_id == Order.id)
    .outerjoin(Product, Product.id == OrderItem.product_id)
    .where(_NUMBERED.c.number == 1)
    .order_by(Order.id, OrderItem.id))


def last_orders(session: Session, ids: list[int], money: Money) -> dict[int, dict[str, Any]]:
    """The `last_order` field of each of `ids` that has one (at most IN_LIST_SIZE ids)."""
    rows: dict[int, list[Row[Any]]] = {}
    for row in run(session, _LAST_ORDERS, ids=ids):
        rows.setdefault(row.customer_id, []).append(row)
    return {customer_id: _last_order(lines, money) for customer_id, lines in rows.items()}


def _last_order(rows: list[Row[Any]], money: Money) -> dict[str, Any]:
    order = rows[0]
    items = [line(money, row.currency, name=row.name, sku=row.sku, quantity=row.quantity,
                  price_cents=row.unit_price_cents, category=row.category, brand=row.brand,
                  url=row.url, image_url=row.image_url)
             for row in rows if row.item_id is not None]
    return {"id": order.id, "number": order.external_id, "status": order.status,
            "placed_at": order.placed_at, "currency": order.currency, "coupon": order.coupon,
            "total": money(order.total_cents, order.currency),
            "total_amount": money.amount(order.total_cents, order.currency), "items": items}
