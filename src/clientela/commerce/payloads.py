"""Reading store platforms' JSON payloads: amounts, ids, times, lists and texts, each with
an error that names the field."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from clientela.core.errors import InvalidInput
from clientela.core.money import to_minor
from clientela.tracking.schemas import parse_time


def object_at(values: dict[str, Any], key: str) -> dict[str, Any]:
    """The object under `key`, or an empty one."""
    found = values.get(key)
    return found if isinstance(found, dict) else {}


def money(values: dict[str, Any], key: str, currency: str, where: str = "") -> int | None:
    value = values.get(key)
    if value is None or value == "":
        return None
    return to_minor(value, f"{where}.{key}" if where else key, currency)


def identifier(values: dict[str, Any], key: str) -> str:
    value = values.get(key)
    if type(value) not in (int, str) or value == "":
        raise InvalidInput(f"{key}: required", code="invalid_webhook")
    return str(value)


def moment(values: dict[str, Any], key: str) -> datetime:
    moment = parse_time(values.get(key), key)
    if moment is None:
        raise InvalidInput(f"{key}: required", code="invalid_webhook")
    return moment


def items(values: dict[str, Any], key: str) -> list[Any]:
    found = values.get(key)
    if found is None:
        return []
    if not isinstance(found, list):
        raise InvalidInput(f"{key}: must be a list", code="invalid_webhook")
    return found


def text(value: Any) -> str | None:
    return str(value)[:500] if isinstance(value, str | int) and value != "" else None
