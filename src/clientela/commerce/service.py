"""Orders, refunds and the order totals on customer profiles; e-commerce events folded into
the catalog (`catalog`), carts (`carts`) and orders; what merges do to them.

E-commerce events reach this module already read (`ecommerce.Change`) and resolved to a
customer; they are applied in call order. Orders are few next to page views and product
views, so they go through the ORM.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import bindparam, delete, func, insert, select, update
from sqlalchemy.orm import Session

from clientela.commerce.carts import apply_carts
from clientela.commerce.catalog import CatalogMemory, observe_products
from clientela.commerce.ecommerce import (
    CART_EVENTS,
    ORDER_COMPLETED,
    ORDER_EVENTS,
    Change,
    Happened,
    Line,
)
from clientela.commerce.models import (
    EVENTS_SOURCE,
    Cart,
    EarlyOrderEvent,
    Order,
    OrderItem,
    Refund,
    WebhookDelivery,
)
from clientela.commerce.orders import add_order_items, apply_order_events, settlement
from clientela.core.clock import utcnow
from clientela.core.money import Exchange
from clientela.customers import service as customers
from clientela.db import lock_name


def apply_events(*, session: Session, happened: Sequence[Happened], exchange: Exchange,
                 catalog: CatalogMemory | None = None) -> None:
    """Fold e-commerce events into the catalog, orders and carts, then refresh the order
    totals of every customer whose orders changed."""
    if not happened:
        return
    products = observe_products(session=session, source=EVENTS_SOURCE, happened=happened,
                                currency=exchange.store_currency, memory=catalog)
    orders = apply_order_events(
        session=session, happened=[h for h in happened if h.change.event in ORDER_EVENTS],
        products=products, exchange=exchange)
    apply_carts(session, [h for h in happened if h.change.event in CART_EVENTS
                           or h.change.event == ORDER_COMPLETED],
                {key: order.id for key, order in orders.items()}, exchange.store_currency)
    refresh_order_totals(session=session,
                         customer_ids={order.customer_id for order in orders.values()})


def refresh_order_totals(*, session: Session, customer_ids: Iterable[int]) -> None:
    """Recompute orders count, revenue (net of refunds, in the store currency) and first
    and last order time of these customers from their orders; cancelled orders count not."""
    ids = sorted(set(customer_ids))
    if not ids:
        return
    session.flush()
    session.execute(_REFRESH_TOTALS, {"ids": ids})


def _of_orders(column: Any, function: str) -> Any:
    aggregate = getattr(func, function)(column)
    if function in ("count", "sum"):
        aggregate = func.coalesce(aggregate, 0)
    return (select(aggregate).where(Order.customer_id == customers.CUSTOMERS.c.id,
                                    Order.status != "cancelled").scalar_subquery())


_REFRESH_TOTALS = (update(customers.CUSTOMERS)
                   .where(customers.CUSTOMERS.c.id.in_(bindparam("ids", expanding=True)))
                   .values(orders_count=_of_orders(Order.id, "count"),
                           revenue_cents=_of_orders(Order.net_store_cents, "sum"),
                           first_order_at=_of_orders(Order.placed_at, "min"),
                           last_order_at=_of_orders(Order.placed_at, "max")))


# --- merges --------------------------------------------------------------------------------

def move_customer(*, session: Session, from_id: int, to_id: int) -> None:
    """Give `to_id` the orders and carts of `from_id` (a merge), and refresh both totals."""
    for table in (Order, Cart, EarlyOrderEvent, WebhookDelivery):
        session.execute(update(table).where(table.customer_id == from_id)
                        .values(customer_id=to_id))
    refresh_order_totals(session=session, customer_ids=[from_id, to_id])


def give_back(*, session: Session, kept_id: int, dropped_id: int, origins: set[int]) -> None:
    """Undo `move_customer` for a split merge: what first belonged to one of `origins` (the
    dropped customer and those merged into it) goes back to `dropped_id`."""
    for table in (Order, Cart, EarlyOrderEvent):
        session.execute(update(table).where(table.customer_id == kept_id,
                                            table.origin_customer_id.in_(origins))
                        .values(customer_id=dropped_id))
    refresh_order_totals(session=session, customer_ids=[kept_id, dropped_id])


# --- orders and products from store platforms and imports ----------------------------------

@dataclass(frozen=True, slots=True)
class RefundRecord:
    external_id: str
    amount_cents: int
    reason: str | None
    refunded_at: datetime


@dataclass(frozen=True, slots=True)
class OrderRecord:
    """An order as a store platform or an import describes it, whole."""

    external_id: str
    status: str
    currency: str
    placed_at: datetime
    total_cents: int
    subtotal_cents: int | None = None
    discount_cents: int = 0
    shipping_cents: int = 0
    tax_cents: int = 0
    coupon: str | None = None
    channel: str = "web"
    lines: tuple[Line, ...] = ()
    refunds: tuple[RefundRecord, ...] = ()


def record_order(*, session: Session, source: str, record: OrderRecord, customer_id: int,
                 exchange: Exchange) -> Order:
    """Create or replace the order `record` describes, as placed by `customer_id` (refunds
    are added, never removed: a record that lists fewer leaves the others counting), and
    refresh the order totals of its customers before and after (a guest order that later
    names an e-mail moves to that customer)."""
    order = find_order(session=session, source=source, external_id=record.external_id)
    now = utcnow()
    if order is None:
        order = Order(source=source, external_id=record.external_id, customer_id=customer_id,
                      origin_customer_id=customer_id, refunded_cents=0, created_at=now)
        session.add(order)
    previous_owner, order.customer_id = order.customer_id, customer_id
    for name in ("status", "currency", "placed_at", "total_cents", "subtotal_cents",
                 "discount_cents", "shipping_cents", "tax_cents", "coupon", "channel"):
        setattr(order, name, getattr(record, name))
    order.updated_at = now
    session.flush()
    products = observe_products(session=session, source=source, currency=record.currency,
                                happened=[Happened(customer_id, customer_id, record.external_id,
                                                   record.placed_at,
                                                   Change(event=ORDER_COMPLETED,
                                                          lines=record.lines))])
    session.execute(delete(OrderItem).where(OrderItem.order_id == order.id)
                    .execution_options(synchronize_session=False))
    add_order_items(session=session, order_id=order.id, lines=record.lines, products=products)
    for refund in record.refunds:
        _add_refund(session, order, refund)
    _settle(session, order, exchange)
    refresh_order_totals(session=session, customer_ids={previous_owner, order.customer_id})
    return order


def add_refund(*, session: Session, order: Order, refund: RefundRecord,
               exchange: Exchange) -> bool:
    """Record a refund of the order (read with `find_order`, which locks it) once, by its
    external id, and refresh its customer's totals; whether it was new."""
    if not _add_refund(session, order, refund):
        return False
    _settle(session, order, exchange)
    order.updated_at = utcnow()
    refresh_order_totals(session=session, customer_ids=[order.customer_id])
    return True


