"""Store-platform webhooks received: each kept once by its delivery id, then applied."""

from __future__ import annotations

from typing import Any

from pydantic import ValidationError
from sqlalchemy import select
from sqlalchemy.orm import Session

from clientela.commerce import shopify, woocommerce
from clientela.commerce.catalog import record_product
from clientela.commerce.models import WebhookDelivery
from clientela.commerce.payloads import object_at
from clientela.commerce.service import (
    add_refund,
    cancel_order,
    find_order,
    lock_order,
    record_order,
)
from clientela.core.clock import utcnow
from clientela.core.errors import InvalidInput
from clientela.core.money import Exchange
from clientela.customers import profile
from clientela.customers import service as customers
from clientela.customers.normalize import normalize_email
from clientela.customers.schemas import CustomerIn


def receive_shopify(*, session: Session, topic: str, delivery_id: str, payload: dict[str, Any],
                    exchange: Exchange, default_region: str) -> bool:
    """Apply a Shopify webhook unless this delivery was seen before; whether it was new.
    Privacy topics are recorded with the customer they name, for the privacy tools."""
    if _delivered(session, shopify.SOURCE, delivery_id):
        return False
    customer_id: int | None = None
    if topic in shopify.ORDER_TOPICS:
        customer_id = _shopify_order(session, payload, exchange, default_region)
    elif topic == "refunds/create":
        customer_id = _shopify_refund(session, payload, exchange)
    elif topic in shopify.CUSTOMER_TOPICS:
        fields = shopify.customer_fields(payload)
        if "email" in fields:
            customer_id = _upsert_customer(session, fields, default_region)
    elif topic in shopify.PRODUCT_TOPICS:
        record_product(session=session, source=shopify.SOURCE,
                       record=shopify.product_record(payload, exchange.store_currency))
    elif topic in shopify.PRIVACY_TOPICS:
        customer_id = _known_customer(session, object_at(payload, "customer")
                                      .get("email"))
    session.add(WebhookDelivery(source=shopify.SOURCE, delivery_id=delivery_id[:255],
                                topic=topic[:100], customer_id=customer_id, payload=payload,
                                received_at=utcnow()))
    session.flush()
    return True


def receive_woocommerce(*, session: Session, topic: str, payload: dict[str, Any],
                        exchange: Exchange, default_region: str) -> bool:
    """Apply a WooCommerce webhook unless the same change of the same resource was seen
    before; whether it was new."""
    key = woocommerce.delivery_key(topic, payload)
    if _delivered(session, woocommerce.SOURCE, key):
        return False
    customer_id: int | None = None
    kind, _, action = topic.partition(".")
    if kind == "order" and action == "deleted":
        customer_id = _woocommerce_deleted_order(session, payload)
    elif kind == "order":
        customer_id = _woocommerce_order(session, payload, exchange, default_region)
    elif kind == "customer" and action != "deleted":
        fields = woocommerce.profile_fields(payload)
        if "email" in fields:
            customer_id = _upsert_customer(session, fields, default_region)
    elif kind == "customer":
        customer_id = _known_customer(session, payload.get("email"))
    elif kind == "product" and action != "deleted":
        record_product(session=session, source=woocommerce.SOURCE,
                       record=woocommerce.product_record(payload, exchange.store_currency))
    session.add(WebhookDelivery(source=woocommerce.SOURCE, delivery_id=key[:255],
                                topic=topic[:100], customer_id=customer_id, payload=payload,
                                received_at=utcnow()))
    session.flush()
    return True


def _woocommerce_order(session: Session, payload: dict[str, Any], exchange: Exchange,
                       region: str) -> int:
    record = woocommerce.order_record(payload)
    lock_order(session=session, source=woocommerce.SOURCE, external_id=record.external_id)
    existing = find_order(session=session, source=woocommerce.SOURCE,
                          external_id=record.external_id)
    if woocommerce.order_email(payload) is not None:
        customer_id = _upsert_customer(session, woocommerce.profile_fields(payload), region)
    elif existing is not None:
        customer_id = existing.customer_id
    else:
        customer_id = customers.create_customer(session=session, seen_at=record.placed_at)
    record_order(session=session, source=woocommerce.SOURCE, record=record,
                 customer_id=customer_id, exchange=exchange)
    return customer_id


def _woocommerce_deleted_order(session: Session, payload: dict[str, Any]) -> int | None:
    """A deleted order stops counting, as a cancelled one; its record stays."""
    external_id = str(payload.get("id"))
    lock_order(session=session, source=woocommerce.SOURCE, external_id=external_id)
    order = find_order(session=session, source=woocommerce.SOURCE, external_id=external_id)
    if order is None:
        return None
    cancel_order(session=session, order=order)
    return order.customer_id


def _shopify_order(session: Session, payload: dict[str, Any], exchange: Exchange,
                   region: str) -> int:
    record = shopify.order_record(payload)
    lock_order(session=session, source=shopify.SOURCE, external_id=record.external_id)
    existing = find_order(session=session, source=shopify.SOURCE, external_id=record.external_id)
    email = shopify.order_email(payload)
    if existing is not None and email is None:
        customer_id = existing.customer_id
    elif email is not None:
        customer_id = _upsert_customer(session, {"email": email, **shopify.order_names(payload)},
                                       region)
    else:  # a guest order with no e-mail: a customer of its own
        customer_id = customers.create_customer(session=session, seen_at=record.placed_at)
    record_order(session=session, source=shopify.SOURCE, record=record,
                 customer_id=customer_id, exchange=exchange)
    return customer_id


def _shopify_refund(session: Session, payload: dict[str, Any], exchange: Exchange
                    ) -> int | None:
    order_id = payload.get("order_id")
    if type(order_id) not in (int, str):
        return None
    lock_order(session=session, source=shopify.SOURCE, external_id=str(order_id))
    order = find_order(session=session, source=shopify.SOURCE, external_id=str(order_id))
    if order is None:
        return None  # recorded; the order's own webhook will carry its refunds
    _, refund = shopify.refund_record(payload, order.currency)
    add_refund(session=session, order=order, refund=refund, exchange=exchange)
    return order.customer_id


def _upsert_customer(session: Session, fields: dict[str, Any], region: str) -> int:
    try:
        data = CustomerIn(**fields)
    except ValidationError as error:
        problem = error.errors()[0]
        where = ".".join(str(part) for part in problem["loc"]) or "customer"
        raise InvalidInput(f"customer.{where}: {problem['msg']}", code="invalid_webhook") \
            from None
    customer, _created = profile.upsert_customer(session=session, data=data,
                                                 default_region=region)
    return customer.id


def _known_customer(session: Session, email: Any) -> int | None:
    normalized = normalize_email(email)
    if normalized is None:
        return None
    return customers.identity_owner(session=session, kind="email", value=normalized)


def _delivered(session: Session, source: str, delivery_id: str) -> bool:
    return session.scalar(select(WebhookDelivery.id).where(
        WebhookDelivery.source == source,
        WebhookDelivery.delivery_id == delivery_id[:255])) is not None
