"""Background jobs of automation (scheduled by `clientela.worker`)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from sqlalchemy import Engine

from clientela.automation import service
from clientela.automation.engine import Run
from clientela.config import Settings
from clientela.core.clock import utcnow
from clientela.db import session_scope
from clientela.messaging.delivery import Sender, Tally, deliver_campaign
from clientela.messaging.transport import transport_for


def run_scenarios(*, engine: Engine, settings: Settings,
                  clock: Callable[[], datetime] = utcnow) -> tuple[int, int, Tally]:
    """Enrol, move due enrolments on, then send the scenarios' due messages:
    (enrolled, moved, what the sender did)."""
    with session_scope(engine) as session:
        enrolled, moved = service.run_scenarios(session=session,
                                                run=Run(settings=settings, now=clock()))
    sender = Sender(settings=settings, engine=engine, transport=transport_for(settings),
                    now=clock)
    return enrolled, moved, deliver_campaign(sender, None)
