"""Scenarios and the customers going through them (enrolments)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    Boolean,
    CheckConstraint,
    ForeignKey,
    Index,
    Integer,
    String,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from clientela.core.types import BigId, JSONType, UTCDateTime
from clientela.db import Base

REENTRY = ("never", "after_exit", "always")
ENROLMENT_STATUSES = ("active", "completed", "converted", "exited")


class Scenario(Base):
    """A trigger (who enters, and when), steps (what happens to them), a goal (what ends
    it as a success) and the rules of entering again and of quiet hours."""

    __tablename__ = "scenarios"
    __table_args__ = (
        CheckConstraint("reentry IN ('never','after_exit','always')", name="reentry"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    name: Mapped[str] = mapped_column(String(200), unique=True)
    ready_made: Mapped[str | None] = mapped_column(String(32))
    trigger: Mapped[dict[str, Any]] = mapped_column(JSONType)
    steps: Mapped[list[dict[str, Any]]] = mapped_column(JSONType)
    goal_event: Mapped[str | None] = mapped_column(String(255))
    reentry: Mapped[str] = mapped_column(String(16), default="always")
    quiet_start: Mapped[int | None] = mapped_column(Integer)  # hour (UTC) quiet hours begin
    quiet_end: Mapped[int | None] = mapped_column(Integer)  # hour they end
    active: Mapped[bool] = mapped_column(Boolean, default=False)
    # Switched on at: what happened before does not enrol anyone.
    active_since: Mapped[datetime | None] = mapped_column(UTCDateTime)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)


class Enrolment(Base):
    """One customer going through one scenario for one reason (`key`: the cart, the order,
    the birthday's year...): the unique key makes each reason enrol once."""

    __tablename__ = "enrolments"
    __table_args__ = (
        UniqueConstraint("scenario_id", "customer_id", "key"),
        CheckConstraint("status IN ('active','completed','converted','exited')", name="status"),
        Index("ix_enrolments_due", "status", "next_run_at"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    scenario_id: Mapped[int] = mapped_column(ForeignKey("scenarios.id", ondelete="CASCADE"))
    customer_id: Mapped[int] = mapped_column(ForeignKey("customers.id"), index=True)
    key: Mapped[str] = mapped_column(String(100))
    status: Mapped[str] = mapped_column(String(16), default="active")
    step: Mapped[int] = mapped_column(Integer, default=0)  # the next step to run
    # How many times that step failed (a webhook retried with back-off, then skipped).
    attempts: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    next_run_at: Mapped[datetime] = mapped_column(UTCDateTime)
    entered_at: Mapped[datetime] = mapped_column(UTCDateTime)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    reason: Mapped[str | None] = mapped_column(String(200))  # why it ended
