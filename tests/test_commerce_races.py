"""Two workers writing the same order at the same moment, each in its own transaction on its
own connection: webhook deliveries of one new order, refunds of one order, and an event that
waits for its order while another writer creates it. The second worker acts while the first
is between its read and its commit. On PostgreSQL these are real races; SQLite lets one
writer at a time, so there the second simply waits."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from clientela.api.app import create_app
from clientela.commerce import orders, service
from clientela.commerce.models import EarlyOrderEvent, Order, Refund
from clientela.core.clock import utcnow
from clientela.core.money import Exchange
from clientela.db import build_engine, session_scope
from clientela.tracking.schemas import parse_event
from clientela.tracking.service import record_events
from clientela.tracking.store import pending
from tests.test_shopify import ORDER, REFUND, SECRET, _post


def _meanwhile(monkeypatch: pytest.MonkeyPatch, owner: Any, name: str,
               other: Callable[[], None]) -> list[threading.Thread]:
    """Right after the next call of `owner.name`, start `other` (another worker's write) in a
    thread and give it a second: a write that has to wait for this one's locks waits, and
    this one goes on to its commit."""
    original = getattr(owner, name)
    started: list[threading.Thread] = []

    def then_other(*args: Any, **kwargs: Any) -> Any:
        monkeypatch.setattr(owner, name, original)
        result = original(*args, **kwargs)
        thread = threading.Thread(target=other)
        started.append(thread)
        thread.start()
        thread.join(1.0)
        return result

    monkeypatch.setattr(owner, name, then_other)
    return started


@pytest.fixture
def workers(settings) -> Iterator[tuple[TestClient, TestClient]]:
    """Two servers with their own engines (connection pools), as two worker processes."""
    tuned = settings.model_copy(update={"shopify_webhook_secret": SECRET})
    engines = [build_engine(tuned) for _ in range(2)]
    with TestClient(create_app(tuned, engines[0])) as first, \
            TestClient(create_app(tuned, engines[1])) as second:
        yield first, second
    for engine in engines:
        engine.dispose()


def _finish(threads: list[threading.Thread]) -> None:
    for thread in threads:
        thread.join(30)
        assert not thread.is_alive()


def _refund(refund_id: int, amount: str) -> dict[str, Any]:
    return {**REFUND, "id": refund_id, "transactions": [
        {"id": refund_id + 1, "amount": amount, "kind": "refund", "status": "success"}]}


def _totals(api: TestClient, order: dict[str, Any]) -> tuple[int, float]:
    aggregates = api.get(f"/api/v1/customers/{order['customer_id']}").json()["aggregates"]
    return aggregates["orders_count"], aggregates["revenue_total"]


def test_two_deliveries_of_a_new_order_at_once_make_one_order(workers, api, monkeypatch):
    first, second = workers
    answers: list[int] = []
    updated = {**ORDER, "financial_status": "partially_refunded", "refunds": [REFUND]}
    # The second delivery arrives once the first has inserted the order, before its commit.
    threads = _meanwhile(monkeypatch, service, "observe_products", lambda: answers.append(
        _post(second, "orders/updated", updated, "w-2").status_code))
    answers.append(_post(first, "orders/create", ORDER, "w-1").status_code)
    _finish(threads)
    assert answers == [200, 200]
    [order] = api.get("/api/v1/orders").json()["items"]
    assert (order["total"], order["refunded"], order["net_store"], len(order["items"])) == (
        "598.94", "41.94", "557.00", 2)
    assert _totals(api, order) == (1, 557.0)
    assert len(api.get("/api/v1/customers").json()["items"]) == 1


def test_two_refunds_of_one_order_at_once_both_count(workers, api, monkeypatch):
    first, second = workers
    assert _post(first, "orders/create", ORDER, "w-1").status_code == 200
    answers: list[int] = []
    # The second refund comes once the first has summed the order's refunds, before commit.
    threads = _meanwhile(monkeypatch, service, "_settle", lambda: answers.append(
        _post(second, "refunds/create", _refund(802, "20.00"), "w-3").status_code))
    answers.append(_post(first, "refunds/create", _refund(801, "41.94"), "w-2").status_code)
    _finish(threads)
    assert answers == [200, 200]
    [order] = api.get("/api/v1/orders").json()["items"]
    assert (order["refunded"], order["net_store"],
            sorted(refund["amount"] for refund in order["refunds"])) == (
        "61.94", "537.00", ["20.00", "41.94"])
    assert _totals(api, order) == (1, 537.0)


def _record(engine, **call: object) -> None:
    with session_scope(engine) as session:
        record_events(session=session, source_id=1, default_region="BR", exchange=Exchange(),
                      events=[pending(parse_event(call, kind=None, received_at=utcnow()))])


def _refund_and_order_at_once(settings, engine, monkeypatch, after: str) -> None:
    """The refund comes from the shop's server with the user id, the order from the browser
    of a visitor not identified yet: two customers, so nothing else makes the writers wait.
    The order's writer acts once the refund's writer has called `orders.<after>`."""
    other = build_engine(settings)
    threads = _meanwhile(monkeypatch, orders, after, lambda: _record(
        other, type="track", anonymousId="device-1", event="Order Completed",
        messageId="completed", properties={"order_id": "o-1", "total": 100}))
    _record(engine, type="track", userId="u1", event="Order Refunded", messageId="refunded",
            properties={"order_id": "o-1", "total": 30})
    _finish(threads)
    other.dispose()
    with session_scope(engine, writes=False) as session:
        order = session.scalars(select(Order)).one()
        refunds = session.scalars(select(Refund.amount_cents)).all()
        waiting = session.scalars(select(EarlyOrderEvent.id)).all()
    assert (order.total_cents, order.refunded_cents, order.net_store_cents, refunds,
            waiting) == (10000, 3000, 7000, [3000], [])


def test_a_refund_kept_for_its_order_is_found_by_the_writer_creating_it_meanwhile(
        settings, engine, write_key, monkeypatch):
    # The order's writer comes just before the refund's commits: it finds the kept refund.
    _refund_and_order_at_once(settings, engine, monkeypatch, "take_early_events")


def test_an_order_created_meanwhile_is_found_before_its_refund_is_kept(
        settings, engine, write_key, monkeypatch):
    # The order's writer commits while the refund's looks for the order: the refund's writer
    # looks again before keeping the refund, and finds it.
    _refund_and_order_at_once(settings, engine, monkeypatch, "_new_orders")
