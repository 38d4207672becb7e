"""Read-side SQL over the event store."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from clientela.core.errors import InvalidInput
from clientela.customers.service import COUNT_COLUMNS
from clientela.tracking.models import Event
from clientela.tracking.schemas import EVENT_TYPES


def aggregates_from_events(*, session: Session, customer_id: int) -> dict[str, Any]:
    """A customer's event counts and seen times computed afresh from the events it owns."""
    values: dict[str, Any] = {column: 0 for column in COUNT_COLUMNS.values()}
    rows = session.execute(select(Event.type, func.count(), func.min(Event.timestamp),
                                  func.max(Event.timestamp))
                           .where(Event.customer_id == customer_id).group_by(Event.type)).all()
    for kind, count, _first, _last in rows:
        values[COUNT_COLUMNS[kind]] = count
    if rows:
        values["first_seen_at"] = min(row[2] for row in rows)
        values["last_seen_at"] = max(row[3] for row in rows)
    return values


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
