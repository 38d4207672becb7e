"""Merge fields: what a template knows about a customer, read from the database as plain
data (dicts, lists, text, numbers, dates), so that the sandbox sees no ORM object and no
method that could reach the database. A campaign reads them for a batch of recipients at
once: a fixed number of statements per IN_LIST_SIZE customers (`merge_fields`), not per
customer; one customer is a batch of one."""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session

from clientela.core.errors import NotFound
from clientela.messaging.merge_fields.carts import latest_carts
from clientela.messaging.merge_fields.customers import profiles
from clientela.messaging.merge_fields.money import Money
from clientela.messaging.merge_fields.orders import last_orders
from clientela.messaging.merge_fields.recommended import (
    BEST_SELLER_DAYS,
    RECOMMENDED,
    BestSellers,
    recommendations,
)
from clientela.messaging.merge_fields.sample import sample_context
from clientela.messaging.merge_fields.sql import in_lists

__all__ = ["BEST_SELLER_DAYS", "FIELDS", "RECOMMENDED", "BestSellers", "Money",
           "customer_context", "customer_contexts", "sample_context"]

FIELDS = frozenset({"customer", "last_order", "cart", "recommended"})


def customer_contexts(*, session: Session, customer_ids: Sequence[int], store_currency: str,
                      now: datetime, best_sellers: BestSellers | None = None,
                      fields: Collection[str] = FIELDS) -> dict[int, dict[str, Any]]:
    """The merge fields of each customer of `customer_ids`, in their order: `customer`,
    `last_order`, `cart`, `recommended`, or only those of them in `fields` (what the
    templates read: the others are not queried). An id with no customer is left out. A
    sender passes its `best_sellers` to every batch so that they are ranked once (else: as
    of `now`, for this call)."""
    money = Money(store_currency)
    best_sellers = best_sellers or BestSellers(as_of=now)
    found: dict[int, dict[str, Any]] = {}
    for ids in in_lists(customer_ids):
        found.update(_contexts(session, ids, money, now, best_sellers, FIELDS & set(fields)))
    return {customer_id: found[customer_id] for customer_id in customer_ids
            if customer_id in found}


def customer_context(*, session: Session, customer_id: int, store_currency: str,
                     now: datetime) -> dict[str, Any]:
    """The merge fields of one customer: `customer`, `last_order`, `cart`, `recommended`."""
    contexts = customer_contexts(session=session, customer_ids=[customer_id],
                                 store_currency=store_currency, now=now)
    if customer_id not in contexts:
        raise NotFound(f"customer {customer_id}: no such customer", code="customer_not_found")
    return contexts[customer_id]


def _contexts(session: Session, ids: list[int], money: Money, now: datetime,
              best_sellers: BestSellers, fields: frozenset[str]
              ) -> dict[int, dict[str, Any]]:
    """The merge fields of at most IN_LIST_SIZE customers: one statement per part (and per
    category `best_sellers` ranks for the first time); `customer` always, the others when
    in `fields`."""
    customers = profiles(session, ids)
    if not customers:
        return {}
    known = sorted(customers)
    contexts: dict[int, dict[str, Any]] = {key: {"customer": customers[key]} for key in known}
    if "last_order" in fields:
        _fill(contexts, "last_order", last_orders(session, known, money))
    if "cart" in fields:
        _fill(contexts, "cart", latest_carts(session, known, money))
    if "recommended" in fields:
        _fill(contexts, "recommended", recommendations(session, known, money, now,
                                                       best_sellers))
    return contexts


def _fill(contexts: dict[int, dict[str, Any]], name: str, values: Mapping[int, Any]) -> None:
    """Each customer's `name` field: its value, None when it has none."""
    for customer_id, context in contexts.items():
        context[name] = values.get(customer_id)
