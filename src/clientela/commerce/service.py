"""Every change to the catalog, orders and carts, and the order totals on customer profiles.

E-commerce events reach this module already read (`ecommerce.Change`) and resolved to a
customer; they are applied in call order. Orders are few next to page views and product
views, so orders and carts go through the ORM; the catalog, touched by every product view,
is read and written through the driver in one query each way per write.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import bindparam, delete, func, select, update
from sqlalchemy.orm import Session

from clientela.commerce.ecommerce import (
    CART_EVENTS,
    CART_VIEWED,
    CHECKOUT_STARTED,
    ORDER_CANCELLED,
    ORDER_COMPLETED,
    ORDER_EVENTS,
    ORDER_REFUNDED,
    PRODUCT_ADDED,
    PRODUCT_REMOVED,
    PRODUCT_VIEWED,
    Change,
    Line,
)
from clientela.commerce.models import Cart, Order, OrderItem, Product, Refund
from clientela.core.clock import utcnow
from clientela.core.money import Exchange
from clientela.core.types import db_time
from clientela.customers import service as customers
from clientela.db import driver_executemany, driver_query_in, next_ids

EVENTS_SOURCE = "events"
# Events whose products describe the catalog as it is now (an order line is a past price).
_DESCRIBES_CATALOG = (PRODUCT_VIEWED, PRODUCT_ADDED, CART_VIEWED)
_CATALOG = ("sku", "name", "category", "brand", "price_cents", "currency", "url", "image_url")


@dataclass(frozen=True, slots=True)
class Happened:
    """An e-commerce event resolved to its customer (`origin_id`: the one it first reached)."""

    customer_id: int
    origin_id: int
    message_id: str
    at: datetime
    change: Change


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
        _apply_carts(session, [h for h in happened if h.change.event in CART_EVENTS
                               or h.change.event == ORDER_COMPLETED], orders,
                     exchange.store_currency)
    session.flush()
    refresh_order_totals(session=session,
                         customer_ids={order.customer_id for order in orders.values()})


# --- the catalog ---------------------------------------------------------------------------

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
        return all(value is None or value == known
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
    seen: dict[str, tuple[Line, str, bool]] = {}
    ordered: set[str] = set()
    for item in happened:
        describes = item.change.event in _DESCRIBES_CATALOG
        for line in item.change.lines:
            if line.key is None:
                continue
            if describes or line.key not in seen:
                seen[line.key] = (line, item.change.currency or currency, describes)
            if item.change.event in ORDER_EVENTS:
                ordered.add(line.key)
    if not seen:
        return {}
    now = db_time(utcnow())
    rows = {key: _catalog_values(line, line_currency)
            for key, (line, line_currency, _describes) in seen.items()}
    if memory is not None:
        rows = {key: values for key, values in rows.items()
                if not memory.restates(source, key, values)}
        for key, values in rows.items():
            if seen[key][2]:  # written below as stated; an order line only inserts if missing
                memory.stage(source, key, values)
    driver_executemany(session, _ADD_PRODUCT, [(source, key, *values, now, now)
                                               for key, values in rows.items()])
    distinct = "IS NOT" if session.get_bind().dialect.name == "sqlite" else "IS DISTINCT FROM"
    driver_executemany(session, _REFRESH_PRODUCT.format(distinct=distinct), [
        (*values, now, source, key, *values)
        for key, values in rows.items() if seen[key][2]])
    return {key: product_id for product_id, key in driver_query_in(
        session, _PRODUCT_IDS, ordered, before=[source])} if ordered else {}


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


# --- orders --------------------------------------------------------------------------------

def _apply_orders(session: Session, happened: list[Happened], products: dict[str, int],
                  exchange: Exchange) -> dict[str, Order]:
    """The orders these events created or changed, by external id."""
    if not happened:
        return {}
    keys = {_order_key(item) for item in happened}
    orders = {order.external_id: order for order in session.scalars(
        select(Order).where(Order.source == EVENTS_SOURCE, Order.external_id.in_(keys)))}
    # New orders are inserted first, on their own: items, refunds and carts point at them,
    # and the ORM knows no order between those tables.
    starts = _new_orders(session, happened, orders, exchange.store_currency)
    if starts:
        session.flush()
    fresh = {orders[key].id for key in starts}  # no items to replace yet
    touched: dict[str, Order] = {}
    for index, item in enumerate(happened):
        key = _order_key(item)
        order = orders.get(key)
        if order is None or index < starts.get(key, 0):
            continue  # before its order existed: nothing to change
        change = item.change
        if change.event == ORDER_CANCELLED:
            order.status = "cancelled"
        elif change.event == ORDER_REFUNDED:
            _refund(session, order, item, exchange)
        else:
            _describe_order(session, order, change, products, replace=order.id not in fresh)
        order.net_store_cents = exchange.to_store(order.total_cents - order.refunded_cents,
                                                  order.currency)
        order.updated_at = utcnow()
        touched[key] = order
    return touched


def _new_orders(session: Session, happened: list[Happened], orders: dict[str, Order],
                store_currency: str) -> dict[str, int]:
    """Add the orders these events start (into `orders`); the index of each one's first
    event. A refund starts none, nor an event too vague to say what was bought."""
    starts: dict[str, int] = {}
    for index, item in enumerate(happened):
        key = _order_key(item)
        if key in orders or item.change.event == ORDER_REFUNDED \
                or item.change.total_cents is None:
            continue
        orders[key] = _new_order(session, item, key, store_currency)
        starts[key] = index
    ids = next_ids(session, "orders", len(starts))
    for key, order_id in zip(starts, ids, strict=True):
        orders[key].id = order_id
    return starts


def _order_key(item: Happened) -> str:
    # An Order Completed without order_id is one order per event.
    return item.change.order_id or item.message_id


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


def _describe_order(session: Session, order: Order, change: Change,
                    products: dict[str, int], *, replace: bool) -> None:
    """What an Order Completed or Order Updated states about the order, over what it said."""
    for name in ("subtotal_cents", "discount_cents", "shipping_cents", "tax_cents",
                 "total_cents", "coupon", "channel", "status", "currency"):
        value = getattr(change, name)
        if value is not None:
            setattr(order, name, value)
    if change.lines:
        if replace:
            session.execute(delete(OrderItem).where(OrderItem.order_id == order.id)
                            .execution_options(synchronize_session=False))
        session.add_all(_items(order.id, change.lines, products))


def _refund(session: Session, order: Order, item: Happened, exchange: Exchange) -> None:
    """A refund of the amount the event states, else of its products, else of the rest."""
    change = item.change
    stated = change.total_cents
    if stated is None and change.lines:
        stated = sum((line.price_cents or 0) * line.quantity for line in change.lines)
    remaining = max(order.total_cents - order.refunded_cents, 0)
    add_refund(session=session, order=order, exchange=exchange, refund=RefundRecord(
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


# --- carts ---------------------------------------------------------------------------------

def _apply_carts(session: Session, happened: list[Happened], orders: dict[str, Order],
                 currency: str) -> None:
    if not happened:
        return
    carts = _CartBook(session, happened, currency)
    for item in happened:
        change = item.change
        if change.event == ORDER_COMPLETED:
            cart = carts.find(item)
            order = orders.get(_order_key(item))
            if cart is not None and order is not None and cart.status != "converted":
                cart.status, cart.order_id, cart.updated_at = "converted", order.id, item.at
            continue
        cart = carts.find(item) or carts.open(item)
        _change_items(cart, change)
        if change.event == CHECKOUT_STARTED:
            cart.checkout_started_at = item.at
        cart.status, cart.abandoned_at = "open", None
        cart.updated_at = max(cart.updated_at, item.at)
    session.flush()


class _CartBook:
    """The carts of one write, found by cart id or as their customer's cart without one."""

    def __init__(self, session: Session, happened: list[Happened], currency: str) -> None:
        self.session = session
        self.currency = currency
        ids = {item.change.cart_id for item in happened if item.change.cart_id}
        self.by_id = {cart.external_id: cart for cart in session.scalars(select(Cart).where(
            Cart.source == EVENTS_SOURCE, Cart.external_id.in_(ids)))} if ids else {}
        owners = {item.customer_id for item in happened if not item.change.cart_id}
        self.by_customer: dict[int, Cart] = {}
        if owners:
            for cart in session.scalars(select(Cart).where(
                    Cart.source == EVENTS_SOURCE, Cart.external_id.is_(None),
                    Cart.customer_id.in_(owners), Cart.status != "converted")
                    .order_by(Cart.updated_at)):
                self.by_customer[cart.customer_id] = cart  # the most recent one wins

    def find(self, item: Happened) -> Cart | None:
        if item.change.cart_id:
            return self.by_id.get(item.change.cart_id)
        return self.by_customer.get(item.customer_id)

    def open(self, item: Happened) -> Cart:
        cart = Cart(source=EVENTS_SOURCE, external_id=item.change.cart_id,
                    customer_id=item.customer_id, origin_customer_id=item.origin_id,
                    status="open", currency=item.change.currency or self.currency, items=[],
                    quantity=0,
                    value_cents=0, created_at=item.at, updated_at=item.at)
        self.session.add(cart)
        if item.change.cart_id:
            self.by_id[item.change.cart_id] = cart
        else:
            self.by_customer[item.customer_id] = cart
        return cart


