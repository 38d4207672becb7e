"""Appending events: the hottest write, done with one driver-level executemany.

SQLAlchemy's per-value type processing costs more than SQLite's own work for a batch of
events, so rows are rendered here in the forms both engines accept: JSON as text and
times as naive UTC text (the same format SQLAlchemy uses for SQLite), and handed to the
driver as they are. Reads still go through the `Event` model.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import orjson
from sqlalchemy.orm import Session

from clientela.commerce.ecommerce import Change, stated_change
from clientela.core.errors import InvalidInput
from clientela.core.types import db_json, db_time, json_has_nul
from clientela.db import driver_executemany
from clientela.tracking.schemas import IncomingEvent

COLUMNS = ("source_id", "message_id", "customer_id", "origin_customer_id", "type", "event",
           "user_id", "anonymous_id", "timestamp", "original_timestamp", "sent_at",
           "received_at", "properties", "context", "details")
# The columns of `PendingEvent.row`, and where the call's own time sits in it.
ROW_COLUMNS = COLUMNS[4:]
TIMESTAMP_AT = ROW_COLUMNS.index("timestamp")
JSON_AT = ROW_COLUMNS.index("properties")
_QUOTED = ", ".join(f'"{column}"' for column in COLUMNS)
_INSERT = f"INSERT INTO events ({_QUOTED}) VALUES ({', '.join('?' * len(COLUMNS))})"


@dataclass(slots=True)
class PendingEvent:
    """A validated call on its way to the database: its `events` columns from `type` to
    `details` already in storage form (`row`), and the few values that identity resolution
    and profile updates read. This is all the writer gets, in or out of process."""

    message_id: str
    type: str
    event: str | None
    user_id: str | None
    anonymous_id: str | None
    previous_id: str | None
    timestamp: datetime
    traits: dict[str, Any]  # of identify calls; empty for the others
    locale: str | None  # context.locale of identify calls
    commerce: Change | None  # what an e-commerce event says about orders, carts, products
    row: tuple[Any, ...]

    @property
    def stored_bytes(self) -> int:
        """Roughly what the call takes in the database: its JSON columns."""
        return sum(len(text) for text in self.row[JSON_AT:])


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


def pending(event: IncomingEvent, texts: TimeTexts | None = None, *,
            currency: str = "BRL") -> PendingEvent:
    """The call in storage form, or InvalidInput when a value cannot be stored (amounts of
    e-commerce events are in `currency` unless they name theirs). None of it depends on
    who the call belongs to, so the server does this while validating."""
    texts = texts if texts is not None else TimeTexts()
    properties = _stored_json(event.properties, "properties")
    row = (event.type, event.event, event.user_id, event.anonymous_id,
           texts.of(event.timestamp), texts.of(event.original_timestamp),
           texts.of(event.sent_at), texts.of(event.received_at),
           properties, _stored_json(event.context, "context"),
           _stored_json(event.details, "event"))
    identify = event.type == "identify"
    locale = event.context.get("locale") if identify else None
    change = stated_change(event.event, event.properties, properties, currency=currency) \
        if event.type == "track" else None
    return PendingEvent(
        message_id=event.message_id, type=event.type, event=event.event,
        user_id=event.user_id, anonymous_id=event.anonymous_id, previous_id=event.previous_id,
        timestamp=event.timestamp, traits=event.traits if identify else {},
        locale=locale if isinstance(locale, str) else None,
        commerce=change, row=row)


def append_events(*, session: Session, sources: Sequence[int], events: Sequence[PendingEvent],
                  owners: Sequence[int], origins: Sequence[int]) -> None:
    """Insert event i from `sources[i]`, owned by `owners[i]`, first resolved to `origins[i]`."""
    rows = [(source_id, e.message_id, owner, origin, *e.row)
            for source_id, e, owner, origin in zip(sources, events, owners, origins, strict=True)]
    driver_executemany(session, _INSERT, rows)
