"""What HTTP workers and the writer process say to each other over the ingestion socket.

A request frame carries one request's validated calls; a reply frame says how that job
ended. Calls travel in their storage form (`PendingEvent`: JSON and times already as text),
so the HTTP worker does the rendering and the writer reads back only the few values it
works with.

    request: length u32 | job id u64 | source id i64 | calls u32 | calls as a JSON array
    reply:   length u32 | job id u64 | status u8 | stored u32, duplicates u32 | message
"""

from __future__ import annotations

import struct
from datetime import UTC, datetime
from enum import IntEnum
from functools import lru_cache

import orjson
from sqlalchemy.exc import DataError

from clientela.commerce.ecommerce import Change
from clientela.core.errors import ClientelaError, InvalidInput, Overloaded, StorageUnavailable
from clientela.tracking.service import Recorded
from clientela.tracking.store import TIMESTAMP_AT, PendingEvent

LENGTH = struct.Struct(">I")
REQUEST = struct.Struct(">QqI")
REPLY = struct.Struct(">QBII")
MAX_FRAME = 64 * 1024 * 1024
UNSTORABLE = "a value in the request cannot be stored"


class Status(IntEnum):
    STORED = 0
    OVERLOADED = 1
    UNAVAILABLE = 2
    FAILED = 3
    INVALID = 4  # a value the database refused: the request's fault, a 400


def encode_request(job_id: int, source_id: int, events: list[PendingEvent]) -> bytes:
    body = REQUEST.pack(job_id, source_id, len(events)) + encode_events(events)
    return LENGTH.pack(len(body)) + body


def decode_request(body: bytes) -> tuple[int, int, int, bytes]:
    """(job id, source id, number of calls, encoded calls) of a request frame's body."""
    job_id, source_id, count = REQUEST.unpack_from(body)
    return job_id, source_id, count, body[REQUEST.size:]


def encode_reply(job_id: int, result: Recorded | None, error: BaseException | None) -> bytes:
    if error is None:
        assert result is not None
        body = REPLY.pack(job_id, Status.STORED, result.stored, result.duplicates)
    else:
        status = (Status.OVERLOADED if isinstance(error, Overloaded) else
                  Status.UNAVAILABLE if isinstance(error, StorageUnavailable) else
                  Status.INVALID if isinstance(error, InvalidInput | DataError) else
                  Status.FAILED)
        message = (error.message if isinstance(error, ClientelaError) else
                   UNSTORABLE if isinstance(error, DataError) else
                   str(error) or type(error).__name__)
        code = error.code if isinstance(error, ClientelaError) else "invalid_value"
        body = REPLY.pack(job_id, status, 0, 0) + f"{code}\n{message}".encode()
    return LENGTH.pack(len(body)) + body


def decode_reply(body: bytes) -> tuple[int, Recorded | BaseException]:
    """(job id, what became of it): a Recorded, or the error to raise to the client."""
    job_id, status, stored, duplicates = REPLY.unpack_from(body)
    code, _, message = body[REPLY.size:].decode().partition("\n")
    if status == Status.STORED:
        return job_id, Recorded(stored=stored, duplicates=duplicates)
    if status == Status.OVERLOADED:
        return job_id, Overloaded(message)
    if status == Status.UNAVAILABLE:
        return job_id, StorageUnavailable(message)
    if status == Status.INVALID:
        return job_id, InvalidInput(message, code=code)
    return job_id, RuntimeError(f"the ingestion writer failed: {message}")


def encode_events(events: list[PendingEvent]) -> bytes:
    """Calls in storage form as one JSON array (each e-commerce change as JSON text in it,
    so that the writer can recognise a change it has already read)."""
    return orjson.dumps([
        [e.message_id, e.type, e.event, e.user_id, e.anonymous_id, e.previous_id,
         e.traits or None, e.locale, e.commerce and _change_text(e.commerce), e.row]
        for e in events])


def _change_text(change: Change) -> str:
    return orjson.dumps(change.as_wire()).decode()


def _change(text: str) -> Change:
    """A change read from its text. Short ones (a product viewed, added or removed: most of
    them, and the same few again and again) are remembered: the same text gives the same
    immutable value, read once; long ones (orders) are rarely seen twice."""
    if len(text) <= _REMEMBERED_CHANGE_CHARS:
        return _short_change(text)
    return Change.from_wire(orjson.loads(text))


_REMEMBERED_CHANGE_CHARS = 2000  # with the cache's size, at most ~8 MB remembered


@lru_cache(maxsize=4096)
def _short_change(text: str) -> Change:
    return Change.from_wire(orjson.loads(text))


def decode_events(payload: bytes) -> list[PendingEvent]:
    """The calls `encode_events` wrote, equal to the ones it was given."""
    times: dict[str, datetime] = {}
    events = []
    for (message_id, kind, name, user_id, anonymous_id, previous_id, traits, locale,
         commerce, row) in orjson.loads(payload):
        text = row[TIMESTAMP_AT]
        moment = times.get(text)
        if moment is None:
            moment = times[text] = datetime.fromisoformat(text).replace(tzinfo=UTC)
        events.append(PendingEvent(
            message_id=message_id, type=kind, event=name, user_id=user_id,
            anonymous_id=anonymous_id, previous_id=previous_id, timestamp=moment,
            traits=traits or {}, locale=locale,
            commerce=commerce and _change(commerce), row=tuple(row)))
    return events
