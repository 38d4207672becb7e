"""/api/v1/customers: list, read, create, change, tag, merge and split customers."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Response
from pydantic import StringConstraints

from clientela.api.deps import (
    Limit,
    QueryText,
    ReadSessionDep,
    RowId,
    SecretKeyDep,
    SessionDep,
    SettingsDep,
)
from clientela.core.pagination import decode_cursor, encode_cursor, time_position
from clientela.customers import profile
from clientela.customers import queries as customer_queries
from clientela.customers import service as customers
from clientela.customers.schemas import (
    ConflictOut,
    CustomerIn,
    CustomerOut,
    CustomerPage,
    EventOut,
    EventPage,
    MergeIn,
    MergeOut,
    ProfileIn,
    TagsIn,
)
from clientela.tracking import merging
from clientela.tracking import queries as event_queries
from clientela.tracking.models import Event

router = APIRouter(prefix="/api/v1", tags=["customers"])
CustomerId = RowId
MergeId = RowId
NameText = Annotated[str, StringConstraints(max_length=255, pattern=r"^[^\x00]*$")]


def _one(session: ReadSessionDep | SessionDep, customer_id: int) -> CustomerOut:
    customer = customers.get_customer(session=session, customer_id=customer_id)
    return customer_queries.profiles(session=session, customers=[customer])[0]


@router.get("/customers", response_model=CustomerPage)
def list_customers(
    session: ReadSessionDep, settings: SettingsDep, _key: SecretKeyDep,
    email: QueryText = None, user_id: QueryText = None, q: QueryText = None,
    tag: QueryText = None, country: QueryText = None, sort: str = "-last_seen_at",
    cursor: str | None = None, limit: Limit = 50, count: bool = False,
    identified: bool = False,
) -> CustomerPage:
    """Live customers, filtered and sorted, a keyset page at a time."""
    filters = customer_queries.CustomerFilter(email=email, user_id=user_id, q=q, tag=tag,
                                              country=country, identified=identified)
    after = decode_cursor(cursor, secret=settings.secret_key + sort) if cursor else None
    rows, position = customer_queries.list_customers(
        session=session, filters=filters, sort=sort, limit=limit, after=after)
    return CustomerPage(
        items=customer_queries.profiles(session=session, customers=rows),
        next_cursor=encode_cursor(position, secret=settings.secret_key + sort)
        if position else None,
        total=customer_queries.count_customers(session=session, filters=filters)
        if count else None,
    )


@router.get("/customers/{customer_id}", response_model=CustomerOut)
def get_customer(customer_id: CustomerId, session: ReadSessionDep,
                 _key: SecretKeyDep) -> CustomerOut:
    """One customer's 360° profile."""
    return _one(session, customer_id)


@router.post("/customers", response_model=CustomerOut, status_code=201)
def create_customer(body: CustomerIn, response: Response, session: SessionDep,
                    settings: SettingsDep, _key: SecretKeyDep) -> CustomerOut:
    """Create a customer, or update the one known by `user_id` or `email` (answers 200)."""
    customer, created = profile.upsert_customer(session=session, data=body,
                                                default_region=settings.default_country)
    session.commit()
    if not created:
        response.status_code = 200
    return _one(session, customer.id)


@router.patch("/customers/{customer_id}", response_model=CustomerOut)
def update_customer(customer_id: CustomerId, body: ProfileIn, session: SessionDep,
                    settings: SettingsDep, _key: SecretKeyDep) -> CustomerOut:
    """Change profile fields, custom traits (null removes one) or consent."""
    profile.update_profile(session=session, customer_id=customer_id, changes=body,
                           default_region=settings.default_country)
    session.commit()
    return _one(session, customer_id)


@router.post("/customers/{customer_id}/tags", response_model=list[str])
def add_tags(customer_id: CustomerId, body: TagsIn, session: SessionDep,
             _key: SecretKeyDep) -> list[str]:
    """Add tags; answers every tag the customer now has."""
    tags = customers.add_tags(session=session, customer_id=customer_id, tags=body.tags)
    session.commit()
    return tags


