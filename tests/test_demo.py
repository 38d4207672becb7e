"""The demo shop: generated as its models say, the same for a seed, loaded like real data."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime, timedelta

import numpy as np
import pytest
from scipy.special import hyp2f1
from sqlalchemy import func, select

from clientela.commerce.models import Cart, Order, OrderItem, Product, Refund
from clientela.customers.models import Customer, Identity
from clientela.db import session_scope
from clientela.demo import store
from clientela.demo.loading import RECENT_DAYS, load, previous_anchor
from clientela.demo.store import BGNBD, CHANNELS, GAMMA_GAMMA, WEEKS, generate
from clientela.team import service as team
from clientela.tracking.models import Event

ANCHOR = datetime(2026, 11, 22, 12, tzinfo=UTC)


def test_the_same_seed_gives_the_same_shop_and_another_seed_another():
    one, two = (generate(customers=500, seed=11, anchor=ANCHOR) for _ in range(2))
    other = generate(customers=500, seed=12, anchor=ANCHOR)
    for name in ("person", "days_ago", "product", "quantity", "fate", "channel"):
        assert np.array_equal(getattr(one.purchases, name), getattr(two.purchases, name))
    assert one.people.first == two.people.first and one.people.phone == two.people.phone
    assert not np.array_equal(one.purchases.days_ago[:50], other.purchases.days_ago[:50])


def _expected_repeats(weeks: np.ndarray) -> np.ndarray:
    """BG/NBD's E[X(t)]: repeat purchases expected within t weeks of acquisition."""
    r, alpha, a, b = BGNBD["r"], BGNBD["alpha"], BGNBD["a"], BGNBD["b"]
    ratio = alpha / (alpha + weeks)
    return (a + b - 1) / (a - 1) * (1 - ratio ** r * hyp2f1(r, b, a + b - 1,
                                                            weeks / (alpha + weeks)))


@pytest.mark.parametrize("hour", [12, 3])
def test_purchases_follow_bg_nbd_and_gamma_gamma_seasons_and_hours(hour):
    anchor = ANCHOR.replace(hour=hour)
    shop = generate(customers=60_000, seed=5, anchor=anchor)
    purchases, people = shop.purchases, shop.people
    buyers = np.flatnonzero(people.buyer)
    counts = np.bincount(purchases.person, minlength=len(people))
    assert np.all(counts[buyers] >= 1) and np.all(counts[~people.buyer] == 0)
    # The time of day moves a purchase by less than a day, never past the anchor.
    assert np.all(purchases.days_ago >= 0) and np.all(purchases.days_ago < WEEKS * 7 + 1)
    # Each buyer's time since acquisition, in model weeks (seasons stretch only the calendar).
    observed = store._model_weeks(people.signed_up[buyers], anchor)
    expected = _expected_repeats(observed).mean()
    repeats = (counts[buyers] - 1).mean()
    # ~48,000 buyers: the mean's standard error is under 1% of it; 4% is a wide margin.
    assert abs(repeats - expected) / expected < 0.04, (repeats, expected)
    # Spend: Gamma-Gamma's mean order value (p·γ/(q−1) dollars, in reais), within 8% once
    # the value is made of catalog products.
    subtotals = np.add.reduceat(shop.catalog.prices[purchases.product] * purchases.quantity,
                                purchases.item_start[:-1])
    model = GAMMA_GAMMA["p"] * GAMMA_GAMMA["gamma"] / (GAMMA_GAMMA["q"] - 1) * 5.0 * 100
    assert abs(subtotals.mean() - model) / model < 0.08, (subtotals.mean(), model)
    # Each person's purchases are numbered in time order.
    for person in buyers[:2000]:
        mine = np.flatnonzero(purchases.person == person)
        assert list(purchases.number[mine][np.argsort(-purchases.days_ago[mine])]) == \
            list(range(len(mine)))
    # In Brasília time (UTC-3): Black Friday week sells well over twice an ordinary
    # late-October week, and the evening far more than the small hours.
    local = anchor - timedelta(hours=3)
    local_days = local.toordinal() + (local.hour + local.minute / 60) / 24 - purchases.days_ago
    dates = np.floor(local_days).astype(np.int64)
    black_friday = [datetime(2025, 11, d).date().toordinal() for d in range(20, 27)]
    october = [datetime(2025, 10, d).date().toordinal() for d in range(20, 27)]
    assert np.isin(dates, black_friday).sum() > 2 * np.isin(dates, october).sum()
    local_hours = np.floor((local_days % 1) * 24).astype(np.int64)
    by_hour = np.bincount(local_hours, minlength=24)
    assert by_hour[20:22].sum() > 5 * by_hour[2:4].sum()
    # Most purchases fall at the person's favourite hour.
    favourite = people.hour[purchases.person]
    assert (local_hours == favourite).mean() > 0.6
    assert set(np.unique(purchases.channel)) == set(range(len(CHANNELS)))