def _change_items(cart: Cart, change: Change) -> None:
    items = [dict(line) for line in cart.items or []]
    if change.event in (PRODUCT_ADDED, PRODUCT_REMOVED):
        if not change.lines:
            return
        line = change.lines[0]
        found = next((entry for entry in items if entry.get("key") == line.cart_key), None)
        if change.event == PRODUCT_ADDED:
            if found is None:
                items.append({**_cart_line(line), "quantity": 0})
                found = items[-1]
            found.update({k: v for k, v in _cart_line(line).items()
                          if v is not None and k != "quantity"})
            found["quantity"] += line.quantity
        elif found is not None:
            found["quantity"] -= line.quantity
            if found["quantity"] <= 0:
                items.remove(found)
    elif change.lines:  # Cart Viewed, Checkout Started: the cart as the shop shows it
        items = [_cart_line(line) for line in change.lines]
    cart.items = items
    cart.currency = change.currency or cart.currency
    cart.quantity = sum(entry["quantity"] for entry in items)
    cart.value_cents = sum((entry.get("price_cents") or 0) * entry["quantity"]
                           for entry in items)


def _cart_line(line: Line) -> dict[str, Any]:
    return {"key": line.cart_key, "product_id": line.product_id, "sku": line.sku, "name": line.name,
            "category": line.category, "brand": line.brand, "quantity": line.quantity,
            "price_cents": line.price_cents, "url": line.url, "image_url": line.image_url}


