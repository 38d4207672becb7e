"""The dashboard in headless Chromium against a real server: sign in, search, profile."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx
import pytest
from playwright.sync_api import Page, expect
from sqlalchemy import Engine

from clientela.db import session_scope
from clientela.team import service as team
from tests.helpers import basic

if TYPE_CHECKING:
    from tests.server import LiveServer

pytest_plugins = ("tests.server", "tests.browser")
pytestmark = pytest.mark.browser

SCREENSHOT = Path("/tmp/clientela-profile.png")
OWNER_EMAIL = "owner@example.com"
OWNER_PASSWORD = "correct-horse-battery"
START = datetime(2024, 5, 10, 12, 0, tzinfo=UTC)


def _at(minutes: int) -> str:
    return (START + timedelta(minutes=minutes)).isoformat()


def _create_owner(engine: Engine) -> None:
    with session_scope(engine) as session:
        team.create_user(session=session, email=OWNER_EMAIL, password=OWNER_PASSWORD,
                         role="owner")


def _send(server: LiveServer, write_key: str, kind: str, **call: Any) -> None:
    response = httpx.post(f"{server.base_url}/v1/{kind}", json=call, headers=basic(write_key),
                          timeout=10.0)
    assert response.status_code == 200, response.text
    assert response.json() == {"success": True}, response.text


def _load_customers(server: LiveServer, write_key: str) -> None:
    """Marina buys once and looks at a product; João only signs up, later."""
    _send(server, write_key, "identify", userId="dash-1", anonymousId="anon-dash-1",
          timestamp=_at(0), traits={"email": "Marina.Souza@Example.com",
                                    "firstName": "Marina", "lastName": "Souza"})
    _send(server, write_key, "track", userId="dash-1", event="Order Completed",
          timestamp=_at(1), properties={"order_id": "o-100", "total": 120.50, "products": [
              {"product_id": "sku-7", "name": "Linen Shirt", "price": 120.50}]})
    _send(server, write_key, "track", userId="dash-1", event="Product Viewed",
          timestamp=_at(2), properties={"product_id": "sku-7", "name": "Linen Shirt"})
    _send(server, write_key, "identify", userId="dash-2", timestamp=_at(3),
          traits={"email": "joao.pereira@example.com", "firstName": "João",
                  "lastName": "Pereira"})


def _row_names(page: Page) -> list[str]:
    return page.locator("#customer-rows tbody td:first-child").all_inner_texts()


def _definitions(page: Page, selector: str) -> dict[str, str]:
    terms = page.locator(f"{selector} dt").all_inner_texts()
    values = page.locator(f"{selector} dd").all_inner_texts()
    return dict(zip(terms, values, strict=True))


def _sign_in(page: Page, server: LiveServer) -> None:
    page.goto(f"{server.base_url}/customers")
    expect(page).to_have_url(f"{server.base_url}/login")
    page.get_by_label("E-mail").fill(OWNER_EMAIL)
    page.get_by_label("Password").fill("not-the-password")
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("alert")).to_have_text("Wrong e-mail or password.")
    expect(page).to_have_url(f"{server.base_url}/login")
    page.get_by_label("E-mail").fill(OWNER_EMAIL)
    page.get_by_label("Password").fill(OWNER_PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    expect(page).to_have_url(f"{server.base_url}/overview")
    page.goto(f"{server.base_url}/customers")


def _search(page: Page, server: LiveServer) -> None:
    expect(page.locator("#customer-total")).to_have_text("2 customers")
    assert _row_names(page) == ["João Pereira", "Marina Souza"]
    emails = page.locator("#customer-rows tbody td:nth-child(2)").all_inner_texts()
    assert emails == ["joao.pereira@example.com", "marina.souza@example.com"]
    page.get_by_role("searchbox", name="Search customers").press_sequentially("souz", delay=30)
    expect(page.locator("#customer-total")).to_have_text("1 customer")
    expect(page).to_have_url(f"{server.base_url}/customers?q=souz")
    assert _row_names(page) == ["Marina Souza"]


def _check_profile(page: Page, server: LiveServer) -> None:
    page.get_by_role("link", name="Marina Souza").click()
    expect(page).to_have_url(re.compile(rf"^{re.escape(server.base_url)}/customers/\d+$"))
    expect(page.get_by_role("heading", level=1)).to_have_text("Marina Souza")
    assert page.locator("#identities li").all_inner_texts() == [
        "user_id dash-1", "anonymous_id anon-dash-1", "email marina.souza@example.com"]
    assert _definitions(page, "#aggregates") == {
        "Orders": "1", "Revenue": "120.50", "Average order": "120.50",
        "First order": "2024-05-10", "Last order": "2024-05-10",
        "identify calls": "1", "track calls": "2"}
    timeline = page.locator("#timeline li")
    assert timeline.locator("time").all_inner_texts() == [
        "2024-05-10 12:02:00", "2024-05-10 12:01:00", "2024-05-10 12:00:00"]
    # The stylesheet upper-cases the kind; inner texts are what the reader sees.
    assert timeline.locator(".kind").all_inner_texts() == ["TRACK", "TRACK", "IDENTIFY"]
    assert timeline.locator("strong").all_inner_texts() == [
        "Product Viewed", "Order Completed", ""]
    assert timeline.locator(".props").all_inner_texts() == [
        "name=Linen Shirt, product_id=sku-7",
        'order_id=o-100, products=[{"name": "Linen Shirt", "price": 120.5, '
        '"product_id": "sku-7"}], total=120.5']
    assert page.locator("#orders tbody tr td").all_inner_texts() == [
        "2024-05-10 12:01", "o-100", "placed", "1× Linen Shirt", "BRL 120.50", "—", "web"]
    page.screenshot(path=str(SCREENSHOT), full_page=True)


def _check_products(page: Page, server: LiveServer) -> None:
    page.get_by_role("link", name="Products").click()
    expect(page).to_have_url(f"{server.base_url}/products")
    assert page.locator("#products tbody td").all_inner_texts() == [
        "Linen Shirt", "—", "—", "—", "BRL 120.50"]
    page.get_by_role("link", name="Linen Shirt").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Linen Shirt")
    assert _definitions(page, "#sales") == {"Orders": "1", "Units": "1", "Buyers": "1",
                                            "Revenue": "BRL 120.50"}
    assert page.locator("#buyers li").all_inner_texts() == ["Marina Souza"]


def test_sign_in_search_and_profile(live_server: LiveServer, engine: Engine, write_key: str,
                                    page: Page) -> None:
    _create_owner(engine)
    _load_customers(live_server, write_key)
    _sign_in(page, live_server)
    _search(page, live_server)
    _check_profile(page, live_server)
    _check_products(page, live_server)
    assert "Traceback" not in live_server.output(), live_server.output()
