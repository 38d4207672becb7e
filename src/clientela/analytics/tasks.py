"""Background jobs of the analytics domain (scheduled by `clientela.worker`)."""

from __future__ import annotations

import logging

from sqlalchemy import Engine

from clientela.analytics import service
from clientela.analytics.clv import Unit
from clientela.config import Settings
from clientela.core.clock import utcnow
from clientela.core.errors import ClientelaError
from clientela.db import session_scope

log = logging.getLogger(__name__)


def predict_lifetime_values(*, engine: Engine, settings: Settings, unit: Unit = "weeks"
                            ) -> service.Predicted:
    """Refit the lifetime-value models and store every buyer's predictions."""
    with session_scope(engine) as session:
        return service.predict(session=session, now=utcnow(), unit=unit,
                               currency=settings.store_currency,
                               horizon_months=settings.clv_horizon_months,
                               monthly_discount_rate=settings.clv_monthly_discount_rate)


def refresh_predictions(*, engine: Engine, settings: Settings) -> str:
    """The nightly refit: what was stored, or why nothing could be (a shop with no repeat
    buyers yet has no model to fit)."""
    try:
        done = predict_lifetime_values(engine=engine, settings=settings)
    except ClientelaError as error:
        log.warning("lifetime values not predicted: %s", error.message)
        return f"skipped: {error.message}"
    return f"{done.customers} customers, {done.inactive} inactive"


def compute_rfm(*, engine: Engine, settings: Settings) -> str:
    """The nightly RFM scoring, as of today."""
    now = utcnow()
    with session_scope(engine) as session:
        done = service.compute_rfm(session=session, as_of=now.date(), now=now)
    return f"{done.customers} customers scored"
