"""Appending events: the hottest write, done with one driver-level executemany.

SQLAlchemy's per-value type processing costs more than SQLite's own work for a batch of
events, so rows are rendered here in the forms both engines accept: JSON as text and
times as naive UTC text (the same format SQLAlchemy uses for SQLite), and handed to the
driver as they are. Reads still go through the `Event` model.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

import orjson
from sqlalchemy.orm import Session

from clientela.core.errors import InvalidInput
from clientela.core.types import db_json, db_time, json_has_nul
from clientela.db import driver_executemany
from clientela.tracking.schemas import IncomingEvent

COLUMNS = ("source_id", "message_id", "customer_id", "origin_customer_id", "type", "event",
           "user_id", "anonymous_id", "timestamp", "original_timestamp", "sent_at",
           "received_at", "properties", "context", "details", "revenue_cents")
_QUOTED = ", ".join(f'"{column}"' for column in COLUMNS)
_INSERT = f"INSERT INTO events ({_QUOTED}) VALUES ({', '.join('?' * len(COLUMNS))})"


class TimeTexts(dict[datetime, str]):
    """Storage texts of times already rendered: a batch shares its sentAt and receivedAt."""

    def of(self, moment: datetime | None) -> str | None:
        if moment is None:
            return None
        found = self.get(moment)
        if found is None:
            found = self[moment] = db_time(moment) or ""
        return found


def _stored_json(value: Any, field: str) -> str:
    try:
        text = db_json(value)
    except orjson.JSONEncodeError:
        raise InvalidInput(f"{field}: cannot be stored (nested too deeply)",
                           code="invalid_value") from None
    if json_has_nul(text):
        raise InvalidInput(f"{field}: must not contain NUL characters", code="invalid_value")
    return text


def render(event: IncomingEvent, texts: TimeTexts | None = None) -> None:
    """Put the columns from `type` to `details` in storage form on the event, or raise
    InvalidInput when a value cannot be stored. They do not depend on who the event belongs
    to, so the server does this while validating, before the write lock."""
    if event.rendered is not None:
        return
    texts = texts if texts is not None else TimeTexts()
    event.rendered = (
        event.type, event.event, event.user_id, event.anonymous_id, texts.of(event.timestamp),
        texts.of(event.original_timestamp), texts.of(event.sent_at),
        texts.of(event.received_at), _stored_json(event.properties, "properties"),
        _stored_json(event.context, "context"), _stored_json(event.details, "event"))


def append_events(*, session: Session, sources: Sequence[int], events: Sequence[IncomingEvent],
                  owners: Sequence[int], origins: Sequence[int]) -> None:
    """Insert event i from `sources[i]`, owned by `owners[i]`, first resolved to `origins[i]`."""
    texts = TimeTexts()
    for event in events:
        render(event, texts)
    rows = [(source_id, e.message_id, owner, origin, *(e.rendered or ()), e.revenue_cents)
            for source_id, e, owner, origin in zip(sources, events, owners, origins, strict=True)]
    driver_executemany(session, _INSERT, rows)
