"""The store's catalog, its orders with their items and refunds, and shopping carts.

Money is integer minor units (cents) in the row's own currency; orders also keep their total
in the store currency, converted when they are written, for reports and profiles.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    ForeignKey,
    Index,
    Integer,
    String,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from clientela.core.types import BigId, JSONType, UTCDateTime
from clientela.db import Base, one_of

ORDER_STATUSES = ("placed", "paid", "fulfilled", "cancelled", "refunded")
CART_STATUSES = ("open", "converted", "abandoned")
# Where a row came from; external ids are unique within one source.
SOURCES = ("events", "shopify", "woocommerce", "import")
EVENTS_SOURCE = "events"  # what the tracking API's e-commerce events create



class Product(Base):
    __tablename__ = "products"
    __table_args__ = (
        UniqueConstraint("source", "external_id"),
        CheckConstraint(one_of("source", SOURCES), name="source"),
        Index("ix_products_sku", "sku"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    source: Mapped[str] = mapped_column(String(16))
    external_id: Mapped[str] = mapped_column(String(255))
    sku: Mapped[str | None] = mapped_column(String(255))
    name: Mapped[str | None] = mapped_column(String(500))
    # "Shoes > Running": the path from the top category down.
    category: Mapped[str | None] = mapped_column(String(500))
    brand: Mapped[str | None] = mapped_column(String(255))
    price_cents: Mapped[int | None] = mapped_column(BigInteger)
    currency: Mapped[str | None] = mapped_column(String(3))
    url: Mapped[str | None] = mapped_column(String(2000))
    image_url: Mapped[str | None] = mapped_column(String(2000))
    stock: Mapped[int | None] = mapped_column(Integer)
    active: Mapped[bool] = mapped_column(default=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)


class Order(Base):
    __tablename__ = "orders"
    __table_args__ = (
        UniqueConstraint("source", "external_id"),
        CheckConstraint(one_of("source", SOURCES), name="source"),
        CheckConstraint(one_of("status", ORDER_STATUSES), name="status"),
        Index("ix_orders_customer_placed", "customer_id", "placed_at"),
        Index("ix_orders_origin", "origin_customer_id"),
        Index("ix_orders_placed", "placed_at"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    source: Mapped[str] = mapped_column(String(16))
    external_id: Mapped[str] = mapped_column(String(255))
    customer_id: Mapped[int] = mapped_column(ForeignKey("customers.id"))
    # The customer the order first belonged to; a split of a merge moves it back there.
    origin_customer_id: Mapped[int] = mapped_column(ForeignKey("customers.id"))
    status: Mapped[str] = mapped_column(String(16))
    currency: Mapped[str] = mapped_column(String(3))
    subtotal_cents: Mapped[int | None] = mapped_column(BigInteger)
    discount_cents: Mapped[int] = mapped_column(BigInteger, default=0)
    shipping_cents: Mapped[int] = mapped_column(BigInteger, default=0)
    tax_cents: Mapped[int] = mapped_column(BigInteger, default=0)
    total_cents: Mapped[int] = mapped_column(BigInteger)
    refunded_cents: Mapped[int] = mapped_column(BigInteger, default=0)
    # Total less refunds in the store currency; NULL when there is no rate for `currency`.
    net_store_cents: Mapped[int | None] = mapped_column(BigInteger)
    coupon: Mapped[str | None] = mapped_column(String(255))
    # web, app, marketplace, store (a physical shop), phone, ...
    channel: Mapped[str] = mapped_column(String(64))
    placed_at: Mapped[datetime] = mapped_column(UTCDateTime)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)


class OrderItem(Base):
    """A line of an order as sold: the product may change or go, the line stays."""

    __tablename__ = "order_items"
    __table_args__ = (Index("ix_order_items_product", "product_id"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    order_id: Mapped[int] = mapped_column(ForeignKey("orders.id", ondelete="CASCADE"),
                                          index=True)
    product_id: Mapped[int | None] = mapped_column(ForeignKey("products.id"))
    sku: Mapped[str | None] = mapped_column(String(255))
    name: Mapped[str | None] = mapped_column(String(500))
    category: Mapped[str | None] = mapped_column(String(500))
    brand: Mapped[str | None] = mapped_column(String(255))
    quantity: Mapped[int] = mapped_column(Integer)
    unit_price_cents: Mapped[int] = mapped_column(BigInteger)


class Refund(Base):
    __tablename__ = "refunds"
    __table_args__ = (UniqueConstraint("order_id", "external_id"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    order_id: Mapped[int] = mapped_column(ForeignKey("orders.id", ondelete="CASCADE"),
                                          index=True)
    # The platform's refund id, or the messageId of the event that reported it.
    external_id: Mapped[str] = mapped_column(String(255))
    amount_cents: Mapped[int] = mapped_column(BigInteger)
    reason: Mapped[str | None] = mapped_column(String(500))
    refunded_at: Mapped[datetime] = mapped_column(UTCDateTime)


class EarlyOrderEvent(Base):
    """An e-commerce event about an order not known yet: events arrive out of order (batches,
    retries), so a refund or a cancellation can overtake its Order Completed. It waits here,
    as read, and is applied (then deleted) right after the event that starts its order."""

    __tablename__ = "early_order_events"
    __table_args__ = (Index("ix_early_order_events_order", "order_external_id"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    # The order's external id among the orders of the events source.
    order_external_id: Mapped[str] = mapped_column(String(255))
    customer_id: Mapped[int] = mapped_column(ForeignKey("customers.id"), index=True)
    origin_customer_id: Mapped[int] = mapped_column(ForeignKey("customers.id"))
    message_id: Mapped[str] = mapped_column(String(255))
    happened_at: Mapped[datetime] = mapped_column(UTCDateTime)
    # The event's `ecommerce.Change`, as `Change.as_wire` gives it.
    change: Mapped[list[Any]] = mapped_column(JSONType)
    received_at: Mapped[datetime] = mapped_column(UTCDateTime)


class WebhookDelivery(Base):
    """A store platform's webhook as received, kept once per delivery id, with the customer
    it concerns when known (privacy requests are acted on from here)."""

    __tablename__ = "webhook_deliveries"
    __table_args__ = (
        UniqueConstraint("source", "delivery_id"),
        CheckConstraint(one_of("source", SOURCES), name="source"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    source: Mapped[str] = mapped_column(String(16))
    delivery_id: Mapped[str] = mapped_column(String(255))
    topic: Mapped[str] = mapped_column(String(100))
    customer_id: Mapped[int | None] = mapped_column(ForeignKey("customers.id"), index=True)
    payload: Mapped[dict[str, Any]] = mapped_column(JSONType)
    received_at: Mapped[datetime] = mapped_column(UTCDateTime)


class Cart(Base):
    __tablename__ = "carts"
    __table_args__ = (
        UniqueConstraint("source", "external_id"),
        CheckConstraint(one_of("source", SOURCES), name="source"),
        CheckConstraint(one_of("status", CART_STATUSES), name="status"),
        Index("ix_carts_customer", "customer_id", "status"),
        Index("ix_carts_status_updated", "status", "updated_at"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    source: Mapped[str] = mapped_column(String(16))
    # The shop's cart id; NULL for the one cart of a customer whose shop sends none.
    external_id: Mapped[str | None] = mapped_column(String(255))
    customer_id: Mapped[int] = mapped_column(ForeignKey("customers.id"))
    origin_customer_id: Mapped[int] = mapped_column(ForeignKey("customers.id"), index=True)
    status: Mapped[str] = mapped_column(String(16))
    currency: Mapped[str | None] = mapped_column(String(3))
    # [{"product_id", "sku", "name", "category", "brand", "quantity", "price_cents", "url",
    #   "image_url"}], as the shop last described them.
    items: Mapped[list[dict[str, Any]]] = mapped_column(JSONType)
    quantity: Mapped[int] = mapped_column(Integer, default=0)
    value_cents: Mapped[int] = mapped_column(BigInteger, default=0)
    checkout_started_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    order_id: Mapped[int | None] = mapped_column(ForeignKey("orders.id"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)
    abandoned_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
