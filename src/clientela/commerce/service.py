"""Orders, refunds and the order totals on customer profiles; e-commerce events folded into
the catalog (`catalog`), carts (`carts`) and orders; what merges do to them.

E-commerce events reach this module already read (`ecommerce.Change`) and resolved to a
customer; they are applied in call order. Orders are few next to page views and product
views, so they go through the ORM.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

from sqlalchemy import bindparam, delete, func, insert, select, update
from sqlalchemy.orm import Session

from clientela.commerce.carts import apply_carts
from clientela.commerce.catalog import CatalogMemory, observe_products
from clientela.commerce.early_events import (
    hold_early_events,
    in_order,
    keep_early_event,
    take_early_events,
    waits,
)
from clientela.commerce.ecommerce import (
    CART_EVENTS,
    ORDER_CANCELLED,
    ORDER_COMPLETED,
    ORDER_EVENTS,
    ORDER_REFUNDED,
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
from clientela.core.clock import utcnow
from clientela.core.money import Exchange, rescale
from clientela.customers import service as customers
from clientela.db import lock_name, next_ids


def apply_events(*, session: Session, happened: Sequence[Happened], exchange: Exchange,
                 catalog: CatalogMemory | None = None) -> None:
    """Fold e-commerce events into the catalog, orders and carts, then refresh the order
    totals of every customer whose orders changed."""
    if not happened:
        return
    products = observe_products(session=session, source=EVENTS_SOURCE, happened=happened,
                                currency=exchange.store_currency, memory=catalog)
    # One flush at the end: rows get their ids up front, so nothing needs one before.
    with session.no_autoflush:
        orders = _apply_orders(session, [h for h in happened if h.change.event in ORDER_EVENTS],
                               products, exchange)
        apply_carts(session, [h for h in happened if h.change.event in CART_EVENTS
                               or h.change.event == ORDER_COMPLETED], orders,
                     exchange.store_currency)
    session.flush()
    refresh_order_totals(session=session,
                         customer_ids={order.customer_id for order in orders.values()})


# --- orders --------------------------------------------------------------------------------

def _apply_orders(session: Session, happened: list[Happened], products: dict[str, int],
                  exchange: Exchange) -> dict[str, Order]:
    """The orders these events created or changed, by external id. An event about an order
    not known yet waits for it (`early_events`)."""
    if not happened:
        return {}
    keys = {item.order_key for item in happened}
    orders = _locked_orders(session, keys)
    # New orders are inserted first, on their own: items, refunds and carts point at them,
    # and the ORM knows no order between those tables.
    starts = _new_orders(session, happened, orders, exchange.store_currency)
    if starts:
        session.flush()
    early = {item.order_key for item in happened if waits(item)} - orders.keys()
    if starts or early:
        hold_early_events(session=session, keeping=bool(early))
    if early:  # another writer may have created some of them meanwhile
        orders.update(_locked_orders(session, early))
    fresh = {orders[key].id for key in starts}  # no stored items to replace
    pending: dict[int, list[OrderItem]] = {}  # items added by this write, per order
    touched: dict[str, Order] = {}
    kept = take_early_events(session=session, keys=set(starts))
    for item in in_order(happened, starts, kept):
        order = orders.get(item.order_key)
        if order is None:
            if waits(item):
                keep_early_event(session=session, item=item)
            continue
        _apply_order_event(session, order, item, products, exchange,
                           stored=order.id not in fresh, pending=pending)
        touched[item.order_key] = order
    return touched


def _locked_orders(session: Session, keys: set[str]) -> dict[str, Order]:
    """The events source's orders with these external ids, locked until commit (in id order,
    so writers cannot deadlock on them; NO KEY: rows that point at them can still be added)."""
    return {order.external_id: order
            for order in session.scalars(_EVENT_ORDERS, {"keys": sorted(keys)})}


# Built once: most writes hold an order, and building the statement cost more than running it.
_EVENT_ORDERS = (select(Order).where(Order.source == EVENTS_SOURCE,
                                     Order.external_id.in_(bindparam("keys", expanding=True)))
                 .order_by(Order.id).with_for_update(key_share=True)
                 .execution_options(populate_existing=True))


def _apply_order_event(session: Session, order: Order, item: Happened,
                       products: dict[str, int], exchange: Exchange, *, stored: bool,
                       pending: dict[int, list[OrderItem]]) -> None:
    change = item.change
    if change.event == ORDER_CANCELLED:
        order.status = "cancelled"
    elif change.event == ORDER_REFUNDED:
        _refund(session, order, item, exchange)
    else:
        _describe_order(session, order, _in_currency(change, order, exchange), products,
                        stored=stored, pending=pending)
    _settle(session, order, exchange)
    order.updated_at = utcnow()


def _new_orders(session: Session, happened: list[Happened], orders: dict[str, Order],
                store_currency: str) -> dict[str, int]:
    """Add the orders these events start (into `orders`); the index of each one's first
    event. A refund starts none, nor an event too vague to say what was bought."""
    starts: dict[str, int] = {}
    for index, item in enumerate(happened):
        key = item.order_key
        if key in orders or item.change.event == ORDER_REFUNDED \
                or item.change.total_cents is None:
            continue
        orders[key] = _new_order(session, item, key, store_currency)
        starts[key] = index
    ids = next_ids(session, "orders", len(starts))
    for key, order_id in zip(starts, ids, strict=True):
        orders[key].id = order_id
    return starts


def _new_order(session: Session, item: Happened, key: str, store_currency: str) -> Order:
    change = item.change
    order = Order(source=EVENTS_SOURCE, external_id=key, customer_id=item.customer_id,
                  origin_customer_id=item.origin_id, status=change.status or "placed",
                  currency=change.currency or store_currency,
                  total_cents=change.total_cents or 0,
                  discount_cents=0, shipping_cents=0, tax_cents=0, refunded_cents=0,
                  channel=change.channel or "web", placed_at=item.at, created_at=utcnow(),
                  updated_at=utcnow())
    session.add(order)
    return order


def _describe_order(session: Session, order: Order, change: Change, products: dict[str, int],
                    *, stored: bool, pending: dict[int, list[OrderItem]]) -> None:
    """What an Order Completed or Order Updated states about the order, over what it said;
    its products replace the items (stored ones, and those an earlier event of this write
    added). A cancelled order stays cancelled: no event reinstates one, and an Order
    Completed or Order Updated that arrives late must not undo the cancellation."""
    for name in ("subtotal_cents", "discount_cents", "shipping_cents", "tax_cents",
                 "total_cents", "coupon", "channel", "status", "currency"):
        value = getattr(change, name)
        if value is not None and not (name == "status" and order.status == "cancelled"):
            setattr(order, name, value)
    if change.lines:
        if order.id in pending:
            for item in pending.pop(order.id):
                session.expunge(item)
        elif stored:
            session.execute(delete(OrderItem).where(OrderItem.order_id == order.id)
                            .execution_options(synchronize_session=False))
        pending[order.id] = _items(order.id, change.lines, products)
        session.add_all(pending[order.id])


def _in_currency(change: Change, order: Order, exchange: Exchange) -> Change:
    """An event that names no currency speaks of the order's: its amounts were read in the
    store currency's minor units, so they are put in the order's."""
    if change.currency is not None or order.currency == exchange.store_currency:
        return change
    def fix(minor: int | None) -> int | None:
        return None if minor is None else rescale(minor, exchange.store_currency,
                                                  order.currency)
    return replace(change, currency=order.currency,
                   subtotal_cents=fix(change.subtotal_cents),
                   discount_cents=fix(change.discount_cents),
                   shipping_cents=fix(change.shipping_cents), tax_cents=fix(change.tax_cents),
                   total_cents=fix(change.total_cents),
                   lines=tuple(replace(line, price_cents=fix(line.price_cents))
                               for line in change.lines))



def _refund(session: Session, order: Order, item: Happened, exchange: Exchange) -> None:
    """A refund of the amount the event states, else of its products, else of the rest."""
    change = _in_currency(item.change, order, exchange)
    stated = change.total_cents
    if stated is None and change.lines:
        stated = sum((line.price_cents or 0) * line.quantity for line in change.lines)
    remaining = max(order.total_cents - order.refunded_cents, 0)
    _add_refund(session, order, RefundRecord(
        external_id=item.message_id, amount_cents=remaining if stated is None else stated,
        reason=change.reason, refunded_at=item.at))


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
    session.add_all(_items(order.id, record.lines, products))
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


def settlement(*, status: str, total_cents: int, refunds_cents: int, currency: str,
               exchange: Exchange) -> tuple[int, str, int | None]:
    """(refunded, status, net revenue in the store currency) of an order with this status
    and total whose refund rows add up to `refunds_cents` (see `_settle`)."""
    refunded = max(min(refunds_cents, total_cents), 0)
    if status != "cancelled" and 0 < total_cents <= refunded:
        status = "refunded"
    net = 0 if status == "refunded" else exchange.to_store(total_cents - refunded, currency)
    return refunded, status, net


def _items(order_id: int, lines: Iterable[Line], products: dict[str, int]) -> list[OrderItem]:
    return [OrderItem(order_id=order_id, product_id=products.get(line.key or ""), sku=line.sku,
                      name=line.name, category=line.category, brand=line.brand,
                      quantity=line.quantity, unit_price_cents=line.price_cents or 0)
            for line in lines]


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
