"""Lifetime-value predictions on the shop's own orders: the CDNOW sample, loaded through the
import path, gives the published parameters; predictions land on the right profiles."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import numpy as np
import pytest
from sqlalchemy import select

from clientela.analytics import clv, service
from clientela.commerce import cdnow
from clientela.customers.models import Customer, Identity
from clientela.db import session_scope
from tests.test_cli import _run

USD = {"CLIENTELA_STORE_CURRENCY": "USD"}
PUBLISHED = {"r": 0.243, "alpha": 4.414, "a": 0.793, "b": 2.426, "p": 6.25, "q": 3.74,
             "gamma": 15.44}


def test_the_cdnow_sample_through_the_import_path_gives_the_published_fit(settings):
    assert _run(settings, "import", "cdnow", "--sample", env=USD).returncode == 0
    done = _run(settings, "clv", "fit", "--as-of", "1997-09-30", "--unit", "weeks", "--json",
                env=USD)
    assert done.returncode == 0, done.stderr
    fitted = json.loads(done.stdout.strip().splitlines()[-1])
    assert set(fitted) == {*PUBLISHED, "bgnbd_log_likelihood", "gg_log_likelihood",
                           "customers", "repeat_buyers"}
    for name, published in PUBLISHED.items():
        assert fitted[name] == pytest.approx(published, rel=0.005), name
    assert fitted["bgnbd_log_likelihood"] == pytest.approx(-9582.4, abs=0.5)
    assert (fitted["customers"], fitted["repeat_buyers"]) == (2357, 946)
    plain = _run(settings, "clv", "fit", "--as-of", "1997-09-30", env=USD)
    assert plain.stdout.splitlines()[0].startswith(
        "BG/NBD (weeks, 2357 customers): r=0.2426 alpha=4.4136 a=0.7929 b=2.4259")
    refused = _run(settings, "clv", "fit", "--as-of", "1996-12-31", env=USD)
    assert refused.returncode == 2
    assert "as_of: no purchase on or before 1996-12-31" in refused.stderr
    bad = _run(settings, "clv", "fit", "--unit", "months", env=USD)
    assert bad.returncode == 2 and "--unit: must be days or weeks" in bad.stderr


def test_predictions_land_on_each_buyers_profile(settings, engine):
    rows = cdnow.purchases(sample=True)
    with session_scope(engine) as session:
        cdnow.load(session=session, rows=rows, exchange=settings.exchange.__class__(
            store_currency="USD"))
        now = datetime(1997, 10, 1, tzinfo=UTC)
        done = service.predict(session=session, now=now, unit="weeks", currency="USD",
                               horizon_months=12, monthly_discount_rate=0.01)
    assert done.customers == 2357
    # The same models, fitted here on the file itself (every purchase up to the end of
    # `now`'s day), predict the same for customer 00004.
    before = [row for row in rows if row.placed_at.date() <= now.date()]
    ids = np.array([int(row.customer) for row in before])
    days = np.array([row.placed_at.date() for row in before], dtype="datetime64[D]")
    summary = clv.summarize(ids, days, np.array([row.cents for row in before]) / 100,
                            as_of=now.date(), unit="weeks")
    bgnbd, gg = clv.fit_bgnbd(summary), clv.fit_gamma_gamma(summary)
    where = int(np.flatnonzero(summary.customer == 4)[0])
    alive = clv.probability_alive(bgnbd, summary)[where]
    expected = clv.expected_purchases(bgnbd, 12 * 4.345, summary)[where]
    value = clv.lifetime_value(bgnbd, gg, summary, horizon_months=12,
                               monthly_discount_rate=0.01)[where]
    with session_scope(engine, writes=False) as session:
        customer = session.scalars(select(Customer).join(Identity).where(
            Identity.kind == "user_id", Identity.value == "cdnow-00004")).one()
        assert customer.p_alive == pytest.approx(alive, rel=1e-9)
        assert customer.churn_risk == pytest.approx(1 - alive, rel=1e-9)
        assert customer.expected_orders == pytest.approx(expected, rel=1e-9)
        assert customer.predicted_clv_cents == round(value * 100)
        assert customer.predicted_at == now
        assert session.scalar(select(Customer.id).where(Customer.p_alive.is_(None))) is None
