"""Merging two customers into one, and splitting a recorded merge apart again.

The customers domain moves its own rows (`customers.merging`) and commerce its orders and
carts; this module adds what the event store owns, the events, and recomputes the event
aggregates both customers show.
"""

from __future__ import annotations

from sqlalchemy import and_, or_, select, update
from sqlalchemy.orm import Session

from clientela.commerce import service as commerce
from clientela.core.errors import InvalidInput
from clientela.customers import merging as customer_merging
from clientela.customers import service as customers
from clientela.customers.models import Customer, CustomerMerge, Identity
from clientela.tracking import queries
from clientela.tracking.models import Event


def merge_customers(*, session: Session, first: int, second: int, reason: str,
                    default_region: str, standing_ok: bool = True) -> CustomerMerge:
    """Move everything the newer customer owns onto the older one and record why.
    Merging two customers already merged this way answers the standing merge (or, with
    `standing_ok=False`, raises CustomerMoved: the caller read them before that merge)."""
    if first == second:
        raise InvalidInput("customer_id: cannot merge a customer with itself", code="same_customer")
    keep_id, drop_id = min(first, second), max(first, second)
    customer_merging.lock_rows(session=session, customer_ids=[keep_id, drop_id])
    standing = customer_merging.open_merge(session=session, kept_id=keep_id, dropped_id=drop_id)
    if standing is not None:
        if not standing_ok:
            raise customer_merging.CustomerMoved(f"customer {drop_id} was merged meanwhile")
        return standing
    keep = customers.get_customer(session=session, customer_id=keep_id)
    drop = customers.get_customer(session=session, customer_id=drop_id)
    snapshot = customer_merging.absorb(session=session, keep=keep, drop=drop,
                                       region=default_region)
    session.execute(update(Event).where(Event.customer_id == drop.id).values(customer_id=keep.id))
    commerce.move_customer(session=session, from_id=drop.id, to_id=keep.id)
    _recompute(session, [keep.id, drop.id])
    return customer_merging.record_merge(session=session, keep=keep.id, drop=drop.id,
                                         reason=reason, snapshot=snapshot)


def _recompute(session: Session, customer_ids: list[int]) -> None:
    for cid in customer_ids:
        customers.set_aggregates(session=session, customer_id=cid,
                                 values=queries.aggregates_from_events(session=session,
                                                                       customer_id=cid))


def unmerge(*, session: Session, merge_id: int, default_region: str) -> CustomerMerge:
    """Split a recorded merge: the dropped customer gets back what it brought, and the two
    are kept apart from then on."""
    record, keep, drop = customer_merging.splittable(session=session, merge_id=merge_id)
    absorbed = _absorbed_into(session, drop.id)
    customer_merging.release(session=session, record=record, keep=keep, drop=drop,
                             region=default_region)
    _restore_events(session, record, absorbed)
    commerce.give_back(session=session, kept_id=keep.id, dropped_id=drop.id, origins=absorbed)
    _recompute(session, [keep.id, drop.id])
    return record


def _absorbed_into(session: Session, customer_id: int) -> set[int]:
    """`customer_id` and every customer merged into it, directly or through others."""
    found, frontier = {customer_id}, [customer_id]
    while frontier:
        children = list(session.scalars(select(Customer.id)
                                        .where(Customer.merged_into_id.in_(frontier))))
        frontier = [child for child in children if child not in found]
        found.update(frontier)
    return found


def _restore_events(session: Session, record: CustomerMerge, absorbed: set[int]) -> None:
    """Events go back by the identity they name, else by the customer they first reached."""
    ids = {kind: [v for k, v in record.snapshot["identities"] if k == kind]
           for kind in ("user_id", "anonymous_id")}
    kept_users = list(session.scalars(select(Identity.value).where(
        Identity.customer_id == record.kept_id, Identity.kind == "user_id")))
    named_dropped = or_(
        Event.user_id.in_(ids["user_id"]),
        and_(Event.user_id.is_(None), Event.anonymous_id.in_(ids["anonymous_id"])),
    )
    first_reached = and_(Event.origin_customer_id.in_(absorbed),
                         or_(Event.user_id.is_(None), Event.user_id.not_in(kept_users)))
    session.execute(update(Event).where(Event.customer_id == record.kept_id,
                                        or_(named_dropped, first_reached))
                    .values(customer_id=record.dropped_id))
