"""The `cart` merge field: each customer's latest open or abandoned cart that is not empty,
its lines completed from the catalog."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import Row, bindparam, func, select
from sqlalchemy.orm import Session

from clientela.commerce.models import Cart, Product
from clientela.messaging.merge_fields.money import Money, line
from clientela.messaging.merge_fields.sql import in_lists, run

# Each customer's open or abandoned carts that are not empty, numbered from the latest change.
_NUMBERED = (select(Cart.id, func.row_number().over(
                 partition_by=Cart.customer_id,
                 order_by=(Cart.updated_at.desc(), Cart.id.desc())).label("number"))
             .where(Cart.customer_id.in_(bindparam("ids", expanding=True)),
                    Cart.status.in_(("open", "abandoned")), Cart.quantity > 0)
             .subquery())
_CARTS = (select(Cart.customer_id, Cart.id, Cart.source, Cart.status, Cart.currency,
                 Cart.items, Cart.quantity, Cart.value_cents, Cart.updated_at,
                 Cart.abandoned_at)
          .join(_NUMBERED, _NUMBERED.c.id == Cart.id)
          .where(_NUMBERED.c.number == 1))

_DESCRIPTION = ("name", "sku", "url", "image_url", "category", "brand")
_CATALOG = (select(Product.external_id, *(getattr(Product, name) for name in _DESCRIPTION))
            .where(Product.source == bindparam("source"),
                   Product.external_id.in_(bindparam("keys", expanding=True))))
# A product of the catalog by its source and its id there.
_Catalog = dict[tuple[str, Any], Row[Any]]


def latest_carts(session: Session, ids: list[int], money: Money) -> dict[int, dict[str, Any]]:
    """The `cart` field of each of `ids` that has one (at most IN_LIST_SIZE ids)."""
    carts = run(session, _CARTS, ids=ids).all()
    catalog = _catalog(session, carts)
    return {cart.customer_id: _cart(cart, catalog, money) for cart in carts}


def _cart(cart: Row[Any], catalog: _Catalog, money: Money) -> dict[str, Any]:
    lines = _described(cart.source, cart.items or [], catalog)
    items = [line(money, cart.currency, name=part.get("name"), sku=part.get("sku"),
                  quantity=int(part.get("quantity") or 0), price_cents=part.get("price_cents"),
                  category=part.get("category"), brand=part.get("brand"), url=part.get("url"),
                  image_url=part.get("image_url")) for part in lines]
    return {"id": cart.id, "status": cart.status, "currency": cart.currency or money.store_currency,
            "quantity": cart.quantity, "total": money(cart.value_cents, cart.currency),
            "total_amount": money.amount(cart.value_cents, cart.currency),
            "updated_at": cart.updated_at, "abandoned_at": cart.abandoned_at, "items": items}


def _incomplete(lines: list[dict[str, Any]]) -> set[str]:
    """The product keys of the lines the cart event left a field out of (an "add to cart"
    often names only the product)."""
    return {key for part in lines if any(part.get(name) is None for name in _DESCRIPTION)
            and (key := part.get("product_id") or part.get("sku"))}


def _catalog(session: Session, carts: Sequence[Row[Any]]) -> _Catalog:
    """The catalog's description of every product an incomplete cart line names: one
    statement per source of carts and IN_LIST_SIZE products."""
    wanted: dict[str, set[str]] = {}
    for cart in carts:
        wanted.setdefault(cart.source, set()).update(_incomplete(cart.items or []))
    return {(source, row.external_id): row for source, keys in wanted.items()
            for chunk in in_lists(keys) for row in run(session, _CATALOG, source=source,
                                                        keys=chunk)}


def _described(source: str, lines: list[dict[str, Any]], catalog: _Catalog
               ) -> list[dict[str, Any]]:
    """Cart lines completed from the catalog where the cart event left a field out."""
    if not _incomplete(lines):
        return lines
    described = []
    for part in lines:
        product = catalog.get((source, part.get("product_id") or part.get("sku")))
        described.append(part if product is None else {
            **part, **{name: part.get(name) if part.get(name) is not None
                       else getattr(product, name) for name in _DESCRIPTION}})
    return described
