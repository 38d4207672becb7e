"""Segment-compatible calls: validating one raw call into an `IncomingEvent`."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import orjson

from clientela.core.clock import as_utc
from clientela.core.errors import InvalidInput
from clientela.customers.service import COUNT_COLUMNS

MAX_EVENT_BYTES = 32 * 1024
MAX_BATCH_BYTES = 500 * 1024
MAX_BATCH_EVENTS = 2500
MAX_ID_LENGTH = 255
EARLIEST = datetime(1900, 1, 1, tzinfo=UTC)
LATEST = datetime(2200, 1, 1, tzinfo=UTC)
EVENT_TYPES = frozenset(COUNT_COLUMNS)  # each type has its count on the profile
# Keys kept as columns or dropped; everything else in a call lands in `details`.
_COLUMN_KEYS = frozenset({
    "type", "userId", "anonymousId", "messageId", "event", "timestamp", "originalTimestamp",
    "sentAt", "receivedAt", "properties", "context", "writeKey", "_metadata", "version",
})


@dataclass(slots=True)
class IncomingEvent:
    """One validated call, with its times worked out; not yet tied to a customer."""

    type: str
    message_id: str
    user_id: str | None
    anonymous_id: str | None
    event: str | None
    timestamp: datetime
    original_timestamp: datetime | None
    sent_at: datetime | None
    received_at: datetime
    properties: dict[str, Any]
    context: dict[str, Any]
    details: dict[str, Any]
    traits: dict[str, Any] = field(default_factory=dict)
    previous_id: str | None = None


@dataclass(frozen=True, slots=True)
class Rejection:
    index: int
    code: str
    message: str


def _text(value: Any, key: str, code: str) -> str:
    kind = type(value)  # exact types: bool is an int subclass, and is refused
    if kind is str:
        text: str = value
    elif kind is int:
        text = str(value)
    else:
        raise InvalidInput(f"{key}: must be a string", code=code)
    if len(text) > MAX_ID_LENGTH:
        raise InvalidInput(f"{key}: must be at most {MAX_ID_LENGTH} characters", code=code)
    if "\x00" in text:
        raise InvalidInput(f"{key}: must not contain NUL characters", code=code)
    return text


def _identifier(raw: dict[str, Any], key: str) -> str | None:
    value = raw.get(key)
    if value is None or value == "":
        return None
    return _text(value, key, "invalid_id")


def parse_time(value: Any, name: str) -> datetime | None:
    """An aware UTC datetime from an ISO-8601 string, or None when absent."""
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        raise InvalidInput(f"{name}: must be an ISO-8601 date-time", code="invalid_timestamp")
    try:
        moment = as_utc(datetime.fromisoformat(value))
    except (ValueError, OverflowError):
        raise InvalidInput(
            f"{name}: {value[:40]!r} is not an ISO-8601 date-time", code="invalid_timestamp"
        ) from None
    if not EARLIEST <= moment <= LATEST:
        raise InvalidInput(f"{name}: must be between the years {EARLIEST.year} and "
                           f"{LATEST.year - 1}", code="invalid_timestamp")
    return moment


def _object(raw: dict[str, Any], key: str) -> dict[str, Any]:
    value = raw.get(key)
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise InvalidInput(f"{key}: must be an object", code="invalid_object")
    return value


def _required_text(raw: dict[str, Any], key: str, kind: str) -> str:
    value = raw.get(key)
    if value is None or value == "":
        raise InvalidInput(f"{key}: required for {kind} calls", code=f"missing_{key}")
    return _text(value, key, f"invalid_{key}")


def _event_name(raw: dict[str, Any], kind: str) -> str | None:
    if kind == "track":
        return _required_text(raw, "event", kind)
    if kind in ("page", "screen") and raw.get("name") not in (None, ""):
        return _text(raw["name"], "name", "invalid_name")
    return None


def _corrected_times(
    raw: dict[str, Any], batch_sent_at: datetime | None, received_at: datetime
) -> tuple[datetime, datetime | None, datetime | None]:
    """(timestamp, originalTimestamp, sentAt): skew-corrected when the client says `sentAt`."""
    original = parse_time(raw.get("originalTimestamp"), "originalTimestamp")
    if original is None:
        original = parse_time(raw.get("timestamp"), "timestamp")
    sent_at = parse_time(raw.get("sentAt"), "sentAt") or batch_sent_at
    if original is None:
        return received_at, None, sent_at
    if sent_at is None:
        return original, original, None
    try:
        return received_at - (sent_at - original), original, sent_at
    except OverflowError:
        raise InvalidInput("timestamp: too far from sentAt to correct",
                           code="invalid_timestamp") from None


def parse_event(
    raw: Any,
    *,
    kind: str | None,
    received_at: datetime,
    batch_context: dict[str, Any] | None = None,
    batch_sent_at: datetime | None = None,
    check_size: bool = True,
) -> IncomingEvent:
    """Validate one call; `kind` is the endpoint's type, or None to read it from `type`."""
    kind = _call_type(raw, kind, check_size)
    user_id, anonymous_id = _who(raw)
    message_id = _identifier(raw, "messageId") or f"clientela-{uuid.uuid4()}"
    timestamp, original, sent_at = _corrected_times(raw, batch_sent_at, received_at)
    context = _object(raw, "context")
    if batch_context:
        context = {**batch_context, **context}
    details = {key: value for key, value in raw.items() if key not in _COLUMN_KEYS}
    properties = _object(raw, "properties")
    traits = _object(raw, "traits")
    event = IncomingEvent(
        type=kind, message_id=message_id, user_id=user_id, anonymous_id=anonymous_id,
        event=_event_name(raw, kind), timestamp=timestamp, original_timestamp=original,
        sent_at=sent_at, received_at=received_at, properties=properties, context=context,
        details=details, traits=traits,
    )
    _check_type_rules(event, raw)
    return event


