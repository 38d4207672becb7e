"""Shopping carts: filled and emptied by cart events, converted by the order that follows,
abandoned when left alone."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import bindparam, select, update
from sqlalchemy.orm import Session

from clientela.commerce.ecommerce import (
    CHECKOUT_STARTED,
    ORDER_COMPLETED,
    PRODUCT_ADDED,
    PRODUCT_REMOVED,
    Change,
    Happened,
    Line,
)
from clientela.commerce.models import EVENTS_SOURCE, Cart


def apply_carts(session: Session, happened: list[Happened], order_ids: dict[str, int],
                currency: str) -> None:
    """Fold cart events into carts, and mark the cart an Order Completed came from as
    converted into that order (`order_ids`: the orders of this write by external id)."""
    if not happened:
        return
    carts = _CartBook(session, happened, currency)
    for item in happened:
        change = item.change
        if change.event == ORDER_COMPLETED:
            cart = carts.find(item)
            order_id = order_ids.get(item.order_key)
            if cart is not None and order_id is not None and cart.status != "converted":
                cart.status, cart.order_id, cart.updated_at = "converted", order_id, item.at
                carts.close(item)
            continue
        cart = carts.find(item) or carts.open(item)
        _change_items(cart, change)
        if change.event == CHECKOUT_STARTED:
            cart.checkout_started_at = item.at
        cart.status, cart.abandoned_at = "open", None
        cart.updated_at = max(cart.updated_at, item.at)
    session.flush()


class _CartBook:
    """The carts of one write, found by cart id or as their customer's cart without one."""

    def __init__(self, session: Session, happened: list[Happened], currency: str) -> None:
        self.session = session
        self.currency = currency
        ids = {item.change.cart_id for item in happened if item.change.cart_id}
        self.by_id = {cart.external_id: cart for cart in session.scalars(
            _CARTS_BY_ID, {"ids": sorted(ids)})} if ids else {}
        owners = {item.customer_id for item in happened if not item.change.cart_id}
        self.by_customer: dict[int, Cart] = {}
        if owners:
            for cart in session.scalars(_CUSTOMER_CARTS, {"owners": sorted(owners)}):
                self.by_customer[cart.customer_id] = cart  # the most recent one wins

    def find(self, item: Happened) -> Cart | None:
        if item.change.cart_id:
            return self.by_id.get(item.change.cart_id)
        return self.by_customer.get(item.customer_id)

    def close(self, item: Happened) -> None:
        """A converted cart takes no more products: the next ones start a new cart."""
        if not item.change.cart_id:
            self.by_customer.pop(item.customer_id, None)

    def open(self, item: Happened) -> Cart:
        cart = Cart(source=EVENTS_SOURCE, external_id=item.change.cart_id,
                    customer_id=item.customer_id, origin_customer_id=item.origin_id,
                    status="open", currency=item.change.currency or self.currency, items=[],
                    quantity=0,
                    value_cents=0, created_at=item.at, updated_at=item.at)
        self.session.add(cart)
        if item.change.cart_id:
            self.by_id[item.change.cart_id] = cart
        else:
            self.by_customer[item.customer_id] = cart
        return cart


# Built once: statements cost more to build than to run on the few carts a write touches.
_CARTS_BY_ID = select(Cart).where(Cart.source == EVENTS_SOURCE,
                                  Cart.external_id.in_(bindparam("ids", expanding=True)))
_CUSTOMER_CARTS = (select(Cart).where(Cart.source == EVENTS_SOURCE, Cart.external_id.is_(None),
                                      Cart.customer_id.in_(bindparam("owners", expanding=True)),
                                      Cart.status != "converted")
                   .order_by(Cart.updated_at))


def _change_items(cart: Cart, change: Change) -> None:
    items = [dict(line) for line in cart.items or []]
    if change.event in (PRODUCT_ADDED, PRODUCT_REMOVED):
        if not change.lines:
            return
        line = change.lines[0]
        found = next((entry for entry in items if entry.get("key") == line.cart_key), None)
        if change.event == PRODUCT_ADDED:
            if found is None:
                items.append({**_cart_line(line), "quantity": 0})
                found = items[-1]
            found.update({k: v for k, v in _cart_line(line).items()
                          if v is not None and k != "quantity"})
            found["quantity"] += line.quantity
        elif found is not None:
            found["quantity"] -= line.quantity
            if found["quantity"] <= 0:
                items.remove(found)
    elif change.lines:  # Cart Viewed, Checkout Started: the cart as the shop shows it
        items = [_cart_line(line) for line in change.lines]
    cart.items = items
    cart.currency = change.currency or cart.currency
    cart.quantity = sum(entry["quantity"] for entry in items)
    cart.value_cents = sum((entry.get("price_cents") or 0) * entry["quantity"]
                           for entry in items)


def _cart_line(line: Line) -> dict[str, Any]:
    return {"key": line.cart_key, "product_id": line.product_id, "sku": line.sku, "name": line.name,
            "category": line.category, "brand": line.brand, "quantity": line.quantity,
            "price_cents": line.price_cents, "url": line.url, "image_url": line.image_url}


def abandon_carts(*, session: Session, now: datetime, after_minutes: int) -> int:
    """Mark open carts with items and no change for `after_minutes` as abandoned; how many."""
    result = session.execute(update(Cart).where(
        Cart.status == "open", Cart.quantity > 0,
        Cart.updated_at < now - timedelta(minutes=after_minutes),
    ).values(status="abandoned", abandoned_at=now))
    return int(result.rowcount or 0)  # type: ignore[attr-defined]
