"""Background jobs of automation (scheduled by `clientela.worker`)."""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import datetime

from sqlalchemy import Engine

from clientela.automation import service
from clientela.automation.engine import BATCH, Post, Run, advance, http_post
from clientela.config import Settings
from clientela.core.clock import utcnow
from clientela.db import session_scope
from clientela.messaging.delivery import Sender, Tally, deliver_campaign
from clientela.messaging.transport import transport_for


def run_scenarios(*, engine: Engine, settings: Settings,
                  clock: Callable[[], datetime] = utcnow, batch: int = BATCH,
                  budget_seconds: float = 45.0, post: Post = http_post
                  ) -> tuple[int, int, Tally]:
    """Enrol, move due enrolments on (a transaction per `batch`, until none is due or the
    minute's `budget_seconds` are spent), then send the scenarios' due messages:
    (enrolled, moved, what the sender did); `post` calls webhooks."""
    run = Run(settings=settings, now=clock(), post=post)
    with session_scope(engine) as session:
        enrolled = service.enrol_all(session=session, now=run.now)
    moved, started = 0, time.monotonic()
    while True:
        with session_scope(engine) as session:
            done = advance(session=session, run=run, batch=batch)
        moved += done
        if done < batch or time.monotonic() - started > budget_seconds:
            break
    sender = Sender(settings=settings, engine=engine, transport=transport_for(settings),
                    now=clock)
    return enrolled, moved, deliver_campaign(sender, None)
