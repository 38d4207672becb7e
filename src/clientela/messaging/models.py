"""E-mail templates, campaigns and their deliveries (one row per recipient)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import (
    Boolean,
    CheckConstraint,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from clientela.core.types import BigId, JSONType, UTCDateTime
from clientela.db import Base, one_of

CAMPAIGN_STATUSES = ("draft", "scheduled", "sending", "sent", "cancelled")
SEND_MODES = ("now", "at", "best_hour")
# pending: waiting for its time; sending: handed to a sender that has not reported back;
# sent: the relay (or the outbox) took it; failed: the relay refused it; skipped: not sent
# on purpose (consent withdrawn, suppressed, weekly cap); unconfirmed: its sender stopped
# mid-send, so it may or may not have gone, and it is never sent again.
DELIVERY_STATUSES = ("pending", "sending", "sent", "failed", "skipped", "unconfirmed")



class Template(Base):
    __tablename__ = "templates"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    name: Mapped[str] = mapped_column(String(200), unique=True)
    subject: Mapped[str] = mapped_column(String(500))
    html: Mapped[str] = mapped_column(Text)
    text: Mapped[str | None] = mapped_column(Text)  # null: derived from the HTML
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)


class Campaign(Base):
    __tablename__ = "campaigns"
    __table_args__ = (
        CheckConstraint(one_of("status", CAMPAIGN_STATUSES), name="status"),
        CheckConstraint(one_of("send_mode", SEND_MODES), name="send_mode"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    name: Mapped[str] = mapped_column(String(200), unique=True)
    subject: Mapped[str] = mapped_column(String(500))
    template_id: Mapped[int] = mapped_column(ForeignKey("templates.id"))
    segment_ids: Mapped[list[int]] = mapped_column(JSONType)
    exclude_segment_ids: Mapped[list[int]] = mapped_column(JSONType)
    tracking: Mapped[bool] = mapped_column(Boolean, default=True)
    throttle_per_second: Mapped[int | None] = mapped_column(Integer)
    status: Mapped[str] = mapped_column(String(16), default="draft")
    send_mode: Mapped[str] = mapped_column(String(16), default="now")
    send_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    audience_size: Mapped[int | None] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)
    started_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class Delivery(Base):
    """One message to one customer, of a campaign or of a scenario's step: the unique keys
    make each send happen once. It names its own template and subject, so any sender can
    render it."""

    __tablename__ = "deliveries"
    __table_args__ = (
        UniqueConstraint("campaign_id", "customer_id"),
        UniqueConstraint("enrolment_id", "step"),
        CheckConstraint(one_of("status", DELIVERY_STATUSES), name="status"),
        Index("ix_deliveries_campaign_status_due", "campaign_id", "status", "due_at"),
        # The weekly cap: what one customer was sent lately.
        Index("ix_deliveries_customer_sent", "customer_id", "sent_at"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    campaign_id: Mapped[int | None] = mapped_column(ForeignKey("campaigns.id"))
    enrolment_id: Mapped[int | None] = mapped_column(ForeignKey("enrolments.id"))
    step: Mapped[int | None] = mapped_column(Integer)
    template_id: Mapped[int] = mapped_column(ForeignKey("templates.id"))
    subject: Mapped[str] = mapped_column(String(500))
    tracking: Mapped[bool] = mapped_column(Boolean, default=True)
    coupon: Mapped[str | None] = mapped_column(String(100))  # a scenario step's {{ coupon }}
    customer_id: Mapped[int] = mapped_column(ForeignKey("customers.id"))
    email: Mapped[str] = mapped_column(String(320))
    status: Mapped[str] = mapped_column(String(16), default="pending")
    due_at: Mapped[datetime] = mapped_column(UTCDateTime)
    message_id: Mapped[str | None] = mapped_column(String(255), unique=True)
    claimed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    claimed_by: Mapped[str | None] = mapped_column(String(64))
    sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    detail: Mapped[str | None] = mapped_column(String(500))  # why it failed or was skipped
    unsubscribed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # Engagement, first of each: opens by people (not by proxies that fetch every image),
    # opens by such machines, clicks.
    opened_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    machine_opened_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    clicked_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    bounce: Mapped[str | None] = mapped_column(String(8))  # hard or soft
    bounced_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    complained_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
