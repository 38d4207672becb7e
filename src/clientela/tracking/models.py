"""The event store."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import ForeignKey, Index, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from clientela.core.types import BigId, JSONType, UTCDateTime
from clientela.db import Base

# Event properties that segments filter by most (Segment's e-commerce spec): each has a
# partial index on (its value, event, timestamp, customer_id), made by migration
# a41c9e07b3d2 (an expression index, which the model cannot declare for both databases),
# so that "viewed a product of category X" reads the matching events only.
INDEXED_PROPERTIES = ("category", "product_id")


class Event(Base):
    __tablename__ = "events"
    __table_args__ = (
        # message_id first: the duplicate check looks up many ids of one source at once.
        UniqueConstraint("message_id", "source_id"),
        # On PostgreSQL it also holds the event name: "did X lately?" asked of one customer
        # (a segment's "did not") is answered from the index alone.
        Index("ix_events_customer_time", "customer_id", "timestamp",
              postgresql_include=["event"]),
        # Segments ask "who did X within N days": one range of this index per question,
        # answered from the index alone.
        Index("ix_events_event_time", "event", "timestamp", "customer_id"),
        Index("ix_events_origin", "origin_customer_id"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    source_id: Mapped[int] = mapped_column(ForeignKey("api_keys.id"))
    message_id: Mapped[str] = mapped_column(String(255))
    customer_id: Mapped[int] = mapped_column(ForeignKey("customers.id"))
    # The customer the event was first resolved to; a split of a merge moves it back there.
    origin_customer_id: Mapped[int] = mapped_column(ForeignKey("customers.id"))
    type: Mapped[str] = mapped_column(String(8))
    event: Mapped[str | None] = mapped_column(String(255))
    user_id: Mapped[str | None] = mapped_column(String(255))
    anonymous_id: Mapped[str | None] = mapped_column(String(255))
    timestamp: Mapped[datetime] = mapped_column(UTCDateTime)
    original_timestamp: Mapped[datetime | None] = mapped_column(UTCDateTime)
    sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    received_at: Mapped[datetime] = mapped_column(UTCDateTime)
    properties: Mapped[dict[str, Any]] = mapped_column(JSONType)
    context: Mapped[dict[str, Any]] = mapped_column(JSONType)
    # The rest of the call as sent: traits, groupId, previousId, name, category, integrations.
    details: Mapped[dict[str, Any]] = mapped_column(JSONType)

    @property
    def traits(self) -> dict[str, Any]:
        """The traits an identify or group call carried."""
        traits = (self.details or {}).get("traits")
        return traits if isinstance(traits, dict) else {}