def _call_type(raw: Any, kind: str | None, check_size: bool) -> str:
    """The call's type, once it is known to be a JSON object of an allowed size."""
    if not isinstance(raw, dict):
        raise InvalidInput("event: must be a JSON object", code="invalid_event")
    if check_size and len(orjson.dumps(raw)) > MAX_EVENT_BYTES:
        raise InvalidInput(f"event: larger than {MAX_EVENT_BYTES} bytes", code="event_too_large")
    kind = kind or raw.get("type")
    if not isinstance(kind, str) or kind not in EVENT_TYPES:
        raise InvalidInput(f"type: must be one of {', '.join(sorted(EVENT_TYPES))}",
                           code="invalid_type")
    return kind


def _who(raw: dict[str, Any]) -> tuple[str | None, str | None]:
    user_id = _identifier(raw, "userId")
    anonymous_id = _identifier(raw, "anonymousId")
    if user_id is None and anonymous_id is None:
        raise InvalidInput("userId or anonymousId: one of them is required",
                           code="missing_identity")
    return user_id, anonymous_id


def _check_type_rules(event: IncomingEvent, raw: dict[str, Any]) -> None:
    """What each call type needs beyond the common fields."""
    if event.type == "alias":
        event.previous_id = _required_text(raw, "previousId", event.type)
    elif event.type == "group":
        _required_text(raw, "groupId", event.type)


def parse_batch(body: Any, *, received_at: datetime, body_bytes: int
                ) -> tuple[list[tuple[int, IncomingEvent]], list[Rejection]]:
    """Valid calls of a batch with their indexes, and a rejection for each invalid one."""
    if not isinstance(body, dict):
        raise InvalidInput("body: must be a JSON object", code="invalid_body")
    calls = body.get("batch")
    if not isinstance(calls, list):
        raise InvalidInput("batch: must be an array of calls", code="invalid_batch")
    if len(calls) > MAX_BATCH_EVENTS:
        raise InvalidInput(f"batch: at most {MAX_BATCH_EVENTS} calls per batch",
                           code="batch_too_large")
    context = _object(body, "context")
    sent_at = parse_time(body.get("sentAt"), "sentAt")
    accepted: list[tuple[int, IncomingEvent]] = []
    rejected: list[Rejection] = []
    for index, raw in enumerate(calls):
        try:
            accepted.append((index, parse_event(
                raw, kind=None, received_at=received_at, batch_context=context,
                batch_sent_at=sent_at, check_size=body_bytes > MAX_EVENT_BYTES,
            )))
        except InvalidInput as error:
            rejected.append(Rejection(index=index, code=error.code, message=error.message))
    return accepted, rejected
