"""Recording calls: dedup on messageId, resolve identities, store, and update profiles."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session

from clientela.commerce import service as commerce
from clientela.commerce.catalog import CatalogMemory
from clientela.commerce.ecommerce import Happened
from clientela.core.errors import InvalidInput
from clientela.core.money import Exchange
from clientela.customers import merging as customer_merging
from clientela.customers import service as customers
from clientela.db import driver_query_in
from clientela.tracking.identity import IdentityResolver
from clientela.tracking.schemas import IncomingEvent, Rejection, parse_batch, parse_event
from clientela.tracking.store import PendingEvent, TimeTexts, append_events, pending

# What one batch may take once stored; the 500 KB body limit alone does not bound it.
MAX_STORED_BATCH_BYTES = 16 * 1024 * 1024


@dataclass(frozen=True, slots=True)
class Recorded:
    stored: int
    duplicates: int


def validated_event(body: Any, *, kind: str | None, received_at: datetime,
                    currency: str) -> PendingEvent:
    """One call checked and put in storage form (amounts in `currency`, the store's, unless
    it names its own); InvalidInput names what is wrong."""
    return pending(parse_event(body, kind=kind, received_at=received_at, check_size=False),
                   currency=currency)


def validated_batch(body: Any, *, received_at: datetime, body_bytes: int, currency: str
                    ) -> tuple[list[PendingEvent], list[Rejection]]:
    """The storable calls of a batch, and a rejection (by index) for each of the others."""
    parsed, rejected = parse_batch(body, received_at=received_at, body_bytes=body_bytes)
    texts, accepted, stored_bytes = TimeTexts(), [], 0
    for index, event in parsed:
        try:
            call = pending(event, texts, currency=currency)
        except InvalidInput as error:
            rejected.append(Rejection(index=index, code=error.code, message=error.message))
            continue
        accepted.append(call)
        stored_bytes += call.stored_bytes
    if stored_bytes > MAX_STORED_BATCH_BYTES:
        # A large batch `context` is copied into every call: refuse the multiplication.
        raise InvalidInput(f"batch: larger than {MAX_STORED_BATCH_BYTES} bytes once each call "
                           "carries the batch context", code="payload_too_large")
    return accepted, sorted(rejected, key=lambda rejection: rejection.index)


def record_events(*, session: Session, source_id: int, events: list[PendingEvent],
                  default_region: str, exchange: Exchange) -> Recorded:
    """Store the calls not seen before from this source and fold them into profiles and,
    for e-commerce events, orders, carts and the catalog."""
    return record_batches(session=session, batches=[(source_id, events)],
                          default_region=default_region, exchange=exchange)[0]


def record_batches(*, session: Session, batches: Sequence[tuple[int, list[PendingEvent]]],
                   default_region: str, exchange: Exchange,
                   catalog: CatalogMemory | None = None) -> list[Recorded]:
    """`record_events` for several (source id, calls) batches at once, in call order."""
    fresh = _unseen(session, batches)
    events = [event for _source, event in fresh]
    resolver = IdentityResolver(session=session, default_region=default_region)
    resolver.prefetch(events)
    resolved = [resolver.resolve(event) for event in events]
    resolver.flush()
    origins = [resolver.real(cid) for cid in resolved]
    owners = [resolver.final(cid) for cid in resolved]
    customer_merging.lock_live(session=session, customer_ids=owners)
    resolver.verify()
    append_events(session=session, sources=[source for source, _event in fresh],
                  events=events, owners=owners, origins=origins)
    customers.record_activity(session=session, activity=_activity(events, owners))
    commerce.apply_events(session=session, happened=_commerce(events, owners, origins),
                          exchange=exchange, catalog=catalog)
    customers.apply_trait_observations(session=session, observations=_traits(events, owners),
                                       source="identify", default_region=default_region)
    return _tally(batches, {id(event) for event in events})


def record_for_customer(*, session: Session, source_id: int, customer_id: int, event: str,
                        properties: dict[str, Any], at: datetime, message_id: str) -> bool:
    """Store a track event Clientela itself saw a known customer do (an e-mail opened, a
    link clicked): no identity to resolve. False when its messageId was stored before."""
    call = IncomingEvent(type="track", message_id=message_id, user_id=None, anonymous_id=None,
                         event=event, timestamp=at, original_timestamp=None, sent_at=None,
                         received_at=at, properties=properties, context={}, details={})
    fresh = [stored for _source, stored in _unseen(session, [(source_id, [pending(call)])])]
    if not fresh:
        return False
    owner = customers.surviving_id(session=session, customer_id=customer_id)
    customer_merging.lock_live(session=session, customer_ids=[owner])
    append_events(session=session, sources=[source_id], events=fresh, owners=[owner],
                  origins=[customer_id])
    customers.record_activity(session=session, activity=_activity(fresh, [owner]))
    return True


def _tally(batches: Sequence[tuple[int, list[PendingEvent]]], stored: set[int]
           ) -> list[Recorded]:
    results = []
    for _source, events in batches:
        count = sum(1 for event in events if id(event) in stored)
        results.append(Recorded(stored=count, duplicates=len(events) - count))
    return results


def _unseen(session: Session, batches: Sequence[tuple[int, list[PendingEvent]]]
            ) -> list[tuple[int, PendingEvent]]:
    """The calls whose messageId their source has not sent before (the first one wins)."""
    seen = {source: _known_ids(session, source, {event.message_id for event in events})
            for source, events in _by_source(batches).items()}
    fresh = []
    for source, events in batches:
        for event in events:
            if event.message_id not in seen[source]:
                seen[source].add(event.message_id)
                fresh.append((source, event))
    return fresh


def _by_source(batches: Sequence[tuple[int, list[PendingEvent]]]
               ) -> dict[int, list[PendingEvent]]:
    grouped: dict[int, list[PendingEvent]] = defaultdict(list)
    for source, events in batches:
        grouped[source] += events
    return grouped


def _known_ids(session: Session, source_id: int, message_ids: set[str]) -> set[str]:
    return {row[0] for row in driver_query_in(session, _KNOWN_IDS, message_ids,
                                              before=[source_id])}


_KNOWN_IDS = "SELECT message_id FROM events WHERE source_id = ? AND message_id IN ({marks})"


def _activity(events: list[PendingEvent], owners: list[int]) -> dict[int, customers.Activity]:
    activity: dict[int, customers.Activity] = defaultdict(customers.Activity)
    for event, owner in zip(events, owners, strict=True):
        activity[owner].add(event.type, event.timestamp)
    return activity


def _commerce(events: list[PendingEvent], owners: list[int], origins: list[int]
              ) -> list[Happened]:
    return [Happened(customer_id=owner, origin_id=origin, message_id=event.message_id,
                              at=event.timestamp, change=event.commerce)
            for event, owner, origin in zip(events, owners, origins, strict=True)
            if event.commerce is not None]


def _traits(events: list[PendingEvent], owners: list[int]
            ) -> dict[int, list[tuple[dict[str, Any], datetime]]]:
    observed: dict[int, list[tuple[dict[str, Any], datetime]]] = defaultdict(list)
    for event, owner in zip(events, owners, strict=True):
        if event.type != "identify":
            continue
        traits = event.traits
        if "locale" not in traits and event.locale is not None:
            traits = {**traits, "locale": event.locale}
        if traits:
            observed[owner].append((traits, event.timestamp))
    return observed
