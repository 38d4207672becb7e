"""Orders from e-commerce events, and the settlement rule every order follows.

Order events are a small share of a store's events, but each one used to cost an order's
worth of ORM work (objects, flushes, a query per order) on the path every ingestion commit
waits on. Here the orders of one write are read with one query, changed as plain values,
and written with one executemany per table: new orders, changed orders, their items and
their refunds.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from typing import Any

from sqlalchemy.orm import Session

from clientela.commerce.early_events import (
    hold_early_events,
    in_order,
    keep_early_event,
    take_early_events,
    waits,
)
from clientela.commerce.ecommerce import (
    ORDER_CANCELLED,
    ORDER_REFUNDED,
    Change,
    Happened,
    Line,
)
from clientela.commerce.models import EVENTS_SOURCE
from clientela.core.clock import utcnow
from clientela.core.money import Exchange, rescale
from clientela.core.types import db_time
from clientela.db import driver_executemany, driver_query_in, next_ids

# What an event can change on an order, in the order `_ORDER_VALUES` writes them.
_CHANGING = ("status", "currency", "subtotal_cents", "discount_cents", "shipping_cents",
             "tax_cents", "total_cents", "refunded_cents", "net_store_cents", "coupon",
             "channel")
# What an Order Completed or Order Updated may state, when it states it.
_STATED = ("subtotal_cents", "discount_cents", "shipping_cents", "tax_cents", "total_cents",
           "coupon", "channel", "status", "currency")


@dataclass(slots=True)
class EventOrder:
    """An order of the events source as one write reads and changes it."""

    id: int
    external_id: str
    customer_id: int
    origin_customer_id: int
    status: str
    currency: str
    subtotal_cents: int | None
    discount_cents: int
    shipping_cents: int
    tax_cents: int
    total_cents: int
    refunded_cents: int
    net_store_cents: int | None
    coupon: str | None
    channel: str
    placed_at: str | None = None  # set on orders this write creates (`new`)
    new: bool = False
    refunds_cents: int = 0  # what its refund rows add up to, this write's included
    refund_ids: set[str] = field(default_factory=set)
    added_refunds: list[tuple[Any, ...]] = field(default_factory=list)
    lines: tuple[Line, ...] | None = None  # its items, when this write replaced them


def settlement(*, status: str, total_cents: int, refunds_cents: int, currency: str,
               exchange: Exchange) -> tuple[int, str, int | None]:
    """(refunded, status, net revenue in the store currency) of an order with this status
    and total whose refund rows add up to `refunds_cents`: refunded is what the rows add up
    to, at most the total; an order refunded in full is `refunded` (a cancelled one stays
    cancelled); a refunded order brings no revenue."""
    refunded = max(min(refunds_cents, total_cents), 0)
    if status != "cancelled" and 0 < total_cents <= refunded:
        status = "refunded"
    net = 0 if status == "refunded" else exchange.to_store(total_cents - refunded, currency)
    return refunded, status, net


def apply_order_events(*, session: Session, happened: list[Happened],
                       products: dict[str, int], exchange: Exchange) -> dict[str, EventOrder]:
    """Fold order events (in call order) into their orders and write them; the orders they
    created or changed, by external id. An event about an order not known yet waits for it
    (`early_events`)."""
    if not happened:
        return {}
    orders = _locked_orders(session, {item.order_key for item in happened})
    starts = _new_orders(session, happened, orders, exchange.store_currency)
    early = {item.order_key for item in happened if waits(item)} - orders.keys()
    if starts or early:
        hold_early_events(session=session, keeping=bool(early))
    if early:  # another writer may have created some of them meanwhile
        orders.update(_locked_orders(session, early))
    kept = take_early_events(session=session, keys=set(starts))
    _read_refunds(session, [order for order in orders.values() if not order.new])
    touched: dict[str, EventOrder] = {}
    for item in in_order(happened, starts, kept):
        order = orders.get(item.order_key)
        if order is None:
            if waits(item):
                keep_early_event(session=session, item=item)
            continue
        _apply(order, item, exchange)
        touched[item.order_key] = order
    _write(session, list(touched.values()), products)
    return touched


def _locked_orders(session: Session, keys: set[str]) -> dict[str, EventOrder]:
    """The events source's orders with these external ids, locked until commit on
    PostgreSQL (in id order, so writers cannot deadlock on them; NO KEY: rows that point at
    them can still be added). SQLite's write lock already covers them."""
    lock = " FOR NO KEY UPDATE" if session.get_bind().dialect.name == "postgresql" else ""
    rows = driver_query_in(session, _ORDERS + lock, keys)
    return {row[1]: EventOrder(*row) for row in sorted(rows)}


_ORDERS = ("SELECT id, external_id, customer_id, origin_customer_id, " + ", ".join(_CHANGING)
           + f" FROM orders WHERE source = '{EVENTS_SOURCE}' AND external_id IN ({{marks}})"
           " ORDER BY id")


def _new_orders(session: Session, happened: list[Happened], orders: dict[str, EventOrder],
                store_currency: str) -> dict[str, int]:
    """Add the orders these events start (into `orders`); the index of each one's first
    event. A refund starts none, nor an event too vague to say what was bought."""
    starts: dict[str, int] = {}
    for index, item in enumerate(happened):
        key = item.order_key
        if key in orders or item.change.event == ORDER_REFUNDED \
                or item.change.total_cents is None:
            continue
        orders[key] = _new_order(item, key, store_currency)
        starts[key] = index
    for key, order_id in zip(starts, next_ids(session, "orders", len(starts)), strict=True):
        orders[key].id = order_id
    return starts


