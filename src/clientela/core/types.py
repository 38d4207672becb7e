"""Column types shared by every table."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime
from typing import Any

import orjson
from sqlalchemy import JSON, BigInteger, DateTime, Dialect, Integer
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.types import TypeDecorator

from clientela.core.clock import as_utc

JSONType = JSON().with_variant(JSONB(), "postgresql")
# SQLite makes only INTEGER PRIMARY KEY an alias of the rowid (auto-increment).
BigId = BigInteger().with_variant(Integer(), "sqlite")


def db_time(moment: datetime | None) -> str | None:
    """The text `UTCDateTime` stores on SQLite (naive UTC); PostgreSQL parses it as well."""
    if moment is None:
        return None
    # Always six fractional digits, so that stored times also sort correctly as text; the
    # "+00:00" that an aware time prints is cut off (cheaper than making it naive first).
    if moment.tzinfo is None:
        return moment.isoformat(" ", "microseconds")
    if moment.tzinfo is not UTC:
        moment = moment.astimezone(UTC)
    return moment.isoformat(" ", "microseconds")[:26]


def json_bytes(value: Any) -> bytes:
    """JSON for storage and answers: orjson, or the standard library for integers beyond
    64 bits (PostgreSQL reads a number like 1.8e19 back from jsonb as such an integer)."""
    try:
        return orjson.dumps(value)
    except orjson.JSONEncodeError as error:
        if "64-bit" not in str(error):
            raise
        return json.dumps(value, ensure_ascii=False, allow_nan=False,
                          separators=(",", ":")).encode()


def db_json(value: Any) -> str:
    """JSON as text, for driver-level writes to JSON/JSONB columns (both engines parse it)."""
    return json_bytes(value).decode()


# orjson writes NUL as \u0000; an escaped backslash before "u0000" is ordinary text.
_JSON_NUL = re.compile(r"(?<!\\)(?:\\\\)*\\u0000")


def json_has_nul(text: str) -> bool:
    """Whether JSON text holds a NUL character, which PostgreSQL's jsonb cannot store."""
    return "\\u0000" in text and _JSON_NUL.search(text) is not None


class UTCDateTime(TypeDecorator[datetime]):
    """Stores UTC without a zone on both engines; always returns aware UTC values."""

    impl = DateTime
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return as_utc(value).replace(tzinfo=None)

    def process_result_value(self, value: Any, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return as_utc(value)