def _add_refund(session: Session, order: Order, refund: RefundRecord) -> bool:
    """Store the refund once, for the amount it states: the order's refunded amount is capped
    at its total (`_settle`), not the refund, so a total that grows later counts it in full.
    Written at once (no flush of the session's other pending rows)."""
    known = session.scalar(select(Refund.id).where(Refund.order_id == order.id,
                                                   Refund.external_id == refund.external_id))
    if known is not None:
        return False
    session.execute(insert(Refund).values(
        order_id=order.id, external_id=refund.external_id, amount_cents=refund.amount_cents,
        reason=refund.reason, refunded_at=refund.refunded_at))
    return True


def _settle(session: Session, order: Order, exchange: Exchange) -> None:
    """Refunded amount, status and net revenue of the order from its total and its refund
    rows, whatever order they came in: refunded is what the rows add up to (summed in the
    database, under the order's lock), at most the total; an order refunded in full is
    `refunded` (a cancelled one stays cancelled); a refunded order brings no revenue, even
    when the platform says so without listing its refunds."""
    refunds = session.scalar(_REFUNDED, {"order_id": order.id})
    order.refunded_cents, order.status, order.net_store_cents = settlement(
        status=order.status, total_cents=order.total_cents, refunds_cents=int(refunds or 0),
        currency=order.currency, exchange=exchange)


_REFUNDED = (select(func.coalesce(func.sum(Refund.amount_cents), 0))
             .where(Refund.order_id == bindparam("order_id")))


def cancel_order(*, session: Session, order: Order) -> None:
    """The order (read with `find_order`, which locks it) stops counting in its customer's
    totals."""
    order.status = "cancelled"
    order.updated_at = utcnow()
    session.flush()
    refresh_order_totals(session=session, customer_ids=[order.customer_id])


def find_order(*, session: Session, source: str, external_id: str) -> Order | None:
    """The order, if there is one, locked until commit: what a write decides from it stays
    true (two refunds of one order take turns, each counting the other's)."""
    return session.scalar(select(Order).where(Order.source == source,
                                              Order.external_id == external_id)
                          .with_for_update(key_share=True)
                          .execution_options(populate_existing=True))


def lock_order(*, session: Session, source: str, external_id: str) -> None:
    """Hold the order, known or not yet, until commit, before reading it or deciding whose
    it is: two webhook deliveries of one new order in two workers take turns, the second
    finding the order and customer the first created, instead of both creating them. A lock
    by name, since there may be no row yet; one per transaction (see `db.lock_name`)."""
    lock_name(session, f"order:{source}:{external_id}")
