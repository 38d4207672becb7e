"""Order events that came before their order: kept until an event starts the order, then
applied right after that event, as if they had come then.

Events arrive out of order (batches, retries), so an Order Refunded or Order Cancelled can
come before the Order Completed of its order. Keeping the event, rather than a placeholder
order, means nothing is shown or counted before an order is placed, and a refund of "the
rest" is of the order's real total.

Writers on PostgreSQL run side by side, so one could keep an event for an order while
another creates that order and looks for kept events before the first commits. The lock
`EARLY_EVENTS_LOCK` rules that out with one lock per transaction, however many orders it
writes: a writer that creates orders holds it shared while it takes their kept events; one
that keeps an event holds it exclusively and then looks again for the orders it is about to
wait for. Either the keeper commits first and the creator finds the kept event, or the
creator commits first and the keeper finds the order.
"""

from __future__ import annotations

from sqlalchemy import bindparam, delete, select
from sqlalchemy.orm import Session

from clientela.commerce.ecommerce import Change, Happened
from clientela.commerce.models import EarlyOrderEvent
from clientela.core.clock import utcnow
from clientela.db import lock_name

EARLY_EVENTS_LOCK = "commerce:early-order-events"


def hold_early_events(*, session: Session, keeping: bool) -> None:
    """Take the lock before taking kept events (shared) or before looking for the orders of
    events about to be kept (`keeping`: exclusive)."""
    lock_name(session, EARLY_EVENTS_LOCK, shared=not keeping)


def waits(item: Happened) -> bool:
    """Whether an event about an order not known yet can wait for it: one that names no
    order (an Order Completed too vague to start one) can never be claimed."""
    return item.change.order_id is not None


def take_early_events(*, session: Session, keys: set[str]) -> dict[str, list[Happened]]:
    """The events kept for these orders (which start now), oldest first; they stop waiting."""
    if not keys:
        return {}
    rows = session.scalars(_KEPT, {"keys": sorted(keys)}).all()
    early: dict[str, list[Happened]] = {}
    for row in rows:
        early.setdefault(row.order_external_id, []).append(Happened(
            row.customer_id, row.origin_customer_id, row.message_id, row.happened_at,
            Change.from_wire(row.change)))
    if rows:
        session.execute(delete(EarlyOrderEvent)
                        .where(EarlyOrderEvent.id.in_([row.id for row in rows]))
                        .execution_options(synchronize_session=False))
    return early


_KEPT = (select(EarlyOrderEvent)
         .where(EarlyOrderEvent.order_external_id.in_(bindparam("keys", expanding=True)))
         .order_by(EarlyOrderEvent.id))


def keep_early_event(*, session: Session, item: Happened) -> None:
    """Keep an event (one that `waits`) until its order starts."""
    session.add(EarlyOrderEvent(order_external_id=item.order_key, customer_id=item.customer_id,
                                origin_customer_id=item.origin_id, message_id=item.message_id,
                                happened_at=item.at, change=item.change.as_wire(),
                                received_at=utcnow()))


def in_order(happened: list[Happened], starts: dict[str, int],
             early: dict[str, list[Happened]]) -> list[Happened]:
    """The events in the order they apply: those that came before the event that starts
    their order (kept from earlier writes, then this write's) right after it."""
    ordered: list[Happened] = []
    for index, item in enumerate(happened):
        start = starts.get(item.order_key)
        if start is None or index > start:
            ordered.append(item)
        elif index < start:
            early.setdefault(item.order_key, []).append(item)
        else:
            ordered += [item, *early.get(item.order_key, [])]
    return ordered
