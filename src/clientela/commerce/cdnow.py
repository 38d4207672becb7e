"""The CDNOW data set (Fader & Hardie): 23,570 customers' CD purchases, 1997-1998, in USD.

It ships inside the PyPI package `lifetimes` (the `cdnow` extra); the files are read as
package resources, without importing `lifetimes.datasets`. Each CDNOW customer becomes a
customer with user id `cdnow-<id>`, each purchase row an order of source `import`.
"""

from __future__ import annotations

import importlib.resources
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy.orm import Session

from clientela.commerce.service import refresh_order_totals
from clientela.core.clock import utcnow
from clientela.core.errors import NotFound
from clientela.core.money import Exchange, to_minor
from clientela.core.types import db_time
from clientela.customers import service as customers
from clientela.db import driver_executemany, driver_query_in, next_ids

SOURCE = "import"
CURRENCY = "USD"
FILES = {False: "CDNOW_master.txt", True: "CDNOW_sample.txt"}
BATCH = 5000


@dataclass(frozen=True, slots=True)
class Purchase:
    customer: str  # the CDNOW id, as printed (zero-padded)
    number: int  # the purchase's place among its customer's rows, from 1
    placed_at: datetime
    cds: int
    cents: int

    @property
    def order_id(self) -> str:
        return f"cdnow-{self.customer}-{self.number}"


@dataclass(frozen=True, slots=True)
class Imported:
    customers: int
    new_customers: int
    orders: int
    new_orders: int


def purchases(*, sample: bool) -> list[Purchase]:
    """Every purchase row of the master file (or of the 2,357-customer sample)."""
    try:
        text = (importlib.resources.files("lifetimes") / "datasets" / FILES[sample]).read_text()
    except ModuleNotFoundError:
        raise NotFound("the CDNOW files come with the `lifetimes` package: pip install "
                       "'clientela[cdnow]'", code="cdnow_missing") from None
    found: list[Purchase] = []
    seen: dict[str, int] = {}
    for line in text.splitlines():
        fields = line.split()
        if not fields or not fields[0].isdigit():
            continue  # the header
        customer, day, cds, dollars = fields[0], *fields[-3:]
        seen[customer] = seen.get(customer, 0) + 1
        found.append(Purchase(customer=customer, number=seen[customer],
                              placed_at=datetime.strptime(day, "%Y%m%d").replace(tzinfo=UTC),
                              cds=int(cds), cents=to_minor(dollars, "dollar_value", CURRENCY)))
    return found


def load(*, session: Session, rows: list[Purchase], exchange: Exchange,
         progress: Callable[[int], None] = lambda _done: None) -> Imported:
    """Customers and orders for these purchases; what exists already is left as it is."""
    owners, new_customers = _customers(session, rows)
    new_orders = 0
    for start in range(0, len(rows), BATCH):
        chunk = rows[start:start + BATCH]
        new_orders += _orders(session, chunk, owners, exchange)
        progress(len(chunk))
    ids = sorted(owners.values())
    for start in range(0, len(ids), BATCH):
        refresh_order_totals(session=session, customer_ids=ids[start:start + BATCH])
    return Imported(customers=len(owners), new_customers=new_customers, orders=len(rows),
                    new_orders=new_orders)


def _customers(session: Session, rows: list[Purchase]) -> tuple[dict[str, int], int]:
    """Each CDNOW customer's id here (by user id `cdnow-<id>`), creating the missing ones."""
    first: dict[str, Purchase] = {}
    last: dict[str, datetime] = {}
    for row in rows:
        first.setdefault(row.customer, row)
        last[row.customer] = max(last.get(row.customer, row.placed_at), row.placed_at)
    owners = {value.removeprefix("cdnow-"): cid for value, cid in driver_query_in(
        session, _USER_OWNERS, [f"cdnow-{customer}" for customer in first])}
    missing = [customer for customer in first if customer not in owners]
    ids = customers.create_customers(session=session,
                                     seen_at=[first[customer].placed_at for customer in missing])
    owners.update(zip(missing, ids, strict=True))
    customers.add_identities(session=session, identities=[
        (owners[customer], "user_id", f"cdnow-{customer}") for customer in missing])
    driver_executemany(session, _LAST_SEEN, [(db_time(last[customer]), owners[customer])
                                             for customer in missing])
    return owners, len(missing)


def _orders(session: Session, rows: list[Purchase], owners: dict[str, int],
            exchange: Exchange) -> int:
    known = {external_id for (external_id,) in driver_query_in(
        session, _KNOWN_ORDERS, [row.order_id for row in rows], before=[SOURCE])}
    fresh = [row for row in rows if row.order_id not in known]
    now = db_time(utcnow())
    values = []
    for order_id, row in zip(next_ids(session, "orders", len(fresh)), fresh, strict=True):
        owner = owners[row.customer]
        values.append((order_id, SOURCE, row.order_id, owner, owner, CURRENCY, row.cents,
                       exchange.to_store(row.cents, CURRENCY), db_time(row.placed_at), now, now))
    driver_executemany(session, _ADD_ORDER, values)
    return len(fresh)


_USER_OWNERS = ("SELECT value, customer_id FROM identities WHERE kind = 'user_id' "
                "AND value IN ({marks})")
_KNOWN_ORDERS = "SELECT external_id FROM orders WHERE source = ? AND external_id IN ({marks})"
_LAST_SEEN = "UPDATE customers SET last_seen_at = ? WHERE id = ?"
_ADD_ORDER = ("INSERT INTO orders (id, source, external_id, customer_id, origin_customer_id, "
              "status, currency, discount_cents, shipping_cents, tax_cents, total_cents, "
              "refunded_cents, net_store_cents, channel, placed_at, created_at, updated_at) "
              "VALUES (?, ?, ?, ?, ?, 'paid', ?, 0, 0, 0, ?, 0, ?, 'web', ?, ?, ?)")