@router.delete("/customers/{customer_id}/tags/{tag:path}", response_model=list[str])
def remove_tag(customer_id: CustomerId, tag: str, session: SessionDep,
               _key: SecretKeyDep) -> list[str]:
    """Remove one tag; answers the tags left."""
    tags = customers.remove_tag(session=session, customer_id=customer_id, tag=tag)
    session.commit()
    return tags


@router.get("/customers/{customer_id}/events", response_model=EventPage)
def customer_events(
    customer_id: CustomerId, session: ReadSessionDep, settings: SettingsDep,
    _key: SecretKeyDep,
    type: Annotated[list[NameText] | None, Query()] = None,
    event: Annotated[list[NameText] | None, Query()] = None,
    cursor: str | None = None, limit: Limit = 50,
) -> EventPage:
    """The customer's timeline, newest first, filtered by type and event name."""
    customers.get_customer(session=session, customer_id=customer_id)
    before = time_position(decode_cursor(cursor, secret=settings.secret_key)) if cursor else None
    rows = event_queries.customer_events(session=session, customer_id=customer_id,
                                         limit=limit + 1, before=before, types=type, names=event)
    next_cursor = None
    if len(rows) > limit:
        rows = rows[:limit]
        next_cursor = encode_cursor([rows[-1].timestamp.isoformat(), rows[-1].id],
                                    secret=settings.secret_key)
    return EventPage(items=[_event_out(row) for row in rows], next_cursor=next_cursor)


def _event_out(row: Event) -> EventOut:
    return EventOut(id=row.id, type=row.type, event=row.event, message_id=row.message_id,
                    user_id=row.user_id, anonymous_id=row.anonymous_id, timestamp=row.timestamp,
                    original_timestamp=row.original_timestamp, sent_at=row.sent_at,
                    received_at=row.received_at, properties=row.properties or {},
                    traits=row.traits, context=row.context or {})


@router.post("/customers/{customer_id}/merge", response_model=MergeOut)
def merge_customer(customer_id: CustomerId, body: MergeIn, session: SessionDep,
                   settings: SettingsDep, _key: SecretKeyDep) -> MergeOut:
    """Merge two customers; the older one survives and the answer names it."""
    record = merging.merge_customers(session=session, first=customer_id,
                                     second=body.customer_id, reason=body.reason,
                                     default_region=settings.default_country)
    session.commit()
    return MergeOut.model_validate(record, from_attributes=True)


@router.get("/customers/{customer_id}/merges", response_model=list[MergeOut])
def list_merges(customer_id: CustomerId, session: ReadSessionDep,
                _key: SecretKeyDep) -> list[MergeOut]:
    """Merges this customer took part in, kept or dropped."""
    customers.ensure_exists(session=session, customer_id=customer_id)
    return [MergeOut.model_validate(row, from_attributes=True)
            for row in customer_queries.merges_of(session=session, customer_id=customer_id)]


@router.get("/customers/{customer_id}/conflicts", response_model=list[ConflictOut])
def list_conflicts(customer_id: CustomerId, session: ReadSessionDep,
                   _key: SecretKeyDep) -> list[ConflictOut]:
    """Customers that looked like this one but were kept apart."""
    customers.ensure_exists(session=session, customer_id=customer_id)
    return [ConflictOut.model_validate(row, from_attributes=True)
            for row in customer_queries.conflicts_of(session=session, customer_id=customer_id)]


@router.post("/merges/{merge_id}/unmerge", response_model=MergeOut)
def unmerge(merge_id: MergeId, session: SessionDep, settings: SettingsDep,
            _key: SecretKeyDep) -> MergeOut:
    """Split a recorded merge: the dropped customer comes back with what it brought."""
    record = merging.unmerge(session=session, merge_id=merge_id,
                             default_region=settings.default_country)
    session.commit()
    return MergeOut.model_validate(record, from_attributes=True)