def test_loading_the_shop_writes_what_it_generated_and_nothing_twice(settings, engine):
    shop = generate(customers=300, seed=3, anchor=ANCHOR)
    with session_scope(engine) as session:
        source_id = team.create_key(session=session, kind="write", name="demo").id
    first = load(engine=engine, settings=settings, shop=shop, source_id=source_id)
    purchases = shop.purchases
    recent = purchases.days_ago <= RECENT_DAYS
    assert first.orders == int((~recent).sum())  # the imported history
    with session_scope(engine, writes=False) as session:
        def count(model, *where):
            return session.scalar(select(func.count()).select_from(model).where(*where))

        assert count(Identity, Identity.kind == "user_id",
                     Identity.value.like("demo-%")) == 300
        assert count(Order) == len(purchases)
        assert count(OrderItem) == int(purchases.item_start[-1])
        assert count(Product) == 240
        assert count(Event) == first.calls == first.stored
        consent = Counter(session.scalars(select(Customer.email_marketing).where(
            Customer.merged_into_id.is_(None), Customer.email.is_not(None))))
        stated = Counter(shop.people.consent)
        assert (consent["subscribed"], consent["unsubscribed"]) == (stated["subscribed"],
                                                                    stated["unsubscribed"])
        # Web and app orders of the last days came through a cart, which they converted.
        web = sum(1 for index in np.flatnonzero(recent)
                  if CHANNELS[purchases.channel[index]][0] in ("web", "app"))
        assert count(Cart, Cart.status == "converted") == web
        assert count(Cart, Cart.status == "abandoned") == first.abandoned_carts > 0
        # Profiles add up their orders: counts without cancelled ones, net revenue.
        orders = session.execute(select(func.count(Order.id), func.sum(Order.net_store_cents))
                                 .where(Order.status != "cancelled")).one()
        profiles = session.execute(select(func.sum(Customer.orders_count),
                                          func.sum(Customer.revenue_cents))).one()
        assert tuple(profiles) == tuple(orders)
        # The history's refunds, one per refunded order (recent ones come as events).
        refunded = int(np.isin(purchases.fate, (2, 3))[~recent].sum())
        assert count(Refund, Refund.external_id.like("D%-r1")) == refunded > 0
        rows = (count(Event), count(Order), count(Refund), count(Customer))
    # Loading it again, even hours later, rebuilds the same shop: it keeps its anchor.
    assert previous_anchor(engine=engine, source_id=source_id) == ANCHOR
    again = load(engine=engine, settings=settings, shop=shop, source_id=source_id)
    assert (again.stored, again.abandoned_carts) == (0, 0)
    with session_scope(engine, writes=False) as session:
        assert (session.scalar(select(func.count()).select_from(Event)),
                session.scalar(select(func.count()).select_from(Order)),
                session.scalar(select(func.count()).select_from(Refund)),
                session.scalar(select(func.count()).select_from(Customer))) == rows


@pytest.mark.parametrize("customers", [1, 7])
def test_tiny_shops_load(settings, engine, customers):
    shop = generate(customers=customers, seed=1, anchor=ANCHOR)
    with session_scope(engine) as session:
        source_id = team.create_key(session=session, kind="write", name="demo").id
    loaded = load(engine=engine, settings=settings, shop=shop, source_id=source_id)
    assert loaded.customers == customers
    with session_scope(engine, writes=False) as session:
        assert session.scalar(select(func.count()).select_from(Identity).where(
            Identity.kind == "user_id")) == customers
        assert session.scalar(select(func.count()).select_from(Order)) == len(shop.purchases)
