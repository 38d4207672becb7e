"""The customers' side of merges: what a merged customer's own rows become, and back.

`tracking.merging` coordinates a merge (it also moves the events); everything here touches
only the customers domain's tables.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import delete, insert, or_, select, update
from sqlalchemy.orm import Session

from clientela.core.clock import utcnow
from clientela.core.errors import ClientelaError, Conflict, NotFound
from clientela.customers import service
from clientela.customers.models import (
    Customer,
    CustomerMerge,
    CustomerTag,
    Identity,
    IdentityConflict,
    TraitChange,
)
from clientela.customers.traits import merge_traits
from clientela.db import driver_query_in

# An IdentityConflict of this kind says "split by merge N: keep these two apart".
KEPT_APART = "split"


class CustomerMoved(ClientelaError):
    """A customer this write resolved to was merged away meanwhile; the write is retried."""

    status = 503
    code = "customer_moved"


def lock_live(*, session: Session, customer_ids: list[int]) -> None:
    """Lock the customers' rows (PostgreSQL; SQLite's write lock covers it) in id order and
    raise CustomerMoved if any was merged away by a concurrent transaction."""
    # NO KEY UPDATE: it serializes with merges but not with other writers' foreign-key
    # checks (KEY SHARE) when they insert events for the same customers.
    lock = " FOR NO KEY UPDATE" if session.get_bind().dialect.name == "postgresql" else ""
    rows = driver_query_in(session, "SELECT id, merged_into_id FROM customers WHERE id IN "
                           "({marks}) ORDER BY id" + lock, customer_ids)
    moved = [cid for cid, merged_into in rows if merged_into is not None]
    if moved:
        raise CustomerMoved(f"customers {moved} were merged meanwhile; retry")


def open_merge(*, session: Session, kept_id: int, dropped_id: int) -> CustomerMerge | None:
    """The merge of `dropped_id` into `kept_id`, if it stands."""
    return session.scalar(select(CustomerMerge).where(
        CustomerMerge.kept_id == kept_id, CustomerMerge.dropped_id == dropped_id,
        CustomerMerge.undone_at.is_(None)).order_by(CustomerMerge.id.desc()))


def absorb(*, session: Session, keep: Customer, drop: Customer, region: str) -> dict[str, Any]:
    """Move identities, tags, trait history, traits and consent from `drop` to `keep` and mark
    `drop` merged; returns the snapshot that lets `release` undo it."""
    snapshot = _snapshot(session, keep, drop)
    session.execute(update(Identity).where(Identity.customer_id == drop.id)
                    .values(customer_id=keep.id))
    service.add_tags(session=session, customer_id=keep.id, tags=snapshot["dropped_tags"])
    session.execute(delete(CustomerTag).where(CustomerTag.customer_id == drop.id))
    session.execute(update(TraitChange).where(TraitChange.customer_id == drop.id)
                    .values(customer_id=keep.id))
    snapshot["merged_trait_change_ids"] = _merge_traits(session, keep, drop, region)
    _merge_consent(session, keep, drop)
    session.execute(update(Customer).where(Customer.id == drop.id).values(merged_into_id=keep.id))
    return snapshot


def record_merge(*, session: Session, keep: int, drop: int, reason: str,
                 snapshot: dict[str, Any]) -> CustomerMerge:
    record = CustomerMerge(kept_id=keep, dropped_id=drop, reason=reason[:200],
                           created_at=utcnow(), snapshot=snapshot)
    session.add(record)
    session.flush()
    return record


def _snapshot(session: Session, keep: Customer, drop: Customer) -> dict[str, Any]:
    kept_tags = set(service.tags_of(session=session, customer_id=keep.id))
    dropped_tags = service.tags_of(session=session, customer_id=drop.id)
    moved_history = session.scalars(select(TraitChange.id)
                                    .where(TraitChange.customer_id == drop.id))
    return {
        "identities": [list(pair) for pair in
                       service.identities_of(session=session, customer_ids=[drop.id])
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
    service.write_traits(session=session, customer_id=keep.id, traits=traits, times=times,
                         default_region=region)
    return service.record_trait_history(session=session, customer_id=keep.id, updates=updates,
                                        at=utcnow(), source="merge")


def _merge_consent(session: Session, keep: Customer, drop: Customer) -> None:
    """The more recent consent decision wins; `unknown` never overrides a decision."""
    if drop.email_marketing == "unknown" or drop.email_marketing_at is None:
        return
    if keep.email_marketing_at is not None and keep.email_marketing_at >= drop.email_marketing_at:
        return
    service.set_email_consent(session=session, customer_id=keep.id, state=drop.email_marketing,
                              source=drop.email_marketing_source or "merge",
                              at=drop.email_marketing_at)


def splittable(*, session: Session, merge_id: int) -> tuple[CustomerMerge, Customer, Customer]:
    """The standing merge `merge_id` with its kept and dropped customers, locked."""
    record = session.get(CustomerMerge, merge_id)
    if record is None:
        raise NotFound(f"merge {merge_id}: no such merge", code="merge_not_found")
    lock_rows(session=session, customer_ids=[record.kept_id, record.dropped_id])
    drop = session.get(Customer, record.dropped_id, populate_existing=True)
    if record.undone_at is not None or drop is None or drop.merged_into_id != record.kept_id:
        raise Conflict(f"merge {merge_id}: already split", code="merge_undone")
    keep = session.get(Customer, record.kept_id, populate_existing=True)
    if keep is None or keep.merged_into_id is not None:
        raise Conflict(f"merge {merge_id}: customer {record.kept_id} was merged on into "
                       f"customer {keep.merged_into_id if keep else '?'}; split that merge "
                       "first", code="merge_not_last")
    return record, keep, drop


def lock_rows(*, session: Session, customer_ids: list[int]) -> None:
    """Lock the customers' rows in id order (PostgreSQL); merges and splits take both."""
    if session.get_bind().dialect.name == "postgresql":
        session.execute(select(Customer.id).where(Customer.id.in_(sorted(customer_ids)))
                        .order_by(Customer.id).with_for_update(key_share=True))


