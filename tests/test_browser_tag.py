"""The browser tag on a shop's own site (another origin): a visitor's journey, before and
after signing in, ends up on one customer's timeline."""

from __future__ import annotations

import functools
import http.server
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import httpx
import pytest
from playwright.sync_api import Page, expect

from clientela.db import session_scope
from clientela.team import service as team
from tests.pg import free_port

if TYPE_CHECKING:
    from tests.server import LiveServer

pytest_plugins = ("tests.server", "tests.browser")
pytestmark = pytest.mark.browser
SHOP = Path(__file__).parent / "shop"


@pytest.fixture
def shop(tmp_path: Path, live_server: LiveServer, engine) -> Iterator[str]:
    """The demo shop's pages on their own origin, with the tag pointing at Clientela."""
    with session_scope(engine) as session:
        key = team.create_key(session=session, kind="write", name="loja demo").key
    for page in SHOP.iterdir():
        text = page.read_text().replace("{host}", live_server.base_url)
        (tmp_path / page.name).write_text(text.replace("{write_key}", key))
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(tmp_path))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", free_port()), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()


def _timeline(live_server: LiveServer, secret: str, user_id: str
              ) -> tuple[dict, list[dict]]:
    """The customer's events once the tag's batches have arrived (at most 10 s)."""
    headers = {"Authorization": f"Bearer {secret}"}
    deadline = time.monotonic() + 10
    while True:
        found = httpx.get(f"{live_server.base_url}/api/v1/customers",
                          params={"user_id": user_id}, headers=headers).json()["items"]
        if found:
            events = httpx.get(f"{live_server.base_url}/api/v1/customers/{found[0]['id']}"
                               "/events", headers=headers).json()["items"]
            if len(events) >= 4 or time.monotonic() > deadline:
                return found[0], events
        assert time.monotonic() < deadline, "the tag's events never arrived"
        time.sleep(0.2)


def test_a_visitors_journey_reaches_the_timeline(page: Page, shop: str,
                                                 live_server: LiveServer, engine) -> None:
    with session_scope(engine) as session:
        secret = team.create_key(session=session, kind="secret").key
    page.goto(f"{shop}/index.html?utm_source=newsletter&utm_campaign=black-friday")
    page.click("#view")
    page.click("#add")
    anonymous_id = page.evaluate("clientela.anonymousId()")
    page.click("#sign-in button")
    expect(page.locator("#done")).to_have_text("Bem-vinda de volta!")
    customer, events = _timeline(live_server, secret, "shop-user-7")
    assert [(e["type"], e["event"]) for e in events] == [
        ("identify", None), ("track", "Product Added"), ("track", "Product Viewed"),
        ("page", "Loja Demo")]
    assert {"kind": "anonymous_id", "value": anonymous_id} in customer["identities"]
    assert customer["email"] == "bia@example.com"
    assert events[3]["anonymous_id"] == anonymous_id and events[3]["user_id"] is None
    assert events[3]["context"]["campaign"] == {"source": "newsletter", "name": "black-friday"}
    assert events[3]["context"]["page"]["path"] == "/index.html"
    assert events[1]["properties"]["product_id"] == "TEN-001"
    assert events[0]["user_id"] == "shop-user-7"
    cookie = {c["name"]: c["value"] for c in page.context.cookies()}
    assert cookie["clientela_aid"] == anonymous_id
