"""Saved segments, who is in each, who entered and left when, and their size over time."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import BigInteger, CheckConstraint, ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from clientela.core.types import BigId, JSONType, UTCDateTime
from clientela.db import Base


class Segment(Base):
    __tablename__ = "segments"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    name: Mapped[str] = mapped_column(String(200), unique=True)
    description: Mapped[str | None] = mapped_column(Text)
    rule: Mapped[dict[str, Any]] = mapped_column(JSONType)
    # As of the last computation (NULL before the first).
    size: Mapped[int | None] = mapped_column(Integer)
    computed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # Events up to this id have been looked at (see `service.refresh_touched`).
    seen_event_id: Mapped[int | None] = mapped_column(BigInteger)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)


class SegmentMember(Base):
    __tablename__ = "segment_members"

    segment_id: Mapped[int] = mapped_column(ForeignKey("segments.id", ondelete="CASCADE"),
                                            primary_key=True)
    customer_id: Mapped[int] = mapped_column(ForeignKey("customers.id"), primary_key=True,
                                             index=True)
    entered_at: Mapped[datetime] = mapped_column(UTCDateTime)


class SegmentChange(Base):
    """A customer entering or leaving a segment: what automation triggers on."""

    __tablename__ = "segment_changes"
    __table_args__ = (
        CheckConstraint("change IN ('entered','left')", name="change"),
        Index("ix_segment_changes_segment_at", "segment_id", "at"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    segment_id: Mapped[int] = mapped_column(ForeignKey("segments.id", ondelete="CASCADE"))
    customer_id: Mapped[int] = mapped_column(ForeignKey("customers.id"), index=True)
    change: Mapped[str] = mapped_column(String(8))
    at: Mapped[datetime] = mapped_column(UTCDateTime)


class SegmentSize(Base):
    __tablename__ = "segment_sizes"

    segment_id: Mapped[int] = mapped_column(ForeignKey("segments.id", ondelete="CASCADE"),
                                            primary_key=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime, primary_key=True)
    size: Mapped[int] = mapped_column(Integer)
