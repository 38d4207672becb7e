"""The official Segment Python library, pointed at a real server, lands on one profile."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

import httpx
import pytest
import requests
from segment.analytics import client as segment_client
from segment.analytics.client import Client

if TYPE_CHECKING:
    from tests.server import LiveServer

pytest_plugins = ("tests.server",)
pytestmark = pytest.mark.server

USER_ID = "seg-user-1"
ANONYMOUS_ID = "seg-anon-1"
LANDING_ID = "seg-anon-landing"
TRAITS = {"email": "Seg.User@Example.COM", "firstName": "Ada", "lastName": "Lovelace"}
PAGE_PROPERTIES = {"path": "/", "title": "Home", "url": "https://shop.example.com/"}
PRODUCT = {"product_id": "sku-42", "name": "Linen Shirt", "price": 79.9, "currency": "BRL"}


@pytest.fixture
def uploads(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[dict[str, Any]]]:
    """Every answer the server gave the library; a call the batch rejected fails the test.

    In sync mode the library raises APIError on any non-2xx answer, but /v1/batch answers
    200 and lists invalid calls in `rejected`, which the library does not look at.
    """
    answers: list[dict[str, Any]] = []
    original = segment_client.post

    def checked_post(*args: Any, **kwargs: Any) -> requests.Response:
        response: requests.Response = original(*args, **kwargs)
        answer = response.json()
        answers.append(answer)
        assert answer == {"success": True, "rejected": []}, answer
        return response

    monkeypatch.setattr(segment_client, "post", checked_post)
    yield answers


def _send_calls(client: Client, start: datetime) -> None:
    """A visitor lands anonymously, signs up, views a product; the library aliases them."""
    client.page(anonymous_id=LANDING_ID, name="Home", properties=PAGE_PROPERTIES,
                timestamp=start)
    client.identify(user_id=USER_ID, anonymous_id=ANONYMOUS_ID, traits=TRAITS,
                    timestamp=start + timedelta(minutes=1))
    client.track(user_id=USER_ID, event="Product Viewed", properties=PRODUCT,
                 timestamp=start + timedelta(minutes=2))
    client.alias(previous_id=LANDING_ID, user_id=USER_ID, timestamp=start + timedelta(minutes=3))


def _api(server: LiveServer, secret_key: str) -> httpx.Client:
    return httpx.Client(base_url=server.base_url, timeout=10.0,
                        headers={"Authorization": f"Bearer {secret_key}"})


def _one_customer(api: httpx.Client) -> dict[str, Any]:
    response = api.get("/api/v1/customers", params={"user_id": USER_ID})
    assert response.status_code == 200, response.text
    items = response.json()["items"]
    assert len(items) == 1, items
    customer: dict[str, Any] = items[0]
    return customer


def _events(api: httpx.Client, customer_id: int) -> list[dict[str, Any]]:
    response = api.get(f"/api/v1/customers/{customer_id}/events")
    assert response.status_code == 200, response.text
    page = response.json()
    assert page["next_cursor"] is None, page
    items: list[dict[str, Any]] = page["items"]
    return items


def _check_customer(customer: dict[str, Any]) -> None:
    assert customer["email"] == "seg.user@example.com"
    assert (customer["first_name"], customer["last_name"]) == ("Ada", "Lovelace")
    identities = sorted((i["kind"], i["value"]) for i in customer["identities"])
    assert identities == [("anonymous_id", ANONYMOUS_ID), ("anonymous_id", LANDING_ID),
                          ("email", "seg.user@example.com"), ("user_id", USER_ID)]
    aggregates = customer["aggregates"]
    assert aggregates["events"] == {"identify": 1, "track": 1, "page": 1, "screen": 0,
                                    "group": 0, "alias": 1}
    assert aggregates["events_total"] == 4
    assert (aggregates["orders_count"], aggregates["revenue_total"]) == (0, 0.0)


def _check_events(events: list[dict[str, Any]], start: datetime) -> None:
    assert [(e["type"], e["event"]) for e in events] == [
        ("alias", None), ("track", "Product Viewed"), ("identify", None), ("page", "Home")]
    alias, track, identify, page = events
    assert [e["user_id"] for e in events] == [USER_ID, USER_ID, USER_ID, None]
    assert [e["anonymous_id"] for e in events] == [None, None, ANONYMOUS_ID, LANDING_ID]
    assert track["properties"] == PRODUCT
    assert page["properties"] == PAGE_PROPERTIES
    assert identify["traits"] == TRAITS
    assert identify["properties"] == {} and alias["properties"] == {}
    originals = [datetime.fromisoformat(e["original_timestamp"]) for e in reversed(events)]
    assert originals == [start + timedelta(minutes=n) for n in range(4)]
    assert all(e["context"]["library"]["name"] == "analytics-python" for e in events)


def test_segment_library_calls_build_one_profile(live_server: LiveServer, write_key: str,
                                                  secret_key: str,
                                                  uploads: list[dict[str, Any]]) -> None:
    start = (datetime.now(UTC) - timedelta(hours=1)).replace(microsecond=0)
    client = Client(write_key=write_key, host=live_server.base_url, sync_mode=True,
                    timeout=10)
    _send_calls(client, start)
    assert len(uploads) == 4

    with _api(live_server, secret_key) as api:
        customer = _one_customer(api)
        _check_customer(customer)
        _check_events(_events(api, customer["id"]), start)
    assert "Traceback" not in live_server.output(), live_server.output()