def abandon_carts(*, session: Session, now: datetime, after_minutes: int) -> int:
    """Mark open carts with items and no change for `after_minutes` as abandoned; how many."""
    result = session.execute(update(Cart).where(
        Cart.status == "open", Cart.quantity > 0,
        Cart.updated_at < now - timedelta(minutes=after_minutes),
    ).values(status="abandoned", abandoned_at=now))
    return int(result.rowcount or 0)  # type: ignore[attr-defined]


# --- merges --------------------------------------------------------------------------------

def move_customer(*, session: Session, from_id: int, to_id: int) -> None:
    """Give `to_id` the orders and carts of `from_id` (a merge), and refresh both totals."""
    for table in (Order, Cart):
        session.execute(update(table).where(table.customer_id == from_id)
                        .values(customer_id=to_id))
    refresh_order_totals(session=session, customer_ids=[from_id, to_id])


def give_back(*, session: Session, kept_id: int, dropped_id: int, origins: set[int]) -> None:
    """Undo `move_customer` for a split merge: what first belonged to one of `origins` (the
    dropped customer and those merged into it) goes back to `dropped_id`."""
    for table in (Order, Cart):
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
    """Create or replace the order `record` describes (refunds are added, never removed),
    and refresh the order totals of its customer."""
    order = session.scalar(select(Order).where(Order.source == source,
                                               Order.external_id == record.external_id))
    now = utcnow()
    if order is None:
        order = Order(source=source, external_id=record.external_id, customer_id=customer_id,
                      origin_customer_id=customer_id, refunded_cents=0, created_at=now)
        session.add(order)
    previous_owner = order.customer_id
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
        add_refund(session=session, order=order, refund=refund, exchange=exchange)
    order.net_store_cents = exchange.to_store(order.total_cents - order.refunded_cents,
                                              order.currency)
    refresh_order_totals(session=session, customer_ids={previous_owner, order.customer_id})
    return order


def add_refund(*, session: Session, order: Order, refund: RefundRecord,
               exchange: Exchange) -> bool:
    """Record a refund of the order once (by its external id); whether it was new."""
    known = session.scalar(select(Refund.id).where(Refund.order_id == order.id,
                                                   Refund.external_id == refund.external_id))
    if known is not None:
        return False
    amount = min(refund.amount_cents, max(order.total_cents - order.refunded_cents, 0))
    session.add(Refund(order_id=order.id, external_id=refund.external_id, amount_cents=amount,
                       reason=refund.reason, refunded_at=refund.refunded_at))
    order.refunded_cents += amount
    if order.total_cents and order.refunded_cents >= order.total_cents:
        order.status = "refunded"
    order.net_store_cents = exchange.to_store(order.total_cents - order.refunded_cents,
                                              order.currency)
    session.flush()
    refresh_order_totals(session=session, customer_ids=[order.customer_id])
    return True


def _items(order_id: int, lines: Iterable[Line], products: dict[str, int]) -> list[OrderItem]:
    return [OrderItem(order_id=order_id, product_id=products.get(line.key or ""), sku=line.sku,
                      name=line.name, category=line.category, brand=line.brand,
                      quantity=line.quantity, unit_price_cents=line.price_cents or 0)
            for line in lines]


def cancel_order(*, session: Session, order: Order) -> None:
    """The order stops counting in its customer's totals."""
    order.status = "cancelled"
    order.updated_at = utcnow()
    session.flush()
    refresh_order_totals(session=session, customer_ids=[order.customer_id])


def find_order(*, session: Session, source: str, external_id: str) -> Order | None:
    return session.scalar(select(Order).where(Order.source == source,
                                              Order.external_id == external_id))


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
