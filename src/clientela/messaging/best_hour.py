"""Each recipient's best hour: the hour of day (UTC) at which they most often opened,
clicked or ordered, recent behaviour weighted more (a 30-day half-life over the last 180
days); recipients with no such history get the audience's best hour."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import numpy as np
from sqlalchemy.orm import Session

from clientela.core.types import db_time
from clientela.db import driver_executemany, driver_query

SIGNALS = ("Email Opened", "Email Link Clicked", "Order Completed")
HISTORY_DAYS = 180
HALF_LIFE_DAYS = 30.0


def _signals(dialect: str, *, by: str, where: str) -> str:
    """SQL counting the signals (events `e`) by `by`, hour of day and whole days of age at
    the first parameter; then come `where`'s parameters, the signal names, the history's
    start and `now`. Counted in SQL, so few rows come back."""
    if dialect == "postgresql":
        hour = "CAST(EXTRACT(HOUR FROM e.timestamp) AS INTEGER)"
        days = "CAST(FLOOR(EXTRACT(EPOCH FROM (CAST(? AS TIMESTAMP) - e.timestamp)) / 86400.0)" \
               " AS INTEGER)"
    else:  # CAST truncates, and ages are positive
        hour = "CAST(strftime('%H', e.timestamp) AS INTEGER)"
        days = "CAST(julianday(?) - julianday(e.timestamp) AS INTEGER)"
    marks = ", ".join("?" * len(SIGNALS))
    return (f"SELECT {by}, {hour}, {days}, COUNT(*) FROM {where} AND e.event IN ({marks}) "
            f"AND e.timestamp >= ? AND e.timestamp <= ? GROUP BY 1, 2, 3")


def _weighted(rows: list[Any]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(whose, hour, weight) of each counted row: recent signals weigh more."""
    table = np.array(rows, dtype=np.float64).reshape(len(rows), 4)
    weight = table[:, 3] * 0.5 ** (table[:, 2] / HALF_LIFE_DAYS)
    return table[:, 0].astype(np.int64), table[:, 1].astype(np.int64), weight


def _best(hour: np.ndarray, weight: np.ndarray) -> int:
    return int(np.argmax(np.bincount(hour, weights=weight, minlength=24)))


def schedule_at_best_hours(*, session: Session, campaign_id: int, now: datetime) -> int | None:
    """Set each pending delivery of the campaign due at its recipient's next best hour
    (within 24 hours of `now`); returns the audience's best hour (None: no history at
    all, so everything stays due now)."""
    moment = db_time(now)
    sql = _signals(session.get_bind().dialect.name, by="d.id", where=(
        "deliveries d JOIN events e ON e.customer_id = d.customer_id WHERE "
        "d.status = 'pending' AND d.campaign_id = ?"))
    rows = driver_query(session, sql, [moment, campaign_id, *SIGNALS,
                                       db_time(now - timedelta(days=HISTORY_DAYS)), moment])
    if not rows:
        return None
    delivery, hour, weight = _weighted(rows)
    audience_hour = _best(hour, weight)
    ids, slot = np.unique(delivery, return_inverse=True)
    scores = np.bincount(slot * 24 + hour, weights=weight, minlength=len(ids) * 24)
    best = np.argmax(scores.reshape(len(ids), 24), axis=1)
    due = {h: db_time(next_hour(now, h)) for h in range(24)}
    driver_executemany(session, "UPDATE deliveries SET due_at = ? WHERE id = ?",
                       [(due[int(h)], int(i)) for i, h in zip(ids, best, strict=True)])
    driver_executemany(
        session, "UPDATE deliveries SET due_at = ? WHERE campaign_id = ? AND status = 'pending' "
        "AND due_at = ?", [(due[audience_hour], campaign_id, moment)])
    return audience_hour


def best_hour_of(*, session: Session, customer_id: int | None, now: datetime
                 ) -> int | None:
    """The customer's best hour by the same weighting (with None: the whole shop's, from
    everyone's signals); None when there is no signal at all."""
    moment = db_time(now)
    whose = "" if customer_id is None else " AND e.customer_id = ?"
    sql = _signals(session.get_bind().dialect.name, by="0",
                   where=f"events e WHERE 1 = 1{whose}")
    rows = driver_query(session, sql, [
        moment, *([] if customer_id is None else [customer_id]), *SIGNALS,
        db_time(now - timedelta(days=HISTORY_DAYS)), moment])
    if not rows:
        return None
    _, hour, weight = _weighted(rows)
    return _best(hour, weight)


def next_hour(now: datetime, hour: int) -> datetime:
    """The first moment at `hour`:00 (UTC) from `now` on, within 24 hours."""
    at = now.replace(hour=hour, minute=0, second=0, microsecond=0)
    return at if at >= now else at + timedelta(days=1)
