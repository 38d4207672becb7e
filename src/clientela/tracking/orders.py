"""What order events (Segment e-commerce spec v2) add to a customer's revenue."""

from __future__ import annotations

from decimal import Decimal, InvalidOperation
from typing import Any

from clientela.core.errors import InvalidInput

ORDER_COMPLETED = "Order Completed"
ORDER_REFUNDED = "Order Refunded"
ORDER_EVENTS = (ORDER_COMPLETED, ORDER_REFUNDED)
_CENT = Decimal("0.01")
# Ten trillion: far beyond any order, and its cents still add up safely in 64 bits.
MAX_AMOUNT = Decimal("10000000000000")


def to_cents(value: Any, field: str) -> int:
    """Exact minor units from a JSON number or numeric string; never through a float sum."""
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise InvalidInput(f"{field}: must be a number", code="invalid_amount")
    try:
        amount = Decimal(str(value))
    except InvalidOperation:
        raise InvalidInput(f"{field}: {str(value)[:30]!r} is not a number",
                           code="invalid_amount") from None
    if not amount.is_finite():
        raise InvalidInput(f"{field}: must be a finite number", code="invalid_amount")
    if not 0 <= amount <= MAX_AMOUNT:
        raise InvalidInput(f"{field}: must be between 0 and {MAX_AMOUNT}", code="invalid_amount")
    return int((amount.quantize(_CENT) * 100).to_integral_value())


def _products_cents(properties: dict[str, Any]) -> int | None:
    products = properties.get("products")
    if not isinstance(products, list) or not products:
        return None
    total = 0
    for position, product in enumerate(products):
        if not isinstance(product, dict) or "price" not in product:
            return None
        quantity = product.get("quantity", 1)
        if isinstance(quantity, bool) or not isinstance(quantity, int) or quantity < 0:
            raise InvalidInput(f"properties.products[{position}].quantity: must be a "
                               "non-negative integer", code="invalid_quantity")
        total += to_cents(product["price"], f"properties.products[{position}].price") * quantity
    return total


def order_amount_cents(properties: dict[str, Any]) -> int | None:
    """The order's amount: `total`, else `revenue`, else the sum of its products; or None."""
    for key in ("total", "revenue", "value"):
        if properties.get(key) is not None:
            return to_cents(properties[key], f"properties.{key}")
    return _products_cents(properties)


def revenue_effect_cents(event: str | None, properties: dict[str, Any]) -> int | None:
    """Signed revenue for an order event (refunds negative; None for a refund of unknown size
    or for events that are not orders)."""
    if event == ORDER_COMPLETED:
        return order_amount_cents(properties) or 0
    if event == ORDER_REFUNDED:
        amount = order_amount_cents(properties)
        return None if amount is None else -abs(amount)
    return None
