"""Background jobs of the commerce domain (scheduled by `clientela.worker`)."""

from __future__ import annotations

from sqlalchemy import Engine

from clientela.commerce.carts import abandon_carts
from clientela.config import Settings
from clientela.core.clock import utcnow
from clientela.db import session_scope


def abandon_idle_carts(*, engine: Engine, settings: Settings) -> int:
    """Mark carts left alone for CLIENTELA_CART_ABANDON_MINUTES abandoned; how many."""
    with session_scope(engine) as session:
        return abandon_carts(session=session, now=utcnow(),
                             after_minutes=settings.cart_abandon_minutes)
