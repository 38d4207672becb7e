"""Aggregate views over known orders, the same on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import datetime

import pytest

from clientela.commerce.bulk import Placed, load_orders
from clientela.commerce.ecommerce import Line
from clientela.commerce.service import OrderRecord, RefundRecord
from clientela.customers import profile
from clientela.customers.schemas import CustomerIn
from clientela.db import session_scope


def _order(number: str, day: str, status: str, total: int, *lines: Line) -> OrderRecord:
    placed = datetime.fromisoformat(f"{day}T15:00:00+00:00")
    refunds = (RefundRecord("r", total, None, placed),) if status == "refunded" else ()
    return OrderRecord(external_id=number, status=status, currency="BRL", placed_at=placed,
                       total_cents=total, lines=lines, refunds=refunds)


def _line(sku: str, name: str, category: str, quantity: int, price: int) -> Line:
    return Line(product_id=sku, sku=sku, name=name, category=category, quantity=quantity,
                price_cents=price)


TENIS = ("SKU-1", "Tênis", "Calçados > Tênis")
ORDERS = {
    "a": [_order("A1", "2026-01-10", "paid", 10000, _line(*TENIS, 1, 10000)),
          _order("A2", "2026-02-05", "paid", 5000, _line("SKU-2", "Meia", "Roupas > Meias", 2,
                                                         2500)),
          _order("A3", "2026-03-20", "cancelled", 99900, _line(*TENIS, 9, 11100))],
    "b": [_order("B1", "2026-02-14", "paid", 20000, _line(*TENIS, 2, 10000)),
          _order("B2", "2026-02-20", "refunded", 8000, _line(*TENIS, 1, 8000))],
    "c": [_order("C1", "2026-03-03", "paid", 3000, _line("SKU-3", "Boné", "Acessórios", 1,
                                                         3000))],
}


@pytest.fixture
def shop(engine, settings) -> dict[str, int]:
    with session_scope(engine) as session:
        ids = {}
        for name, country in (("a", "BR"), ("b", "BR"), ("c", "PT"), ("d", "AR")):
            customer, _new = profile.upsert_customer(
                session=session, data=CustomerIn(email=f"{name}@example.com", country=country),
                default_region="BR")
            ids[name] = customer.id
        load_orders(session=session, source="import", exchange=settings.exchange, orders=[
            Placed(order, ids[name]) for name, orders in ORDERS.items() for order in orders])
    return ids


def test_overview_over_everything_and_over_a_period(api, shop):
    assert api.get("/api/v1/reports/overview").json() == {
        "customers": 4, "buyers": 3, "new_buyers": 3, "returning_buyers": 0, "orders": 4,
        "revenue_total": 380.0, "average_order_value": 95.0,
        "repeat_purchase_rate": pytest.approx(1 / 3, abs=1e-6)}
    assert api.get("/api/v1/reports/overview", params={"start": "2026-02-01"}).json() == {
        "customers": 4, "buyers": 3, "new_buyers": 2, "returning_buyers": 1, "orders": 3,
        "revenue_total": 280.0, "average_order_value": pytest.approx(93.33),
        "repeat_purchase_rate": 0.0}


def test_revenue_by_month_and_by_iso_week(api, shop):
    def rows(interval: str) -> list[tuple]:
        answer = api.get("/api/v1/reports/revenue", params={"interval": interval})
        assert answer.status_code == 200, answer.text
        return [(row["period"], row["orders"], row["revenue_total"], row["buyers"],
                 row["new_buyers"], row["returning_buyers"]) for row in answer.json()]

    assert rows("month") == [("2026-01-01", 1, 100.0, 1, 1, 0),
                             ("2026-02-01", 2, 250.0, 2, 1, 1),
                             ("2026-03-01", 1, 30.0, 1, 1, 0)]
    assert rows("week") == [("2026-01-05", 1, 100.0, 1, 1, 0),
                            ("2026-02-02", 1, 50.0, 1, 0, 1),
                            ("2026-02-09", 1, 200.0, 1, 1, 0),
                            ("2026-03-02", 1, 30.0, 1, 1, 0)]
    assert rows("day")[0] == ("2026-01-10", 1, 100.0, 1, 1, 0)
    assert api.get("/api/v1/reports/revenue", params={"interval": "year"}).status_code == 422


def test_distributions_cohorts_top_sellers_and_countries(api, shop):
    by_orders = api.get("/api/v1/reports/distribution", params={"by": "orders"}).json()
    assert [(bucket["low"], bucket["high"], bucket["customers"]) for bucket in by_orders] == [
        (1, 1, 1), (2, 2, 2), (3, 3, 0), (4, 4, 0), (5, 5, 0), (6, 10, 0), (11, 20, 0),
        (21, None, 0)]
    by_revenue = api.get("/api/v1/reports/distribution").json()
    assert [(bucket["low"], bucket["high"], bucket["customers"]) for bucket in by_revenue] == [
        (0, 10, 0), (10, 20, 0), (20, 50, 1), (50, 100, 0), (100, 200, 1), (200, None, 1)]
    cohorts = api.get("/api/v1/reports/cohorts", params={"months": 2}).json()
    assert [(row["cohort"], row["customers"], row["retention"]) for row in cohorts] == [
        ("2026-01-01", 1, [1.0, 1.0, 0.0]), ("2026-02-01", 1, [1.0, 0.0, 0.0]),
        ("2026-03-01", 1, [1.0, 0.0, 0.0])]
    top = api.get("/api/v1/reports/top").json()
    assert [(row["key"], row["name"], row["units"], row["orders"], row["revenue_total"])
            for row in top] == [("SKU-1", "Tênis", 3, 2, 300.0), ("SKU-2", "Meia", 2, 1, 50.0),
                                ("SKU-3", "Boné", 1, 1, 30.0)]
    categories = api.get("/api/v1/reports/top", params={"by": "category", "limit": 2}).json()
    assert [(row["key"], row["units"], row["revenue_total"]) for row in categories] == [
        ("Calçados", 3, 300.0), ("Roupas", 2, 50.0)]
    countries = api.get("/api/v1/reports/countries").json()
    assert [(row["country"], row["customers"], row["buyers"], row["revenue_total"])
            for row in countries] == [("BR", 2, 2, 350.0), ("AR", 1, 0, 0.0),
                                      ("PT", 1, 1, 30.0)]
