"""`clientela import cdnow`: the real CDNOW purchase log, loaded once, exactly."""

from __future__ import annotations

from sqlalchemy import func, select

from clientela.commerce import cdnow
from clientela.commerce.models import Order
from clientela.customers.models import Customer, Identity
from clientela.db import session_scope
from tests.test_cli import _run


def test_the_sample_loads_once_with_exact_totals(settings, engine):
    done = _run(settings, "import", "cdnow", "--sample",
                env={"CLIENTELA_STORE_CURRENCY": "USD"})
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip().splitlines() == [
        "CDNOW: 2357 customers (2357 new), 6919 orders (6919 new)"]
    again = _run(settings, "import", "cdnow", "--sample",
                 env={"CLIENTELA_STORE_CURRENCY": "USD"})
    assert again.stdout.strip().splitlines() == [
        "CDNOW: 2357 customers (0 new), 6919 orders (0 new)"]
    with session_scope(engine, writes=False) as session:
        assert session.scalar(select(func.count()).select_from(Order)) == 6919
        assert session.scalar(select(func.count()).select_from(Customer)) == 2357
        customer = session.scalars(select(Customer).join(Identity).where(
            Identity.kind == "user_id", Identity.value == "cdnow-00004")).one()
        # 00004 bought on 1997-01-01, 01-18, 08-02 and 12-12: 29.33 + 29.73 + 14.96 + 26.48.
        assert (customer.orders_count, customer.revenue_cents) == (4, 10050)
        assert (customer.first_order_at.date().isoformat(),
                customer.last_order_at.date().isoformat(),
                customer.last_seen_at.date().isoformat()) == ("1997-01-01", "1997-12-12",
                                                              "1997-12-12")
        currencies = set(session.scalars(select(Order.currency).distinct()))
        assert currencies == {"USD"}


def test_without_a_usd_rate_the_orders_count_but_add_no_revenue(settings, engine):
    done = _run(settings, "import", "cdnow", "--sample")
    assert done.returncode == 0, done.stderr
    assert "they count as orders but add no revenue" in done.stdout
    with session_scope(engine, writes=False) as session:
        assert session.scalar(select(func.sum(Customer.orders_count))) == 6919
        assert session.scalar(select(func.sum(Customer.revenue_cents))) == 0


def test_the_master_file_has_every_published_purchase():
    rows = cdnow.purchases(sample=False)
    assert len(rows) == 69659
    assert len({row.customer for row in rows}) == 23570
    assert sum(row.cents for row in rows) == 250031563  # $2,500,315.63
    assert (min(row.placed_at for row in rows).date().isoformat(),
            max(row.placed_at for row in rows).date().isoformat()) == ("1997-01-01",
                                                                      "1998-06-30")