def release(*, session: Session, record: CustomerMerge, keep: Customer, drop: Customer,
            region: str) -> None:
    """Give `drop` back the identities, tags, traits and consent it brought, unmark it, and
    remember to keep the two apart from now on."""
    snap = record.snapshot
    _restore_identities(session, record)
    _restore_tags(session, record)
    _restore_traits(session, keep, drop, snap, region)
    _restore_consent(session, keep, drop, snap)
    session.execute(update(Customer).where(Customer.id == drop.id).values(merged_into_id=None))
    record_conflict(session=session, customer_id=keep.id, other_id=drop.id, kind=KEPT_APART,
                    value=str(record.id), reason=f"merge {record.id} was split")
    record.undone_at = utcnow()
    session.flush()


def _restore_identities(session: Session, record: CustomerMerge) -> None:
    pairs = [(kind, value) for kind, value in record.snapshot["identities"]]
    for kind in {kind for kind, _ in pairs}:
        session.execute(update(Identity).where(
            Identity.kind == kind, Identity.value.in_([v for k, v in pairs if k == kind]),
            Identity.customer_id == record.kept_id).values(customer_id=record.dropped_id))


def _restore_tags(session: Session, record: CustomerMerge) -> None:
    session.execute(delete(CustomerTag).where(
        CustomerTag.customer_id == record.kept_id,
        CustomerTag.tag.in_(record.snapshot["tags_added"])))
    now = utcnow()
    rows = [{"customer_id": record.dropped_id, "tag": tag, "created_at": now}
            for tag in record.snapshot["dropped_tags"]]
    if rows:
        session.execute(insert(CustomerTag), rows)


def _restore_traits(session: Session, keep: Customer, drop: Customer, snap: dict[str, Any],
                    region: str) -> None:
    session.execute(update(TraitChange).where(TraitChange.id.in_(snap["trait_change_ids"]))
                    .values(customer_id=drop.id))
    session.execute(delete(TraitChange).where(
        TraitChange.id.in_(snap.get("merged_trait_change_ids", []))))
    service.write_traits(session=session, customer_id=drop.id, traits=snap["dropped_traits"],
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
    service.write_traits(session=session, customer_id=keep.id, traits=traits, times=times,
                         default_region=region)


def _restore_consent(session: Session, keep: Customer, drop: Customer,
                     snap: dict[str, Any]) -> None:
    state, source, at = snap["dropped_consent"]
    if state != "unknown" and at is not None:
        service.set_email_consent(session=session, customer_id=drop.id, state=state,
                                  source=source or "unmerge", at=datetime.fromisoformat(at))
    if _consent(keep) == snap["dropped_consent"] and snap["kept_consent"] != _consent(keep):
        kept_state, kept_source, kept_at = snap["kept_consent"]
        service.restore_email_consent(
            session=session, customer_id=keep.id, state=kept_state, source=kept_source,
            at=datetime.fromisoformat(kept_at) if kept_at else None)


def record_conflict(*, session: Session, customer_id: int, other_id: int, kind: str,
                    value: str, reason: str) -> None:
    """Record, once, that two customers looked like one person but are kept apart."""
    exists = session.scalar(select(IdentityConflict.id).where(
        IdentityConflict.customer_id == customer_id,
        IdentityConflict.other_customer_id == other_id,
        IdentityConflict.kind == kind, IdentityConflict.value == value))
    if exists is None:
        session.add(IdentityConflict(customer_id=customer_id, other_customer_id=other_id,
                                     kind=kind, value=value, reason=reason[:200],
                                     created_at=utcnow()))
        session.flush()


def kept_apart(*, session: Session, first: int, second: int) -> bool:
    """Whether a split merge said these two customers must stay apart."""
    return session.scalar(select(IdentityConflict.id).where(
        IdentityConflict.kind == KEPT_APART,
        or_((IdentityConflict.customer_id == first)
            & (IdentityConflict.other_customer_id == second),
            (IdentityConflict.customer_id == second)
            & (IdentityConflict.other_customer_id == first))).limit(1)) is not None
