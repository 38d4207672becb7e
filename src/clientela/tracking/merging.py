"""Merging two customers into one, and splitting a recorded merge apart again."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import and_, delete, or_, select, update
from sqlalchemy.orm import Session

from clientela.core.clock import utcnow
from clientela.core.errors import Conflict, InvalidInput, NotFound
from clientela.customers import service as customers
from clientela.customers.models import Customer, CustomerMerge, CustomerTag, Identity, TraitChange
from clientela.customers.traits import merge_traits
from clientela.tracking import queries
from clientela.tracking.models import Event


def merge_customers(*, session: Session, first: int, second: int, reason: str,
                    default_region: str) -> CustomerMerge:
    """Move everything the newer customer owns onto the older one and record why."""
    if first == second:
        raise InvalidInput("customer_id: cannot merge a customer with itself", code="same_customer")
    keep = customers.get_customer(session=session, customer_id=min(first, second))
    drop = customers.get_customer(session=session, customer_id=max(first, second))
    snapshot = _snapshot(session, keep, drop)
    session.execute(update(Event).where(Event.customer_id == drop.id).values(customer_id=keep.id))
    session.execute(update(Identity).where(Identity.customer_id == drop.id)
                    .values(customer_id=keep.id))
    customers.add_tags(session=session, customer_id=keep.id, tags=snapshot["dropped_tags"])
    session.execute(delete(CustomerTag).where(CustomerTag.customer_id == drop.id))
    session.execute(update(TraitChange).where(TraitChange.customer_id == drop.id)
                    .values(customer_id=keep.id))
    snapshot["merged_trait_change_ids"] = _merge_traits(session, keep, drop, default_region)
    _merge_consent(session, keep, drop)
    session.execute(update(Customer).where(Customer.id == drop.id).values(merged_into_id=keep.id))
    _recompute(session, [keep.id, drop.id])
    record = CustomerMerge(kept_id=keep.id, dropped_id=drop.id, reason=reason[:200],
                           created_at=utcnow(), snapshot=snapshot)
    session.add(record)
    session.flush()
    return record


def _snapshot(session: Session, keep: Customer, drop: Customer) -> dict[str, Any]:
    kept_tags = set(customers.tags_of(session=session, customer_id=keep.id))
    dropped_tags = customers.tags_of(session=session, customer_id=drop.id)
    moved_history = session.scalars(select(TraitChange.id)
                                    .where(TraitChange.customer_id == drop.id))
    return {
        "identities": [list(pair) for pair in
                       customers.identities_of(session=session, customer_ids=[drop.id])
                       .get(drop.id, [])],
        "dropped_tags": dropped_tags,
        "tags_added": sorted(set(dropped_tags) - kept_tags),
        "dropped_traits": dict(drop.traits or {}),
        "dropped_trait_times": dict(drop.trait_times or {}),
        "kept_traits": dict(keep.traits or {}),
        "kept_trait_times": dict(keep.trait_times or {}),
        "kept_consent": _consent(keep),
        "dropped_consent": _consent(drop),
        "trait_change_ids": list(moved_history),
    }


def _consent(customer: Customer) -> list[Any]:
    at = customer.email_marketing_at
    return [customer.email_marketing, customer.email_marketing_source,
            at.isoformat() if at else None]


def _merge_traits(session: Session, keep: Customer, drop: Customer, region: str) -> list[int]:
    traits, times, updates = merge_traits((keep.traits or {}, keep.trait_times or {}),
                                          (drop.traits or {}, drop.trait_times or {}))
    customers.write_traits(session=session, customer_id=keep.id, traits=traits, times=times,
                           default_region=region)
    return customers.record_trait_history(session=session, customer_id=keep.id, updates=updates,
                                          at=utcnow(), source="merge")


def _merge_consent(session: Session, keep: Customer, drop: Customer) -> None:
    """The more recent consent decision wins; `unknown` never overrides a decision."""
    if drop.email_marketing == "unknown" or drop.email_marketing_at is None:
        return
    if keep.email_marketing_at is not None and keep.email_marketing_at >= drop.email_marketing_at:
        return
    customers.set_email_consent(session=session, customer_id=keep.id,
                                state=drop.email_marketing,
                                source=drop.email_marketing_source or "merge",
                                at=drop.email_marketing_at)


def _recompute(session: Session, customer_ids: list[int]) -> None:
    for cid in customer_ids:
        customers.set_aggregates(session=session, customer_id=cid,
                                 values=queries.aggregates_from_events(session=session,
                                                                       customer_id=cid))


def unmerge(*, session: Session, merge_id: int, default_region: str) -> CustomerMerge:
    """Split a recorded merge: the dropped customer gets back what it brought."""
    record = session.get(CustomerMerge, merge_id)
    if record is None:
        raise NotFound(f"merge {merge_id}: no such merge", code="merge_not_found")
    drop = session.get(Customer, record.dropped_id)
    if record.undone_at is not None or drop is None or drop.merged_into_id != record.kept_id:
        raise Conflict(f"merge {merge_id}: already split", code="merge_undone")
    keep = customers.get_customer(session=session, customer_id=record.kept_id)
    snap = record.snapshot
    _restore_identities(session, record)
    _restore_events(session, record, _absorbed_into(session, drop.id))
    _restore_tags(session, record)
    _restore_traits(session, keep, drop, snap, default_region)
    _restore_consent(session, keep, drop, snap)
    session.execute(update(Customer).where(Customer.id == drop.id).values(merged_into_id=None))
    _recompute(session, [keep.id, drop.id])
    record.undone_at = utcnow()
    session.flush()
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


def _restore_identities(session: Session, record: CustomerMerge) -> None:
    for kind, value in record.snapshot["identities"]:
        session.execute(update(Identity).where(
            Identity.kind == kind, Identity.value == value,
            Identity.customer_id == record.kept_id).values(customer_id=record.dropped_id))


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


def _restore_tags(session: Session, record: CustomerMerge) -> None:
    session.execute(delete(CustomerTag).where(
        CustomerTag.customer_id == record.kept_id,
        CustomerTag.tag.in_(record.snapshot["tags_added"])))
    now = utcnow()
    for tag in record.snapshot["dropped_tags"]:
        session.add(CustomerTag(customer_id=record.dropped_id, tag=tag, created_at=now))
    session.flush()


def _restore_traits(session: Session, keep: Customer, drop: Customer, snap: dict[str, Any],
                    region: str) -> None:
    session.execute(update(TraitChange).where(TraitChange.id.in_(snap["trait_change_ids"]))
                    .values(customer_id=drop.id))
    session.execute(delete(TraitChange).where(
        TraitChange.id.in_(snap.get("merged_trait_change_ids", []))))
    customers.write_traits(session=session, customer_id=drop.id, traits=snap["dropped_traits"],
                           times=snap["dropped_trait_times"], default_region=region)
    traits, times = dict(keep.traits or {}), dict(keep.trait_times or {})
    for key, value in snap["dropped_traits"].items():
        # Only values the merge brought, and that nothing has replaced since, go back.
        if traits.get(key) == value and times.get(key) == snap["dropped_trait_times"].get(key):
            if key in snap["kept_traits"]:
                traits[key] = snap["kept_traits"][key]
                times[key] = snap["kept_trait_times"].get(key, "")
            else:
                traits.pop(key, None)
                times.pop(key, None)
    customers.write_traits(session=session, customer_id=keep.id, traits=traits, times=times,
                           default_region=region)


def _restore_consent(session: Session, keep: Customer, drop: Customer,
                     snap: dict[str, Any]) -> None:
    state, source, at = snap["dropped_consent"]
    if state != "unknown" and at is not None:
        customers.set_email_consent(session=session, customer_id=drop.id, state=state,
                                    source=source or "unmerge", at=datetime.fromisoformat(at))
    if _consent(keep) == snap["dropped_consent"] and snap["kept_consent"] != _consent(keep):
        kept_state, kept_source, kept_at = snap["kept_consent"]
        session.execute(update(Customer).where(Customer.id == keep.id).values(
            email_marketing=kept_state, email_marketing_source=kept_source,
            email_marketing_at=datetime.fromisoformat(kept_at) if kept_at else None))