def _new_order(item: Happened, key: str, store_currency: str) -> EventOrder:
    change = item.change
    return EventOrder(
        id=0, external_id=key, customer_id=item.customer_id, origin_customer_id=item.origin_id,
        status=change.status or "placed", currency=change.currency or store_currency,
        subtotal_cents=None, discount_cents=0, shipping_cents=0, tax_cents=0,
        total_cents=change.total_cents or 0, refunded_cents=0, net_store_cents=None,
        coupon=None, channel=change.channel or "web", placed_at=db_time(item.at), new=True)


def _read_refunds(session: Session, orders: list[EventOrder]) -> None:
    """The refunds stored for these orders: their sum and external ids."""
    by_id = {order.id: order for order in orders}
    for order_id, external_id, amount in driver_query_in(session, _REFUNDS, by_id):
        by_id[order_id].refund_ids.add(external_id)
        by_id[order_id].refunds_cents += amount


_REFUNDS = "SELECT order_id, external_id, amount_cents FROM refunds WHERE order_id IN ({marks})"


def _apply(order: EventOrder, item: Happened, exchange: Exchange) -> None:
    change = item.change
    if change.event == ORDER_CANCELLED:
        order.status = "cancelled"
    elif change.event == ORDER_REFUNDED:
        _refund(order, item, exchange)
    else:
        _describe(order, _in_currency(change, order, exchange))
    order.refunded_cents, order.status, order.net_store_cents = settlement(
        status=order.status, total_cents=order.total_cents, refunds_cents=order.refunds_cents,
        currency=order.currency, exchange=exchange)


def _describe(order: EventOrder, change: Change) -> None:
    """What an Order Completed or Order Updated states about the order, over what it said;
    its products replace the items. A cancelled order stays cancelled: no event reinstates
    one, and an Order Completed or Order Updated that arrives late must not undo it."""
    for name in _STATED:
        value = getattr(change, name)
        if value is not None and not (name == "status" and order.status == "cancelled"):
            setattr(order, name, value)
    if change.lines:
        order.lines = change.lines


def _in_currency(change: Change, order: EventOrder, exchange: Exchange) -> Change:
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


def _refund(order: EventOrder, item: Happened, exchange: Exchange) -> None:
    """A refund of the amount the event states, else of its products, else of the rest;
    once per event (its messageId is the refund's external id)."""
    change = _in_currency(item.change, order, exchange)
    stated = change.total_cents
    if stated is None and change.lines:
        stated = sum((line.price_cents or 0) * line.quantity for line in change.lines)
    if item.message_id in order.refund_ids:
        return
    amount = max(order.total_cents - order.refunded_cents, 0) if stated is None else stated
    order.refund_ids.add(item.message_id)
    order.refunds_cents += amount
    order.added_refunds.append((order.id, item.message_id, amount, change.reason,
                                db_time(item.at)))


def _write(session: Session, orders: list[EventOrder], products: dict[str, int]) -> None:
    """New orders, then the changes to stored ones, then items and refunds (which point at
    orders)."""
    now = db_time(utcnow())
    driver_executemany(session, _INSERT_ORDER, [
        (order.id, order.external_id, order.customer_id, order.origin_customer_id,
         *_values(order), order.placed_at, now, now) for order in orders if order.new])
    driver_executemany(session, _UPDATE_ORDER, [(*_values(order), now, order.id)
                                                for order in orders if not order.new])
    driver_executemany(session, _DELETE_ITEMS, [(order.id,) for order in orders
                                                if order.lines is not None and not order.new])
    driver_executemany(session, _INSERT_ITEM, [
        item for order in orders if order.lines is not None
        for item in _item_rows(order.id, order.lines, products)])
    driver_executemany(session, _INSERT_REFUND, [refund for order in orders
                                                 for refund in order.added_refunds])


def _values(order: EventOrder) -> tuple[Any, ...]:
    return tuple(getattr(order, name) for name in _CHANGING)


def add_order_items(*, session: Session, order_id: int, lines: Iterable[Line],
                    products: dict[str, int]) -> None:
    """Store an order's lines as its items (`products`: product ids by catalog key)."""
    driver_executemany(session, _INSERT_ITEM, _item_rows(order_id, lines, products))


def _item_rows(order_id: int, lines: Iterable[Line], products: dict[str, int]
               ) -> list[tuple[Any, ...]]:
    return [(order_id, products.get(line.key or ""), line.sku, line.name, line.category,
             line.brand, line.quantity, line.price_cents or 0) for line in lines]


_INSERT_ORDER = ("INSERT INTO orders (id, source, external_id, customer_id, origin_customer_id, "
                 + ", ".join(_CHANGING) + ", placed_at, created_at, updated_at) VALUES "
                 f"(?, '{EVENTS_SOURCE}', ?, ?, ?, " + "?, " * len(_CHANGING) + "?, ?, ?)")
_UPDATE_ORDER = ("UPDATE orders SET " + ", ".join(f"{name} = ?" for name in _CHANGING)
                 + ", updated_at = ? WHERE id = ?")
_DELETE_ITEMS = "DELETE FROM order_items WHERE order_id = ?"
_INSERT_ITEM = ("INSERT INTO order_items (order_id, product_id, sku, name, category, brand, "
                "quantity, unit_price_cents) VALUES (?, ?, ?, ?, ?, ?, ?, ?)")
_INSERT_REFUND = ("INSERT INTO refunds (order_id, external_id, amount_cents, reason, "
                  "refunded_at) VALUES (?, ?, ?, ?, ?)")
