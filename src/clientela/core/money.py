"""Money: exact integer minor units per ISO 4217 currency, and conversion to the store's."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import ROUND_HALF_EVEN, Decimal, InvalidOperation
from typing import Any

from clientela.core.errors import InvalidInput

# Ten trillion: far beyond any order, and its minor units still add up safely in 64 bits.
MAX_AMOUNT = Decimal("10000000000000")
# Currencies whose minor unit is not the cent (ISO 4217); every other one has two decimals.
_DECIMALS = {
    **dict.fromkeys(("BIF", "CLP", "DJF", "GNF", "ISK", "JPY", "KMF", "KRW", "PYG", "RWF",
                     "UGX", "UYI", "VND", "VUV", "XAF", "XOF", "XPF"), 0),
    **dict.fromkeys(("BHD", "IQD", "JOD", "KWD", "LYD", "OMR", "TND"), 3),
}
_CODE = re.compile(r"[A-Z]{3}")


def decimals(currency: str) -> int:
    """Digits after the decimal point in `currency`'s minor unit."""
    return _DECIMALS.get(currency, 2)


def currency_code(value: Any, field: str) -> str:
    """An ISO 4217 code ("brl" is read as "BRL"), or InvalidInput naming `field`."""
    code = value.strip().upper() if isinstance(value, str) else None
    if code is None or not _CODE.fullmatch(code):
        raise InvalidInput(f"{field}: must be a three-letter ISO 4217 currency code",
                           code="invalid_currency")
    return code


def to_minor(value: Any, field: str, currency: str = "BRL") -> int:
    """Exact minor units of `currency` from a JSON number or numeric string, never through
    a float sum; InvalidInput naming `field` for anything else or out of range."""
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise InvalidInput(f"{field}: must be a number", code="invalid_amount")
    try:
        amount = Decimal(str(value).strip())
    except InvalidOperation:
        raise InvalidInput(f"{field}: {str(value)[:30]!r} is not a number",
                           code="invalid_amount") from None
    if not amount.is_finite():
        raise InvalidInput(f"{field}: must be a finite number", code="invalid_amount")
    if not 0 <= amount <= MAX_AMOUNT:
        raise InvalidInput(f"{field}: must be between 0 and {MAX_AMOUNT}", code="invalid_amount")
    return int(amount.scaleb(decimals(currency)).quantize(Decimal(1), ROUND_HALF_EVEN))


def as_decimal(minor: int, currency: str) -> Decimal:
    """The amount `minor` units of `currency` stand for (1234 BRL cents: 12.34)."""
    return Decimal(minor).scaleb(-decimals(currency))


def rescale(minor: int, read_as: str, currency: str) -> int:
    """Minor units read with `read_as`'s decimals, in `currency`'s (1000 read as BRL
    cents is 10.00: 10 yen)."""
    shift = decimals(currency) - decimals(read_as)
    if shift >= 0:
        return int(minor * 10 ** shift)
    return int((Decimal(minor).scaleb(shift)).quantize(Decimal(1), ROUND_HALF_EVEN))


@dataclass(frozen=True, slots=True)
class Exchange:
    """The store currency, and how many of its units one unit of each other currency buys."""

    store_currency: str = "BRL"
    rates: Mapping[str, Decimal] = field(default_factory=dict)

    def to_store(self, minor: int, currency: str) -> int | None:
        """`minor` units of `currency` in store-currency minor units; None without a rate."""
        if currency == self.store_currency:
            return minor
        rate = self.rates.get(currency)
        if rate is None:
            return None
        amount = as_decimal(minor, currency) * rate
        return int(amount.scaleb(decimals(self.store_currency))
                   .quantize(Decimal(1), ROUND_HALF_EVEN))
