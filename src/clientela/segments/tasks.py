"""Background jobs of the segments domain (scheduled by `clientela.worker`).

Each segment's rule runs in a reading session and its result is written in a short writing
one, so that on SQLite the ingestion writer never waits for a rule to run.
"""

from __future__ import annotations

from datetime import datetime

import numpy as np
from numpy.typing import NDArray
from sqlalchemy import Engine, select

from clientela.config import Settings
from clientela.core.clock import utcnow
from clientela.core.errors import NotFound
from clientela.db import session_scope
from clientela.segments import service
from clientela.segments.models import Segment


def refresh_segments(*, engine: Engine, settings: Settings) -> int:
    """Re-evaluate segments for the customers with new events; how many entered or left."""
    with session_scope(engine, writes=False) as session:
        touched = service.touched_since(session=session)
    now = utcnow()
    return sum(_update(engine, settings, segment_id, now, among)
               for segment_id, among in touched.items())


def recompute_segments(*, engine: Engine, settings: Settings) -> int:
    """Recompute every segment whole (time alone moves people in and out too); how many
    entered or left."""
    with session_scope(engine, writes=False) as session:
        ids = list(session.scalars(select(Segment.id).order_by(Segment.id)))
    now = utcnow()
    return sum(_update(engine, settings, segment_id, now, None) for segment_id in ids)


def _update(engine: Engine, settings: Settings, segment_id: int, now: datetime,
            among: NDArray[np.int64] | None) -> int:
    try:
        with session_scope(engine, writes=False) as session:
            evaluation = service.evaluate(session=session, segment_id=segment_id, now=now,
                                          currency=settings.store_currency, among=among)
        with session_scope(engine) as session:
            done = service.apply(session=session, evaluation=evaluation)
    except NotFound:  # deleted meanwhile
        return 0
    return done.entered + done.left
