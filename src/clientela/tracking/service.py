"""Recording calls: dedup on messageId, resolve identities, store, and update profiles."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from clientela.customers import service as customers
from clientela.tracking import queries
from clientela.tracking.identity import IdentityResolver
from clientela.tracking.models import Event
from clientela.tracking.orders import ORDER_COMPLETED
from clientela.tracking.schemas import IncomingEvent
from clientela.tracking.store import append_events

_CHUNK = 500


@dataclass(frozen=True, slots=True)
class Recorded:
    stored: int
    duplicates: int


def record_events(*, session: Session, source_id: int, events: list[IncomingEvent],
                  default_region: str) -> Recorded:
    """Store the calls not seen before from this source and fold them into profiles."""
    fresh = _unseen(session, source_id, events)
    resolver = IdentityResolver(session=session, default_region=default_region)
    resolver.prefetch(fresh)
    resolved = [resolver.resolve(event) for event in fresh]
    resolver.flush()
    origins = [resolver.real(cid) for cid in resolved]
    owners = [resolver.final(cid) for cid in resolved]
    _price_refunds(session, fresh, owners)
    append_events(session=session, source_id=source_id, events=fresh, owners=owners,
                  origins=origins)
    customers.record_activity(session=session, activity=_activity(fresh, owners))
    customers.apply_trait_observations(session=session, observations=_traits(fresh, owners),
                                       source="identify", default_region=default_region)
    return Recorded(stored=len(fresh), duplicates=len(events) - len(fresh))


def _unseen(session: Session, source_id: int, events: list[IncomingEvent]) -> list[IncomingEvent]:
    """The calls whose messageId this source has not sent before (first one wins in a batch)."""
    ids = sorted({event.message_id for event in events})
    seen: set[str] = set()
    for start in range(0, len(ids), _CHUNK):
        seen.update(session.scalars(select(Event.message_id).where(
            Event.source_id == source_id, Event.message_id.in_(ids[start:start + _CHUNK]))))
    fresh = []
    for event in events:
        if event.message_id not in seen:
            seen.add(event.message_id)
            fresh.append(event)
    return fresh


def _price_refunds(session: Session, events: list[IncomingEvent], owners: list[int]) -> None:
    """A refund that does not say its amount refunds the whole order it names."""
    batch_orders = {(owner, str(event.properties.get("order_id"))): event.revenue_cents or 0
                    for event, owner in zip(events, owners, strict=True)
                    if event.event == ORDER_COMPLETED and event.type == "track"}
    for event, owner in zip(events, owners, strict=True):
        if event.type != "track" or event.event != "Order Refunded" or event.revenue_cents:
            continue
        order_id = str(event.properties.get("order_id"))
        amount = batch_orders.get((owner, order_id))
        if amount is None:
            amount = queries.completed_order_cents(session=session, customer_id=owner,
                                                   order_id=order_id)
        event.revenue_cents = -(amount or 0)


def _activity(events: list[IncomingEvent], owners: list[int]) -> dict[int, customers.Activity]:
    activity: dict[int, customers.Activity] = defaultdict(customers.Activity)
    for event, owner in zip(events, owners, strict=True):
        act = activity[owner]
        act.add(event.type, event.timestamp)
        if event.revenue_cents is None:
            continue
        if event.event == ORDER_COMPLETED:
            act.add_order(event.timestamp, event.revenue_cents)
        else:
            act.add_revenue(event.revenue_cents)
    return activity


def _traits(events: list[IncomingEvent], owners: list[int]
            ) -> dict[int, list[tuple[dict[str, Any], datetime]]]:
    observed: dict[int, list[tuple[dict[str, Any], datetime]]] = defaultdict(list)
    for event, owner in zip(events, owners, strict=True):
        if event.type != "identify":
            continue
        traits = event.traits
        locale = event.context.get("locale")
        if "locale" not in traits and isinstance(locale, str):
            traits = {**traits, "locale": locale}
        if traits:
            observed[owner].append((traits, event.timestamp))
    return observed
