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

from clientela.commerce.bulk import Placed, load_orders
from clientela.commerce.service import OrderRecord
from clientela.core.errors import NotFound
from clientela.core.money import Exchange, to_minor
from clientela.core.types import db_time
from clientela.customers import service as customers
from clientela.db import driver_executemany

SOURCE = "import"
CURRENCY = "USD"
FILES = {False: "CDNOW_master.txt", True: "CDNOW_sample.txt"}


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
    """Customers and orders for these purchases (orders already loaded are restated)."""
    owners, new_customers = _customers(session, rows)
    loaded = load_orders(session=session, source=SOURCE, exchange=exchange, progress=progress,
                         orders=[Placed(_record(row), owners[row.customer]) for row in rows])
    return Imported(customers=len(owners), new_customers=new_customers, orders=loaded.orders,
                    new_orders=loaded.new)


def _record(row: Purchase) -> OrderRecord:
    return OrderRecord(external_id=row.order_id, status="paid", currency=CURRENCY,
                       placed_at=row.placed_at, total_cents=row.cents)


def _customers(session: Session, rows: list[Purchase]) -> tuple[dict[str, int], int]:
    """Each CDNOW customer's id here (by user id `cdnow-<id>`), creating the missing ones."""
    first: dict[str, Purchase] = {}
    last: dict[str, datetime] = {}
    for row in rows:
        first.setdefault(row.customer, row)
        last[row.customer] = max(last.get(row.customer, row.placed_at), row.placed_at)
    owners = {value.removeprefix("cdnow-"): cid for value, cid in customers.identity_owners(
        session=session, kind="user_id", values=[f"cdnow-{customer}" for customer in first]
    ).items()}
    missing = [customer for customer in first if customer not in owners]
    ids = customers.create_customers(session=session,
                                     seen_at=[first[customer].placed_at for customer in missing])
    owners.update(zip(missing, ids, strict=True))
    customers.add_identities(session=session, identities=[
        (owners[customer], "user_id", f"cdnow-{customer}") for customer in missing])
    driver_executemany(session, _LAST_SEEN, [(db_time(last[customer]), owners[customer])
                                             for customer in missing])
    return owners, len(missing)


_LAST_SEEN = "UPDATE customers SET last_seen_at = ? WHERE id = ?"
