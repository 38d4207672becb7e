"""Read-side SQL for customers: listing, search, and assembling the profile."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, Select, and_, func, or_, select, true
from sqlalchemy.orm import Session

from clientela.core.clock import as_utc
from clientela.core.errors import InvalidInput
from clientela.customers.models import (
    IDENTITY_KINDS,
    Customer,
    CustomerMerge,
    CustomerTag,
    Identity,
    IdentityConflict,
)
from clientela.customers.schemas import (
    AggregatesOut,
    ConsentOut,
    CustomerOut,
    IdentityOut,
    ScoresOut,
)
from clientela.customers.service import COUNT_COLUMNS

SORTS: dict[str, Any] = {
    "last_seen_at": Customer.last_seen_at,
    "first_seen_at": Customer.first_seen_at,
    "created_at": Customer.created_at,
    "orders_count": Customer.orders_count,
    "revenue_total": Customer.revenue_cents,
    "id": Customer.id,
}
_TIME_SORTS = {"last_seen_at", "first_seen_at", "created_at"}


@dataclass(frozen=True, slots=True)
class CustomerFilter:
    email: str | None = None
    user_id: str | None = None
    q: str | None = None
    tag: str | None = None
    country: str | None = None
    identified: bool = False  # only customers known by a user id, e-mail or phone


def _filtered(filters: CustomerFilter) -> Select[Any]:
    query = select(Customer).where(Customer.merged_into_id.is_(None))
    if filters.email:
        query = query.where(Customer.id.in_(select(Identity.customer_id).where(
            Identity.kind == "email", Identity.value == filters.email.strip().lower())))
    if filters.user_id:
        query = query.where(Customer.id.in_(select(Identity.customer_id).where(
            Identity.kind == "user_id", Identity.value == filters.user_id)))
    if filters.tag:
        query = query.where(Customer.id.in_(select(CustomerTag.customer_id).where(
            CustomerTag.tag == filters.tag.strip().lower())))
    if filters.country:
        query = query.where(func.lower(Customer.country) == filters.country.strip().lower())
    if filters.q:
        query = query.where(_text_match(filters.q))
    if filters.identified:
        query = query.where(Customer.id.in_(select(Identity.customer_id).where(
            Identity.kind.in_(("user_id", "email", "phone")))))
    return query


def _text_match(text: str) -> ColumnElement[bool]:
    """Every word of `text` appears in the names, e-mail or phone."""
    words = text.lower().split()[:5]
    fields = [Customer.first_name, Customer.last_name, Customer.email, Customer.phone]
    clauses = []
    for word in words:
        pattern = "%" + word.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
        clauses.append(or_(*[func.lower(field).like(pattern, escape="\\") for field in fields]))
    return and_(true(), *clauses)


def parse_sort(sort: str) -> tuple[str, bool]:
    """(field, descending) from `field` or `-field`."""
    descending = sort.startswith("-")
    name = sort.removeprefix("-")
    if name not in SORTS:
        raise InvalidInput(f"sort: must be one of {', '.join(SORTS)} (prefix - for descending)",
                           code="invalid_sort")
    return name, descending


def list_customers(*, session: Session, filters: CustomerFilter, sort: str, limit: int,
                   after: list[Any] | None) -> tuple[list[Customer], list[Any] | None]:
    """A page of live customers and the keyset position after its last row (or None)."""
    name, descending = parse_sort(sort)
    column = SORTS[name]
    query = _filtered(filters)
    if after is not None:
        query = query.where(_after(column, descending, _cursor_value(name, after)))
    order = (column.desc(), Customer.id.desc()) if descending else (column.asc(), Customer.id)
    rows: list[Customer] = list(session.scalars(query.order_by(*order).limit(limit + 1)))
    if len(rows) <= limit:
        return rows, None
    last = rows[limit - 1]
    value = getattr(last, column.key)
    return rows[:limit], [value.isoformat() if isinstance(value, datetime) else value, last.id]


def _cursor_value(name: str, after: list[Any]) -> tuple[Any, int]:
    if len(after) != 2 or not isinstance(after[1], int):
        raise InvalidInput("cursor: does not belong to this listing", code="invalid_cursor")
    value = after[0]
    if name in _TIME_SORTS:
        value = as_utc(datetime.fromisoformat(value))
    return value, after[1]


def _after(column: Any, descending: bool, position: tuple[Any, int]) -> ColumnElement[bool]:
    value, last_id = position
    if descending:
        return or_(column < value, (column == value) & (Customer.id < last_id))
    return or_(column > value, (column == value) & (Customer.id > last_id))


def count_customers(*, session: Session, filters: CustomerFilter) -> int:
    return int(session.scalar(select(func.count()).select_from(
        _filtered(filters).subquery())) or 0)


def profiles(*, session: Session, customers: list[Customer]) -> list[CustomerOut]:
    """The API view of each customer, with identities and tags loaded in two queries."""
    ids = [customer.id for customer in customers]
    identities: dict[int, list[IdentityOut]] = {cid: [] for cid in ids}
    for cid, kind, value in session.execute(select(
            Identity.customer_id, Identity.kind, Identity.value)
            .where(Identity.customer_id.in_(ids)).order_by(Identity.id)):
        identities[cid].append(IdentityOut(kind=kind, value=value))
    for found in identities.values():  # strongest kind first, then in the order learned
        found.sort(key=lambda identity: IDENTITY_KINDS.index(identity.kind))
    tags: dict[int, list[str]] = {cid: [] for cid in ids}
    for cid, tag in session.execute(select(CustomerTag.customer_id, CustomerTag.tag)
                                    .where(CustomerTag.customer_id.in_(ids))
                                    .order_by(CustomerTag.tag)):
        tags[cid].append(tag)
    return [_profile(c, identities[c.id], tags[c.id]) for c in customers]


def _profile(c: Customer, identities: list[IdentityOut], tags: list[str]) -> CustomerOut:
    return CustomerOut(
        id=c.id, email=c.email, phone=c.phone, first_name=c.first_name, last_name=c.last_name,
        gender=c.gender, birthday=c.birthday, locale=c.locale, city=c.city, region=c.region,
        country=c.country, created_at=c.created_at, first_seen_at=c.first_seen_at,
        last_seen_at=c.last_seen_at, identities=identities, traits=c.traits or {}, tags=tags,
        consent=ConsentOut(email_marketing=c.email_marketing,
                           email_marketing_source=c.email_marketing_source,
                           email_marketing_at=c.email_marketing_at),
        aggregates=aggregates(c), scores=scores(c),
    )


def scores(c: Customer) -> ScoresOut:
    return ScoresOut(
        rfm_recency=c.rfm_recency, rfm_frequency=c.rfm_frequency, rfm_monetary=c.rfm_monetary,
        rfm_group=c.rfm_group, rfm_at=c.rfm_at, p_alive=c.p_alive, churn_risk=c.churn_risk,
        expected_orders=c.expected_orders,
        predicted_value=c.predicted_clv_cents / 100 if c.predicted_clv_cents is not None
        else None, inactive=c.inactive, predicted_at=c.predicted_at)


def aggregates(c: Customer) -> AggregatesOut:
    counts = {kind: getattr(c, column) for kind, column in COUNT_COLUMNS.items()}
    average = round(c.revenue_cents / c.orders_count / 100, 2) if c.orders_count else None
    return AggregatesOut(
        events=counts, events_total=sum(counts.values()), orders_count=c.orders_count,
        revenue_total=c.revenue_cents / 100, average_order_value=average,
        first_order_at=c.first_order_at, last_order_at=c.last_order_at)


def merges_of(*, session: Session, customer_id: int) -> list[CustomerMerge]:
    return list(session.scalars(select(CustomerMerge).where(or_(
        CustomerMerge.kept_id == customer_id, CustomerMerge.dropped_id == customer_id))
        .order_by(CustomerMerge.id)))


def conflicts_of(*, session: Session, customer_id: int) -> list[IdentityConflict]:
    return list(session.scalars(select(IdentityConflict).where(or_(
        IdentityConflict.customer_id == customer_id,
        IdentityConflict.other_customer_id == customer_id)).order_by(IdentityConflict.id)))
