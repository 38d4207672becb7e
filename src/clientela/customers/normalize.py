"""Canonical forms of the identities a customer is known by."""

from __future__ import annotations

import functools
import re

import phonenumbers

_EMAIL = re.compile(r"^[^@\s]{1,64}@[^@\s]+\.[^@\s]{2,}$")


def normalize_email(value: object) -> str | None:
    """The address trimmed and lower-cased, or None when it is not an e-mail address."""
    if not isinstance(value, str):
        return None
    address = value.strip().lower()
    if len(address) > 320 or not _EMAIL.match(address):
        return None
    return address


def normalize_phone(value: object, *, default_region: str) -> str | None:
    """The number in E.164 (+5511987654321), or None when it is not a possible number."""
    if isinstance(value, int):
        value = str(value)
    if not isinstance(value, str) or not value.strip():
        return None
    return _phone(value, default_region.upper())


@functools.lru_cache(maxsize=8192)
def _phone(value: str, region: str) -> str | None:
    # Parsing costs tens of microseconds, and one write reads each number several times.
    try:
        number = phonenumbers.parse(value, region)
    except phonenumbers.NumberParseException:
        return None
    if not phonenumbers.is_possible_number(number):
        return None
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)
