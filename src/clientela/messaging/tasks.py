"""Background jobs of messaging (scheduled by `clientela.worker`)."""

from __future__ import annotations

from sqlalchemy import Engine

from clientela.config import Settings
from clientela.core.clock import utcnow
from clientela.db import session_scope
from clientela.messaging import service
from clientela.messaging.bounces import read_bounce_folder
from clientela.messaging.delivery import Sender, Tally, campaigns_to_send, deliver_campaign
from clientela.messaging.transport import transport_for


def send_campaigns(*, engine: Engine, settings: Settings) -> dict[int, Tally]:
    """Start the scheduled campaigns whose time has come, then send what is due of every
    campaign that is sending (a sender that stopped midway is taken over here)."""
    with session_scope(engine) as session:
        service.start_due_campaigns(session=session, now=utcnow(),
                                    currency=settings.store_currency)
    with session_scope(engine, writes=False) as session:
        due = campaigns_to_send(session=session, now=utcnow())
    return {campaign_id: deliver_campaign(Sender(settings=settings, engine=engine,
                                                 transport=transport_for(settings),
                                                 now=utcnow), campaign_id)
            for campaign_id in due}


def read_bounces(*, engine: Engine, settings: Settings) -> int:
    """Record the bounce and complaint reports dropped into DATA_DIR/bounces/."""
    return read_bounce_folder(engine=engine, settings=settings)
