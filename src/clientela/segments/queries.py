"""Reading segments: previews of unsaved rules, members page by page and as CSV, sizes."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from typing import Any

from sqlalchemy import Select, func, select
from sqlalchemy.orm import Session

from clientela.core.money import as_decimal
from clientela.customers.models import Customer
from clientela.segments import service
from clientela.segments.models import Segment, SegmentMember, SegmentSize
from clientela.segments.schemas import MemberOut, PreviewOut, SizeOut

C = Customer.__table__.c
_MEMBER = (C.id, C.email, C.first_name, C.last_name, C.city, C.country, C.email_marketing,
           C.orders_count, C.revenue_cents, C.last_order_at, C.rfm_group)
CSV_COLUMNS = ("id", "email", "first_name", "last_name", "city", "country",
               "email_marketing", "orders_count", "revenue_total", "last_order_at",
               "rfm_group")


def _member(row: Any, currency: str) -> MemberOut:
    return MemberOut(id=row.id, email=row.email, first_name=row.first_name,
                     last_name=row.last_name, city=row.city, country=row.country,
                     email_marketing=row.email_marketing, orders_count=row.orders_count,
                     revenue_total=float(as_decimal(row.revenue_cents, currency)),
                     last_order_at=row.last_order_at, rfm_group=row.rfm_group)


def preview(*, session: Session, rule: Any, now: datetime, currency: str, limit: int
            ) -> PreviewOut:
    """How many customers an unsaved rule matches now, and the first of them by id."""
    ids = service.members_of(session=session, rule=rule, now=now, currency=currency)
    total = session.scalar(select(func.count()).select_from(ids.subquery())) or 0
    rows = session.execute(select(*_MEMBER).where(C.id.in_(ids)).order_by(C.id).limit(limit))
    return PreviewOut(count=total, items=[_member(row, currency) for row in rows])


def _members(segment_id: int) -> Select[Any]:
    return (select(*_MEMBER).join(SegmentMember, SegmentMember.customer_id == C.id)
            .where(SegmentMember.segment_id == segment_id).order_by(C.id))


def members(*, session: Session, segment_id: int, after: int | None, limit: int,
            currency: str) -> list[MemberOut]:
    """Members as last computed, by customer id, after the id `after`."""
    service.get_segment(session=session, segment_id=segment_id)
    query = _members(segment_id)
    if after is not None:
        query = query.where(C.id > after)
    return [_member(row, currency) for row in session.execute(query.limit(limit))]


def member_rows(*, session: Session, segment_id: int, currency: str,
                chunk: int = 5000) -> Iterator[list[Any]]:
    """Every member as a CSV row (see CSV_COLUMNS), read a chunk at a time."""
    after = 0
    while True:
        rows = session.execute(_members(segment_id).where(C.id > after).limit(chunk)).all()
        for row in rows:
            member = _member(row, currency)
            yield [getattr(member, name) if not isinstance(getattr(member, name), datetime)
                   else getattr(member, name).isoformat() for name in CSV_COLUMNS]
        if len(rows) < chunk:
            return
        after = rows[-1].id


def sizes(*, session: Session, segment_id: int, limit: int = 1000) -> list[SizeOut]:
    """The segment's size at each computation, oldest first (the last `limit`)."""
    service.get_segment(session=session, segment_id=segment_id)
    rows = session.execute(select(SegmentSize.at, SegmentSize.size)
                           .where(SegmentSize.segment_id == segment_id)
                           .order_by(SegmentSize.at.desc()).limit(limit)).all()
    return [SizeOut(at=at, size=size) for at, size in reversed(rows)]


def list_segments(*, session: Session) -> list[Segment]:
    return list(session.scalars(select(Segment).order_by(Segment.name)))
