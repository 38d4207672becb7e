"""Orders written many at a time: CSV imports, the CDNOW log and the demo store.

Each order is upserted by its external id, as `service.record_order` does for one: its
fields and items are replaced, it belongs to the customer named now, its refunds are added
once each by their external id and never removed. The rows go through the driver a chunk at
a time, so a million orders take minutes, not hours.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from typing import Any

from sqlalchemy.orm import Session

from clientela.commerce.catalog import observe_products
from clientela.commerce.ecommerce import ORDER_COMPLETED, Change, Happened
from clientela.commerce.orders import settlement
from clientela.commerce.service import OrderRecord, RefundRecord, refresh_order_totals
from clientela.core.clock import utcnow
from clientela.core.money import Exchange
from clientela.core.types import db_time
from clientela.db import driver_executemany, driver_query_in, next_ids

CHUNK = 5000


@dataclass(frozen=True, slots=True)
class Placed:
    """An order and the customer who placed it."""

    record: OrderRecord
    customer_id: int


@dataclass(frozen=True, slots=True)
class Loaded:
    orders: int
    new: int


def load_orders(*, session: Session, source: str, orders: Sequence[Placed],
                exchange: Exchange, progress: Callable[[int], None] = lambda _done: None
                ) -> Loaded:
    """Create or replace these orders of `source`, then refresh the order totals of every
    customer who gained or lost one. An order listed twice is written as last listed, with
    the refunds of every listing (refunds are never removed)."""
    placed_orders = _last_listings(orders)
    new = 0
    owners: set[int] = set()
    for start in range(0, len(placed_orders), CHUNK):
        chunk = placed_orders[start:start + CHUNK]
        new += _load_chunk(session, source, chunk, exchange, owners)
        progress(len(chunk))
    ids = sorted(owners)
    for start in range(0, len(ids), CHUNK):
        refresh_order_totals(session=session, customer_ids=ids[start:start + CHUNK])
    return Loaded(orders=len(placed_orders), new=new)


def _last_listings(orders: Sequence[Placed]) -> list[Placed]:
    last: dict[str, Placed] = {}
    refunds: dict[str, dict[str, RefundRecord]] = {}
    for placed in orders:
        key = placed.record.external_id
        last[key] = placed
        for refund in placed.record.refunds:
            refunds.setdefault(key, {}).setdefault(refund.external_id, refund)
    return [replace(placed, record=replace(placed.record, refunds=tuple(
        refunds.get(key, {}).values()))) for key, placed in last.items()]


@dataclass(slots=True)
class _Stored:
    order_id: int
    customer_id: int
    refunds: dict[str, int]  # external id -> amount


def _load_chunk(session: Session, source: str, chunk: list[Placed], exchange: Exchange,
                owners: set[int]) -> int:
    """Write one chunk; the customers whose totals change are added to `owners`."""
    stored = _stored(session, source, [placed.record.external_id for placed in chunk])
    products = observe_products(session=session, source=source, currency=exchange.store_currency,
                                happened=[_as_happened(placed) for placed in chunk])
    fresh = [placed for placed in chunk if placed.record.external_id not in stored]
    ids = dict(zip((placed.record.external_id for placed in fresh),
                   next_ids(session, "orders", len(fresh)), strict=True))
    now = db_time(utcnow())
    inserts, updates, items, refunds = [], [], [], []
    for placed in chunk:
        record, owner = placed.record, placed.customer_id
        known = stored.get(record.external_id)
        order_id = known.order_id if known else ids[record.external_id]
        new_refunds = {refund.external_id: refund for refund in record.refunds
                       if known is None or refund.external_id not in known.refunds}
        refunds += [(order_id, refund.external_id, refund.amount_cents, refund.reason,
                     db_time(refund.refunded_at)) for refund in new_refunds.values()]
        refunds_cents = sum(known.refunds.values()) if known else 0
        values = _order_values(record, refunds_cents + sum(
            refund.amount_cents for refund in new_refunds.values()), exchange)
        if known is None:
            inserts.append((order_id, source, record.external_id, owner, owner, *values, now, now))
        else:
            updates.append((owner, *values, now, order_id))
            owners.add(known.customer_id)
        owners.add(owner)
        items += [(order_id, products.get(line.key or ""), line.sku, line.name, line.category,
                   line.brand, line.quantity, line.price_cents or 0) for line in record.lines]
    driver_executemany(session, _ADD_ORDER, inserts)
    driver_executemany(session, _CHANGE_ORDER, updates)
    driver_executemany(session, _DROP_ITEMS, [(known.order_id,) for known in stored.values()])
    driver_executemany(session, _ADD_ITEM, items)
    driver_executemany(session, _ADD_REFUND, refunds)
    return len(fresh)


def _stored(session: Session, source: str, external_ids: list[str]) -> dict[str, _Stored]:
    """The orders of `source` already stored under these external ids, with their refunds."""
    found = {external_id: _Stored(order_id, customer_id, {}) for order_id, external_id, customer_id
             in driver_query_in(session, _KNOWN_ORDERS, external_ids, before=[source])}
    by_id = {known.order_id: known for known in found.values()}
    for order_id, external_id, amount in driver_query_in(session, _KNOWN_REFUNDS, by_id):
        by_id[order_id].refunds[external_id] = amount
    return found


def _as_happened(placed: Placed) -> Happened:
    """The order as the catalog reads an Order Completed: products added if missing."""
    record = placed.record
    return Happened(placed.customer_id, placed.customer_id, record.external_id,
                    record.placed_at, Change(event=ORDER_COMPLETED, currency=record.currency,
                                             lines=record.lines))


def _order_values(record: OrderRecord, refunds_cents: int, exchange: Exchange
                  ) -> tuple[Any, ...]:
    """The columns `_ADD_ORDER` and `_CHANGE_ORDER` set from the record, in their order."""
    refunded, status, net = settlement(status=record.status, total_cents=record.total_cents,
                                       refunds_cents=refunds_cents, currency=record.currency,
                                       exchange=exchange)
    return (status, record.currency, record.subtotal_cents, record.discount_cents,
            record.shipping_cents, record.tax_cents, record.total_cents, refunded, net,
            record.coupon, record.channel, db_time(record.placed_at))


_ORDER_COLUMNS = ("status, currency, subtotal_cents, discount_cents, shipping_cents, tax_cents, "
                  "total_cents, refunded_cents, net_store_cents, coupon, channel, placed_at")
_KNOWN_ORDERS = ("SELECT id, external_id, customer_id FROM orders WHERE source = ? "
                 "AND external_id IN ({marks})")
_KNOWN_REFUNDS = ("SELECT order_id, external_id, amount_cents FROM refunds "
                  "WHERE order_id IN ({marks})")
_ADD_ORDER = (f"INSERT INTO orders (id, source, external_id, customer_id, origin_customer_id, "
              f"{_ORDER_COLUMNS}, created_at, updated_at) VALUES ("
              + "?, " * 18 + "?)")
_CHANGE_ORDER = ("UPDATE orders SET customer_id = ?, "
                 + ", ".join(f"{column.strip()} = ?" for column in _ORDER_COLUMNS.split(","))
                 + ", updated_at = ? WHERE id = ?")
_DROP_ITEMS = "DELETE FROM order_items WHERE order_id = ?"
_ADD_ITEM = ("INSERT INTO order_items (order_id, product_id, sku, name, category, brand, "
             "quantity, unit_price_cents) VALUES (?, ?, ?, ?, ?, ?, ?, ?)")
_ADD_REFUND = ("INSERT INTO refunds (order_id, external_id, amount_cents, reason, refunded_at) "
               "VALUES (?, ?, ?, ?, ?) ON CONFLICT (order_id, external_id) DO NOTHING")
