"""Appending events: the hottest write, done with one driver-level executemany.

SQLAlchemy's per-value type processing costs more than SQLite's own work for a batch of
events, so rows are rendered here in the forms both engines accept: JSON as text and
times as naive UTC text (the same format SQLAlchemy uses for SQLite), and handed to the
driver as they are. Reads still go through the `Event` model.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy.orm import Session

from clientela.core.types import db_json, db_time
from clientela.db import driver_executemany
from clientela.tracking.schemas import IncomingEvent

COLUMNS = ("source_id", "message_id", "customer_id", "origin_customer_id", "type", "event",
           "user_id", "anonymous_id", "timestamp", "original_timestamp", "sent_at",
           "received_at", "properties", "context", "details", "revenue_cents")
_QUOTED = ", ".join(f'"{column}"' for column in COLUMNS)
_INSERT = f"INSERT INTO events ({_QUOTED}) VALUES ({', '.join('?' * len(COLUMNS))})"


def render(event: IncomingEvent) -> tuple[Any, ...]:
    """The columns from `type` to `details`, in storage form; they do not depend on who the
    event belongs to, so the server renders them before the write lock is taken."""
    if event.rendered is None:
        event.rendered = (
            event.type, event.event, event.user_id, event.anonymous_id, db_time(event.timestamp),
            db_time(event.original_timestamp), db_time(event.sent_at),
            db_time(event.received_at), db_json(event.properties), db_json(event.context),
            db_json(event.details))
    return event.rendered


def append_events(*, session: Session, sources: Sequence[int], events: Sequence[IncomingEvent],
                  owners: Sequence[int], origins: Sequence[int]) -> None:
    """Insert event i from `sources[i]`, owned by `owners[i]`, first resolved to `origins[i]`."""
    rows = [(source_id, e.message_id, owner, origin, *render(e), e.revenue_cents)
            for source_id, e, owner, origin in zip(sources, events, owners, origins, strict=True)]
    driver_executemany(session, _INSERT, rows)
