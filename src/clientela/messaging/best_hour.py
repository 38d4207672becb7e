"""Each recipient's best hour: the hour of day (UTC) at which they most often opened,
clicked or ordered, recent behaviour weighted more (a 30-day half-life over the last 180
days); recipients with no such history get the audience's best hour."""

from __future__ import annotations

from datetime import datetime, timedelta
from itertools import chain

import numpy as np
from sqlalchemy.orm import Session

from clientela.core.types import db_time
from clientela.db import driver_executemany, driver_query

SIGNALS = ("Email Opened", "Email Link Clicked", "Order Completed")
HISTORY_DAYS = 180
HALF_LIFE_DAYS = 30.0


def _hour_and_age(dialect: str) -> tuple[str, str]:
    """SQL for a signal's hour of day and its age in days at the first parameter."""
    if dialect == "postgresql":
        return ("CAST(EXTRACT(HOUR FROM e.timestamp) AS INTEGER)",
                "EXTRACT(EPOCH FROM (CAST(? AS TIMESTAMP) - e.timestamp)) / 86400.0")
    return ("CAST(strftime('%H', e.timestamp) AS INTEGER)",
            "julianday(?) - julianday(e.timestamp)")


def _signals_sql(dialect: str) -> str:
    hour, age = _hour_and_age(dialect)
    marks = ", ".join("?" * len(SIGNALS))
    return (f"SELECT d.id, {hour}, {age} FROM deliveries d JOIN events e "
            f"ON e.customer_id = d.customer_id WHERE d.campaign_id = ? AND "
            f"d.status = 'pending' AND e.event IN ({marks}) AND e.timestamp >= ? "
            f"AND e.timestamp <= ?")


def schedule_at_best_hours(*, session: Session, campaign_id: int, now: datetime) -> int | None:
    """Set each pending delivery of the campaign due at its recipient's next best hour
    (within 24 hours of `now`); returns the audience's best hour (None: no history at
    all, so everything stays due now)."""
    dialect = session.get_bind().dialect.name
    moment = db_time(now)
    rows = driver_query(session, _signals_sql(dialect), [
        moment, campaign_id, *SIGNALS, db_time(now - timedelta(days=HISTORY_DAYS)), moment])
    if not rows:
        return None
    table = np.fromiter(chain.from_iterable(rows), dtype=np.float64,
                        count=3 * len(rows)).reshape(len(rows), 3)
    delivery, hour = table[:, 0].astype(np.int64), table[:, 1].astype(np.int64)
    weight = 0.5 ** (table[:, 2] / HALF_LIFE_DAYS)
    audience_hour = int(np.argmax(np.bincount(hour, weights=weight, minlength=24)))
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
    everyone's signals); None when there is no signal at all. Signals are counted per hour
    and whole day of age in SQL, so the shop's takes at most 24 x 181 rows."""
    dialect = session.get_bind().dialect.name
    hour, age = _hour_and_age(dialect)
    days = f"FLOOR({age})" if dialect == "postgresql" else age  # SQLite's CAST truncates
    marks = ", ".join("?" * len(SIGNALS))
    whose = "" if customer_id is None else " AND e.customer_id = ?"
    moment = db_time(now)
    rows = driver_query(
        session, f"SELECT {hour}, CAST({days} AS INTEGER), COUNT(*) FROM events e "
        f"WHERE e.event IN ({marks}) AND e.timestamp >= ? AND e.timestamp <= ?{whose} "
        "GROUP BY 1, 2", [moment, *SIGNALS, db_time(now - timedelta(days=HISTORY_DAYS)),
                          moment, *([] if customer_id is None else [customer_id])])
    if not rows:
        return None
    table = np.array(rows, dtype=np.float64).reshape(len(rows), 3)
    weight = table[:, 2] * 0.5 ** (table[:, 1] / HALF_LIFE_DAYS)
    return int(np.argmax(np.bincount(table[:, 0].astype(np.int64), weights=weight,
                                     minlength=24)))


def next_hour(now: datetime, hour: int) -> datetime:
    """The first moment at `hour`:00 (UTC) from `now` on, within 24 hours."""
    at = now.replace(hour=hour, minute=0, second=0, microsecond=0)
    return at if at >= now else at + timedelta(days=1)
