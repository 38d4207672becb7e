"""Appending events: the hottest write, done with one driver-level executemany.

SQLAlchemy's per-value type processing costs more than SQLite's own work for a batch of
events, so rows are rendered here in the forms both engines accept: JSON as text and
times as naive UTC text (the same format SQLAlchemy uses for SQLite), and handed to the
driver as they are. Reads still go through the `Event` model.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy.orm import Session

from clientela.core.types import db_json, db_time
from clientela.db import driver_executemany
from clientela.tracking.schemas import IncomingEvent

COLUMNS = ("source_id", "message_id", "customer_id", "origin_customer_id", "type", "event",
           "user_id", "anonymous_id", "timestamp", "original_timestamp", "sent_at",
           "received_at", "properties", "context", "details", "revenue_cents")
_QUOTED = ", ".join(f'"{column}"' for column in COLUMNS)
_INSERT = f"INSERT INTO events ({_QUOTED}) VALUES ({', '.join('?' * len(COLUMNS))})"


def render(events: Sequence[IncomingEvent]) -> None:
    """Put the columns from `type` to `details` in storage form on each event. They do not
    depend on who the event belongs to, so the server does this before the write lock."""
    texts: dict[datetime, str] = {}  # a batch shares its sentAt and receivedAt

    def text(moment: datetime | None) -> str | None:
        if moment is None:
            return None
        found = texts.get(moment)
        if found is None:
            found = texts[moment] = db_time(moment) or ""
        return found

    for e in events:
        if e.rendered is None:
            e.rendered = (e.type, e.event, e.user_id, e.anonymous_id, text(e.timestamp),
                          text(e.original_timestamp), text(e.sent_at), text(e.received_at),
                          db_json(e.properties), db_json(e.context), db_json(e.details))


def append_events(*, session: Session, sources: Sequence[int], events: Sequence[IncomingEvent],
                  owners: Sequence[int], origins: Sequence[int]) -> None:
    """Insert event i from `sources[i]`, owned by `owners[i]`, first resolved to `origins[i]`."""
    render(events)
    rows = [(source_id, e.message_id, owner, origin, *(e.rendered or ()), e.revenue_cents)
            for source_id, e, owner, origin in zip(sources, events, owners, origins, strict=True)]
    driver_executemany(session, _INSERT, rows)
