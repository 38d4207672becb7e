"""Money is exact: minor units per currency, conversion to the store currency."""

from __future__ import annotations

from decimal import Decimal

import pytest

from clientela.core.errors import InvalidInput
from clientela.core.money import Exchange, currency_code, to_minor


def test_amounts_are_exact_minor_units_of_their_currency():
    assert to_minor(0.1, "total") + to_minor(0.2, "total") == 30
    assert to_minor("19.995", "total") == 2000  # half to even
    assert to_minor("19.985", "total") == 1998
    assert to_minor(1500, "total", "JPY") == 1500
    assert to_minor("1.2345", "total", "KWD") == 1234


@pytest.mark.parametrize(("value", "message"), [
    ("NaN", "total: must be a finite number"),
    ("abc", "total: 'abc' is not a number"),
    (-1, "total: must be between 0 and 10000000000000"),
    (True, "total: must be a number"),
    ([1], "total: must be a number"),
])
def test_bad_amounts_name_the_field_and_the_rule(value, message):
    with pytest.raises(InvalidInput) as raised:
        to_minor(value, "total")
    assert raised.value.message == message
    assert raised.value.code == "invalid_amount"


def test_currency_codes():
    assert currency_code(" usd ", "currency") == "USD"
    with pytest.raises(InvalidInput,
                       match="currency: must be a three-letter ISO 4217 currency code"):
        currency_code("dollars", "currency")


def test_conversion_to_the_store_currency_uses_the_rate_table():
    exchange = Exchange(store_currency="BRL", rates={"USD": Decimal("5.10"),
                                                     "JPY": Decimal("0.0342")})
    assert exchange.to_store(1999, "BRL") == 1999
    assert exchange.to_store(1000, "USD") == 5100
    assert exchange.to_store(1500, "JPY") == 5130  # 1500 yen = 51.30 reais
    assert exchange.to_store(1000, "EUR") is None
