"""The models run on the shop's orders, their results stored on profiles: lifetime value
(p_alive, churn_risk, expected_orders, predicted_clv_cents, inactive) and RFM (scores and
group)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time, timedelta

import numpy as np
from sqlalchemy.orm import Session

from clientela.analytics import clv, rfm
from clientela.commerce import queries as commerce
from clientela.core.clock import as_utc
from clientela.core.money import decimals
from clientela.customers import service as customers


@dataclass(frozen=True)
class Fitted:
    bgnbd: clv.BgNbd
    gamma_gamma: clv.GammaGamma
    summary: clv.Summary  # money in the store currency's major units (reais, dollars)


def fit(*, session: Session, as_of: date, unit: clv.Unit, currency: str) -> Fitted:
    """Both models, fitted on every purchase made up to the end of `as_of` (UTC)."""
    until = as_utc(datetime.combine(as_of + timedelta(days=1), time()))
    log = commerce.purchase_log(session=session, until=until)
    summary = clv.summarize(log.customer, log.day, log.value / 10 ** decimals(currency),
                            as_of=as_of, unit=unit)
    return Fitted(clv.fit_bgnbd(summary), clv.fit_gamma_gamma(summary), summary)


@dataclass(frozen=True, slots=True)
class Predicted:
    customers: int
    inactive: int
    figures: clv.ClvFigures


def predict(*, session: Session, now: datetime, unit: clv.Unit, currency: str,
            horizon_months: int, monthly_discount_rate: float) -> Predicted:
    """Fit on everything bought until now and store each buyer's predictions; customers
    without purchases lose any they had."""
    fitted = fit(session=session, as_of=now.date(), unit=unit, currency=currency)
    summary = fitted.summary
    alive = clv.probability_alive(fitted.bgnbd, summary)
    horizon = horizon_months * clv.UNITS_PER_MONTH[unit]
    expected = clv.expected_purchases(fitted.bgnbd, horizon, summary)
    value = clv.lifetime_value(fitted.bgnbd, fitted.gamma_gamma, summary,
                               horizon_months=horizon_months,
                               monthly_discount_rate=monthly_discount_rate)
    quiet = clv.inactive(fitted.bgnbd, summary)
    minor = np.rint(value * 10 ** decimals(currency)).astype(np.int64)
    customers.set_predictions(session=session, at=now, rows=[
        (int(cid), float(p), float(1 - p), float(e), int(v), bool(q))
        for cid, p, e, v, q in zip(summary.customer, alive, expected, minor, quiet,
                                   strict=True)])
    return Predicted(len(summary), int(quiet.sum()),
                     clv.figures(fitted.bgnbd, fitted.gamma_gamma))


@dataclass(frozen=True, slots=True)
class RfmComputed:
    customers: int
    as_of: date


def compute_rfm(*, session: Session, as_of: date, now: datetime) -> RfmComputed:
    """Score every customer with a purchase up to the end of `as_of` (UTC) and store the
    scores and group on their profile; the others lose any they had."""
    until = as_utc(datetime.combine(as_of + timedelta(days=1), time()))
    log = commerce.purchase_log(session=session, until=until)
    if not len(log.customer):
        customers.set_rfm(session=session, at=now, rows=[])
        return RfmComputed(0, as_of)
    bought = rfm.buyers(log.customer, log.day, log.value, np.datetime64(as_of, "D"))
    scored = rfm.score(bought.days_since_last, bought.purchases, bought.spend)
    customers.set_rfm(session=session, at=now, rows=[
        (cid, r, f, m, rfm.GROUPS[group]) for cid, r, f, m, group in zip(
            bought.customer.tolist(), scored.recency.tolist(), scored.frequency.tolist(),
            scored.monetary.tolist(), scored.group.tolist(), strict=True)])
    return RfmComputed(len(bought.customer), as_of)
