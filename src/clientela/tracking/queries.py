"""Read-side SQL over the event store."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import case, func, select
from sqlalchemy.orm import Session

from clientela.core.errors import InvalidInput
from clientela.customers.service import COUNT_COLUMNS
from clientela.tracking.models import Event
from clientela.tracking.orders import ORDER_COMPLETED, ORDER_EVENTS
from clientela.tracking.schemas import EVENT_TYPES


def aggregates_from_events(*, session: Session, customer_id: int) -> dict[str, Any]:
    """A customer's aggregate columns computed afresh from the events it owns."""
    values: dict[str, Any] = {column: 0 for column in COUNT_COLUMNS.values()}
    rows = session.execute(select(Event.type, func.count(), func.min(Event.timestamp),
                                  func.max(Event.timestamp))
                           .where(Event.customer_id == customer_id).group_by(Event.type)).all()
    for kind, count, _first, _last in rows:
        values[COUNT_COLUMNS[kind]] = count
    if rows:
        values["first_seen_at"] = min(row[2] for row in rows)
        values["last_seen_at"] = max(row[3] for row in rows)
    values.update(_order_aggregates(session, customer_id))
    return values


def _order_aggregates(session: Session, customer_id: int) -> dict[str, Any]:
    completed = Event.event == ORDER_COMPLETED
    orders, cents, first, last = session.execute(select(
        func.coalesce(func.sum(case((completed, 1), else_=0)), 0),
        func.coalesce(func.sum(Event.revenue_cents), 0),
        func.min(case((completed, Event.timestamp))),
        func.max(case((completed, Event.timestamp))),
    ).where(Event.customer_id == customer_id, Event.type == "track",
            Event.event.in_(ORDER_EVENTS))).one()
    return {"orders_count": int(orders), "revenue_cents": int(cents),
            "first_order_at": first, "last_order_at": last}


def completed_order_cents(*, session: Session, customer_id: int, order_id: str) -> int | None:
    """The amount of the customer's completed order with this `order_id`, if it was recorded."""
    rows = session.execute(select(Event.properties, Event.revenue_cents).where(
        Event.customer_id == customer_id, Event.type == "track",
        Event.event == ORDER_COMPLETED))
    for properties, cents in rows:
        if str((properties or {}).get("order_id")) == order_id:
            return int(cents or 0)
    return None


def customer_events(
    *, session: Session, customer_id: int, limit: int, before: tuple[datetime, int] | None,
    types: list[str] | None = None, names: list[str] | None = None,
) -> list[Event]:
    """The customer's events newest first, after the keyset position `before`."""
    for kind in types or []:
        if kind not in EVENT_TYPES:
            raise InvalidInput(f"type: must be one of {', '.join(sorted(EVENT_TYPES))}",
                               code="invalid_type")
    query = select(Event).where(Event.customer_id == customer_id)
    if types:
        query = query.where(Event.type.in_(types))
    if names:
        query = query.where(Event.event.in_(names))
    if before is not None:
        moment, event_id = before
        query = query.where((Event.timestamp < moment)
                            | ((Event.timestamp == moment) & (Event.id < event_id)))
    query = query.order_by(Event.timestamp.desc(), Event.id.desc()).limit(limit)
    return list(session.scalars(query))
