"""Customers and everything that hangs off one: identities, tags, trait history, merges."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    Date,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from clientela.core.types import BigId, JSONType, UTCDateTime
from clientela.db import Base

IDENTITY_KINDS = ("user_id", "anonymous_id", "email", "phone")
CONSENT_STATES = ("subscribed", "unsubscribed", "unknown")


class Customer(Base):
    __tablename__ = "customers"
    __table_args__ = (
        CheckConstraint(
            "email_marketing IN ('subscribed','unsubscribed','unknown')", name="email_marketing"
        ),
        Index("ix_customers_active_last_seen", "merged_into_id", "last_seen_at"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    email: Mapped[str | None] = mapped_column(String(320), index=True)
    phone: Mapped[str | None] = mapped_column(String(32), index=True)
    first_name: Mapped[str | None] = mapped_column(String(200))
    last_name: Mapped[str | None] = mapped_column(String(200))
    gender: Mapped[str | None] = mapped_column(String(32))
    birthday: Mapped[date | None] = mapped_column(Date)
    locale: Mapped[str | None] = mapped_column(String(35))
    city: Mapped[str | None] = mapped_column(String(200))
    region: Mapped[str | None] = mapped_column(String(200))
    country: Mapped[str | None] = mapped_column(String(100), index=True)
    # Every trait as last received (Segment's keys); the columns above are read from it.
    traits: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict)
    # When each trait's current value was observed, so a late event never wins over a newer one.
    trait_times: Mapped[dict[str, str]] = mapped_column(JSONType, default=dict)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    first_seen_at: Mapped[datetime] = mapped_column(UTCDateTime)
    last_seen_at: Mapped[datetime] = mapped_column(UTCDateTime)
    merged_into_id: Mapped[int | None] = mapped_column(ForeignKey("customers.id"))
    email_marketing: Mapped[str] = mapped_column(String(16), default="unknown")
    email_marketing_source: Mapped[str | None] = mapped_column(String(100))
    email_marketing_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    identify_count: Mapped[int] = mapped_column(Integer, default=0)
    track_count: Mapped[int] = mapped_column(Integer, default=0)
    page_count: Mapped[int] = mapped_column(Integer, default=0)
    screen_count: Mapped[int] = mapped_column(Integer, default=0)
    group_count: Mapped[int] = mapped_column(Integer, default=0)
    alias_count: Mapped[int] = mapped_column(Integer, default=0)
    orders_count: Mapped[int] = mapped_column(Integer, default=0)
    revenue_cents: Mapped[int] = mapped_column(BigInteger, default=0)
    first_order_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    last_order_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # RFM scores 1-5 and group, as of `rfm_at` (NULL for customers without orders).
    rfm_recency: Mapped[int | None] = mapped_column(Integer)
    rfm_frequency: Mapped[int | None] = mapped_column(Integer)
    rfm_monetary: Mapped[int | None] = mapped_column(Integer)
    rfm_group: Mapped[str | None] = mapped_column(String(32), index=True)
    rfm_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # Predictions (BG/NBD and Gamma-Gamma), as of `predicted_at`.
    p_alive: Mapped[float | None] = mapped_column(Float)
    churn_risk: Mapped[float | None] = mapped_column(Float)
    expected_orders: Mapped[float | None] = mapped_column(Float)  # over the CLV horizon
    predicted_clv_cents: Mapped[int | None] = mapped_column(BigInteger)
    inactive: Mapped[bool | None] = mapped_column()
    predicted_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class Identity(Base):
    """One way of recognising a customer; each (kind, value) belongs to one customer."""

    __tablename__ = "identities"
    __table_args__ = (
        UniqueConstraint("kind", "value"),
        CheckConstraint("kind IN ('user_id','anonymous_id','email','phone')", name="kind"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    customer_id: Mapped[int] = mapped_column(ForeignKey("customers.id"), index=True)
    kind: Mapped[str] = mapped_column(String(16))
    value: Mapped[str] = mapped_column(String(320))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)


class CustomerTag(Base):
    __tablename__ = "customer_tags"
    __table_args__ = (Index("ix_customer_tags_tag", "tag"),)

    customer_id: Mapped[int] = mapped_column(ForeignKey("customers.id"), primary_key=True)
    tag: Mapped[str] = mapped_column(String(100), primary_key=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)


class TraitChange(Base):
    """The history of a trait: each value it took, when it was observed and from where."""

    __tablename__ = "trait_changes"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    customer_id: Mapped[int] = mapped_column(ForeignKey("customers.id"), index=True)
    key: Mapped[str] = mapped_column(String(200))
    old_value: Mapped[Any] = mapped_column(JSONType, nullable=True)
    value: Mapped[Any] = mapped_column(JSONType, nullable=True)
    observed_at: Mapped[datetime] = mapped_column(UTCDateTime)
    source: Mapped[str] = mapped_column(String(32))


class CustomerMerge(Base):
    """A merge of `dropped` into `kept`, with what is needed to split them again."""

    __tablename__ = "customer_merges"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    kept_id: Mapped[int] = mapped_column(ForeignKey("customers.id"), index=True)
    dropped_id: Mapped[int] = mapped_column(ForeignKey("customers.id"), index=True)
    reason: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    undone_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    snapshot: Mapped[dict[str, Any]] = mapped_column(JSONType)


class IdentityConflict(Base):
    """Two customers that looked like one person but were kept apart (different user ids)."""

    __tablename__ = "identity_conflicts"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    customer_id: Mapped[int] = mapped_column(ForeignKey("customers.id"), index=True)
    other_customer_id: Mapped[int] = mapped_column(ForeignKey("customers.id"), index=True)
    kind: Mapped[str] = mapped_column(String(16))
    value: Mapped[str] = mapped_column(String(320))
    reason: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)


SUPPRESSION_REASONS = ("hard_bounce", "complaint", "manual")


class Suppression(Base):
    """An address no marketing e-mail goes to (it bounced for good, complained, or was put
    here by hand), whoever it belongs to now."""

    __tablename__ = "suppressions"
    __table_args__ = (
        CheckConstraint("reason IN ('hard_bounce','complaint','manual')", name="reason"),
    )

    email: Mapped[str] = mapped_column(String(320), primary_key=True)  # normalised
    reason: Mapped[str] = mapped_column(String(16))
    # Whose address it was when suppressed (for erase and export); null when unknown.
    customer_id: Mapped[int | None] = mapped_column(ForeignKey("customers.id"), index=True)
    detail: Mapped[str | None] = mapped_column(String(500))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
