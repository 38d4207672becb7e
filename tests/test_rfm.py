"""RFM: quintile scores with ties kept together, the R×F groups, stored on profiles."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import numpy as np
import pytest
from sqlalchemy import select

from clientela.analytics import rfm, service
from clientela.commerce.bulk import Placed, load_orders
from clientela.commerce.service import OrderRecord
from clientela.customers import service as customers
from clientela.customers.models import Customer
from clientela.db import session_scope

AS_OF = date(2026, 6, 30)


def test_quintiles_keep_equal_values_together():
    assert list(rfm.quintile([10, 20, 30, 40, 50])) == [1, 2, 3, 4, 5]
    assert list(rfm.quintile([50, 40, 30, 20, 10])) == [5, 4, 3, 2, 1]
    assert list(rfm.quintile([1, 1, 1, 2, 3])) == [1, 1, 1, 4, 5]
    assert list(rfm.quintile([7] * 4)) == [1, 1, 1, 1]
    assert list(rfm.quintile(list(range(10)))) == [1, 1, 2, 2, 3, 3, 4, 4, 5, 5]
    with pytest.raises(Exception, match="values: must be a non-empty list"):
        rfm.quintile([])


def test_quintiles_match_their_definition_on_many_ties_and_fractions():
    rng = np.random.default_rng(3)
    for values in (rng.integers(0, 12, 1001), rng.normal(size=997).round(1),
                   rng.integers(0, 10**9, 503)):
        n = len(values)
        expected = [1 + 5 * int((values < value).sum()) // n for value in values]
        assert rfm.quintile(values).tolist() == expected


def test_buyers_sums_each_customers_purchases_with_dense_or_sparse_ids():
    day = np.array(["2026-01-10", "2026-03-01", "2026-02-01", "2026-03-05"],
                   dtype="datetime64[D]")
    value = np.array([100, 250, 40, 5], dtype=np.int64)
    as_of = np.datetime64("2026-03-11", "D")
    for ids in ([7, 9, 7, 12], [7, 10**12, 7, 3 * 10**12]):
        bought = rfm.buyers(np.array(ids, dtype=np.int64), day, value, as_of)
        assert bought.customer.tolist() == sorted(set(ids))
        assert bought.days_since_last.tolist() == [38, 10, 6]
        assert bought.purchases.tolist() == [2, 1, 1]
        assert bought.spend.tolist() == [140, 250, 5]


def test_groups_follow_the_recency_frequency_grid():
    # Ten customers: days since last purchase, purchases, spend.
    days = [1, 2, 10, 20, 40, 60, 100, 200, 300, 400]
    purchases = [1, 9, 1, 5, 3, 8, 2, 7, 9, 1]
    spend = [10, 900, 20, 400, 100, 800, 50, 600, 950, 5]
    scores = rfm.score(days, purchases, spend)
    assert list(scores.recency) == [5, 5, 4, 4, 3, 3, 2, 2, 1, 1]
    assert list(scores.frequency) == [1, 5, 1, 3, 3, 4, 2, 4, 5, 1]
    assert list(scores.monetary) == [1, 5, 2, 3, 3, 4, 2, 4, 5, 1]
    assert list(scores.group_names) == [
        "New customers", "Champions", "Promising", "Potential loyalist", "Need attention",
        "Loyal", "Hibernating", "At risk", "Can't lose them", "Lost"]
    assert set(np.unique(np.array(rfm.GRID))) == set(rfm.GROUPS)


def test_scores_are_stored_on_profiles_and_summarised(settings, engine, api):
    # Five buyers and one customer without orders; the store currency is BRL.
    plan = {"a": [5, 3, 1], "b": [200], "c": [30, 29], "d": [90, 80, 70, 60], "e": [400]}
    spend = {"a": 10000, "b": 5000, "c": 2000, "d": 1000, "e": 500}
    with session_scope(engine) as session:
        ids = dict(zip([*plan, "nobody"], customers.create_customers(
            session=session, seen_at=[datetime(2025, 1, 1, tzinfo=UTC)] * 6), strict=True))
        orders = [Placed(OrderRecord(
            external_id=f"{name}-{n}", status="paid", currency="BRL",
            placed_at=datetime.combine(AS_OF, datetime.min.time(), UTC) - timedelta(days=d),
            total_cents=spend[name]), ids[name])
            for name, ago in plan.items() for n, d in enumerate(ago)]
        orders.append(Placed(OrderRecord(external_id="late", status="paid", currency="BRL",
                                         placed_at=datetime(2026, 7, 2, tzinfo=UTC),
                                         total_cents=99999), ids["e"]))
        load_orders(session=session, source="import", orders=orders,
                    exchange=settings.exchange)
        done = service.compute_rfm(session=session, as_of=AS_OF,
                                   now=datetime(2026, 7, 1, tzinfo=UTC))
    assert done.customers == 5
    with session_scope(engine, writes=False) as session:
        stored = {name: session.execute(select(
            Customer.rfm_recency, Customer.rfm_frequency, Customer.rfm_monetary,
            Customer.rfm_group).where(Customer.id == customer_id)).one()
            for name, customer_id in ids.items()}
    # Recency (days): a 1, c 29, d 60, b 200, e 400 (its July order is after the as-of).
    # Purchases: b 1, e 1, c 2, a 3, d 4. Spend: d 4000, a 30000, b 5000, c 4000, e 500.
    assert {name: tuple(row) for name, row in stored.items()} == {
        "a": (5, 4, 5, "Champions"), "b": (2, 1, 4, "Hibernating"),
        "c": (4, 3, 2, "Potential loyalist"), "d": (3, 5, 2, "Loyal"),
        "e": (1, 1, 1, "Lost"), "nobody": (None, None, None, None)}
    profile = api.get(f"/api/v1/customers/{ids['a']}").json()["scores"]
    assert {key: profile[key] for key in ("rfm_recency", "rfm_frequency", "rfm_monetary",
                                          "rfm_group", "rfm_at", "p_alive")} == {
        "rfm_recency": 5, "rfm_frequency": 4, "rfm_monetary": 5, "rfm_group": "Champions",
        "rfm_at": "2026-07-01T00:00:00Z", "p_alive": None}
    summary = api.get("/api/v1/rfm").json()
    assert summary["customers"] == 5
    assert summary["computed_at"].startswith("2026-07-01T00:00:00")
    groups = {group["group"]: group for group in summary["groups"]}
    assert [group["group"] for group in summary["groups"]] == list(rfm.GROUPS)
    # Revenue is every order's (the late one too): a 300, b 50, c 40, d 40, e 1004.99.
    assert (groups["Champions"]["customers"], groups["Champions"]["revenue_total"]) == (1, 300.0)
    assert groups["Lost"]["revenue_total"] == pytest.approx(1004.99)
    assert groups["Lost"]["revenue_share"] == pytest.approx(1004.99 / 1434.99, abs=1e-6)
    assert summary["grid"] == [[1, 0, 0, 0, 0], [1, 0, 0, 0, 0], [0, 0, 0, 0, 1],
                               [0, 0, 1, 0, 0], [0, 0, 0, 1, 0]]
    champions = api.post("/api/v1/segments/preview", json={"rule": {"rfm_group": "Champions"}})
    assert [item["id"] for item in champions.json()["items"]] == [ids["a"]]
