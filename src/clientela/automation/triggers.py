"""Who a trigger enrols: (customer id, key) pairs, one set-based query per scenario.

The key names the reason (the cart, the event, the year of the birthday), so enrolling is
idempotent: the same reason never enrols the same customer twice.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Select, String, cast, exists, func, literal, select
from sqlalchemy.orm import Session, aliased

from clientela.automation.definition import (
    CartAbandoned,
    FirstOrder,
    Inactive,
    NotFollowed,
    OnDate,
    OnEvent,
    Quiet,
    SegmentChanged,
    Subscribed,
    Trigger,
)
from clientela.commerce.models import Cart, Order
from clientela.customers.models import Customer
from clientela.segments.models import SegmentChange
from clientela.tracking.models import Event

C = Customer.__table__.c


def _key(prefix: str, value: Any) -> Any:
    return literal(prefix) + cast(value, String)


def candidates(*, session: Session, trigger: Trigger, since: datetime, now: datetime
               ) -> list[tuple[int, str]]:
    """(customer, key) of everyone the trigger fires for between `since` and `now`."""
    query = _query(session.get_bind().dialect.name, trigger, since, now)
    live = select(C.id).where(C.merged_into_id.is_(None))
    rows = session.execute(query.where(query.selected_columns[0].in_(live))).tuples().all()
    return [(int(customer), str(key)) for customer, key in rows]


def _query(dialect: str, trigger: Trigger, since: datetime, now: datetime
           ) -> Select[Any, Any]:
    if isinstance(trigger, OnEvent):
        return select(Event.customer_id, _key("event:", Event.id)).where(
            Event.event == trigger.event, Event.timestamp > since, Event.timestamp <= now)
    if isinstance(trigger, NotFollowed):
        return _not_followed(trigger, since, now)
    if isinstance(trigger, FirstOrder):
        earlier = aliased(Order)
        return select(Order.customer_id, literal("first_order")).where(
            Order.status != "cancelled", Order.placed_at > since, Order.placed_at <= now,
            ~exists(select(earlier.id).where(earlier.customer_id == Order.customer_id,
                                             earlier.status != "cancelled",
                                             earlier.placed_at < Order.placed_at)))
    if isinstance(trigger, CartAbandoned):
        return select(Cart.customer_id, _key("cart:", Cart.id)).where(
            Cart.status == "abandoned", Cart.abandoned_at > since, Cart.abandoned_at <= now)
    if isinstance(trigger, SegmentChanged):
        change = "entered" if trigger.type == "segment_entered" else "left"
        return select(SegmentChange.customer_id, _key("segment:", SegmentChange.id)).where(
            SegmentChange.segment_id == trigger.segment_id, SegmentChange.change == change,
            SegmentChange.at > since, SegmentChange.at <= now)
    if isinstance(trigger, Subscribed):
        return select(C.id, literal("subscribed")).where(
            C.email_marketing == "subscribed", C.email_marketing_at > since,
            C.email_marketing_at <= now)
    if isinstance(trigger, Quiet):
        day = (now - timedelta(days=trigger.days)).replace(hour=0, minute=0, second=0,
                                                           microsecond=0)
        return select(C.id, _key("quiet:", func.date(C.last_order_at) if dialect == "sqlite"
                                 else cast(C.last_order_at, String))).where(
            C.last_order_at >= day, C.last_order_at < day + timedelta(days=1))
    if isinstance(trigger, Inactive):
        return select(C.id, _key("inactive:", C.last_order_at)).where(
            C.inactive.is_(True), C.last_order_at.is_not(None))
    return _on_date(dialect, trigger, now)


def _not_followed(trigger: NotFollowed, since: datetime, now: datetime) -> Select[Any, Any]:
    """Each `event` whose window closed between `since` and `now` with nothing after it (no
    `followed_by`, nor the same event again) up to `now`."""
    window = timedelta(hours=trigger.within_hours)
    later = aliased(Event)
    return select(Event.customer_id, _key("after:", Event.id)).where(
        Event.event == trigger.event, Event.timestamp > since - window,
        Event.timestamp <= now - window,
        ~exists(select(later.id).where(
            later.customer_id == Event.customer_id,
            later.event.in_((trigger.event, trigger.followed_by)),
            later.timestamp > Event.timestamp, later.timestamp <= now)))


def _month_day(dialect: str, column: Any) -> Any:
    if dialect == "sqlite":
        return func.strftime("%m-%d", column)
    return func.to_char(column, "MM-DD")


def _on_date(dialect: str, trigger: OnDate, now: datetime) -> Select[Any, Any]:
    today = now.strftime("%m-%d")
    days = [today]
    if today == "02-28" and (now + timedelta(days=1)).day == 1:  # not a leap year
        days.append("02-29")
    if trigger.type == "birthday":
        return select(C.id, literal(f"birthday:{now.year}")).where(
            C.birthday.is_not(None), _month_day(dialect, C.birthday).in_(days))
    return select(C.id, literal(f"anniversary:{now.year}")).where(
        C.first_order_at.is_not(None), C.first_order_at < now - timedelta(days=360),
        _month_day(dialect, C.first_order_at).in_(days))


