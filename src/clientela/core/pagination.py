"""Opaque keyset cursors: the last row's sort value and id, signed against tampering."""

from __future__ import annotations

import base64
import hashlib
import hmac
from datetime import datetime
from typing import Any

import orjson

from clientela.core.clock import as_utc
from clientela.core.errors import InvalidInput


def encode_cursor(values: list[Any], *, secret: str) -> str:
    """A URL-safe cursor for the row whose sort key is `values`."""
    body = orjson.dumps(values)
    mac = hmac.new(secret.encode(), body, hashlib.sha256).digest()[:8]
    return base64.urlsafe_b64encode(mac + body).decode().rstrip("=")


def decode_cursor(cursor: str, *, secret: str) -> list[Any]:
    """The sort key a cursor was made from; a forged or broken cursor is an InvalidInput."""
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        mac, body = raw[:8], raw[8:]
        expected = hmac.new(secret.encode(), body, hashlib.sha256).digest()[:8]
        if not hmac.compare_digest(mac, expected):
            raise ValueError("signature")
        values = orjson.loads(body)
        if not isinstance(values, list):
            raise ValueError("shape")
        return values
    except ValueError as error:
        raise InvalidInput(
            "cursor: must be a next_cursor value returned by this API", code="invalid_cursor"
        ) from error


def time_position(values: list[Any]) -> tuple[datetime, int]:
    """A (time, id) keyset position from a decoded cursor."""
    if (len(values) == 2 and isinstance(values[0], str) and isinstance(values[1], int)
            and not isinstance(values[1], bool)):
        try:
            return as_utc(datetime.fromisoformat(values[0])), values[1]
        except ValueError:
            pass
    raise InvalidInput("cursor: does not belong to this listing", code="invalid_cursor")
