"""Amounts as templates show them, and the lines of orders and carts that carry them."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from functools import lru_cache
from typing import Any

from clientela.core.money import as_decimal, decimals


@dataclass(frozen=True)
class Money:
    """Amounts written as the store's market writes them: "R$ 1.234,56" for a Brazilian
    store (pt-BR), "$1,234.56" for any other (en-US); each amount in its own currency."""

    store_currency: str

    def __call__(self, minor: int | None, currency: str | None) -> str | None:
        if minor is None:
            return None
        return _written(self.store_currency, minor, currency or self.store_currency)

    def amount(self, minor: int | None, currency: str | None) -> Decimal | None:
        """The amount as a number, for comparisons in templates (`cart.total_amount > 100`)."""
        return None if minor is None else as_decimal(minor, currency or self.store_currency)


_PT_BR = {"BRL": "R$", "USD": "US$", "EUR": "€", "GBP": "£", "JPY": "JP¥"}
_EN_US = {"USD": "$", "BRL": "R$", "EUR": "€", "GBP": "£", "JPY": "¥"}
_SWAP_SEPARATORS = str.maketrans(",.", ".,")


# A batch writes the same few prices many times (every customer's recommendations).
@lru_cache(maxsize=4096)
def _written(store_currency: str, minor: int, currency: str) -> str:
    number = f"{abs(as_decimal(minor, currency)):,.{decimals(currency)}f}"
    brazilian = store_currency == "BRL"
    symbol = (_PT_BR if brazilian else _EN_US).get(currency, currency)
    if brazilian:
        number = number.translate(_SWAP_SEPARATORS)
    space = " " if brazilian or symbol.isalpha() else ""
    return f"{'-' if minor < 0 else ''}{symbol}{space}{number}"


def line(money: Money, currency: str | None, *, name: str | None, sku: str | None,
         quantity: int, price_cents: int | None, category: str | None, brand: str | None,
         url: str | None, image_url: str | None) -> dict[str, Any]:
    """A line of an order or a cart, as templates show it."""
    total = None if price_cents is None else price_cents * quantity
    return {"name": name, "sku": sku, "quantity": quantity,
            "price": money(price_cents, currency), "total": money(total, currency),
            "image_url": image_url, "url": url, "category": category, "brand": brand}
