"""The overview, RFM and segment builder pages in headless Chromium against a real server."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import TYPE_CHECKING

import pytest
from playwright.sync_api import Page, expect
from sqlalchemy import Engine

from clientela.analytics import service as analytics
from clientela.db import session_scope
from tests.test_dashboard import OWNER_EMAIL, OWNER_PASSWORD, _create_owner, _send

if TYPE_CHECKING:
    from tests.server import LiveServer

pytest_plugins = ("tests.server", "tests.browser")
pytestmark = pytest.mark.browser


def _orders(server: LiveServer, write_key: str) -> None:
    """Three buyers: Ana twice (January and March), Bia and Caio once (March)."""
    placed = [("ana", "A1", "2026-01-15", 100.0), ("ana", "A2", "2026-03-02", 60.0),
              ("bia", "B1", "2026-03-05", 250.0), ("caio", "C1", "2026-03-09", 40.0)]
    for user, order_id, day, total in placed:
        _send(server, write_key, "identify", userId=user, timestamp=f"{day}T09:00:00Z",
              traits={"email": f"{user}@example.com", "firstName": user.title()})
        _send(server, write_key, "track", userId=user, event="Order Completed",
              timestamp=f"{day}T10:00:00Z", properties={
                  "order_id": order_id, "total": total, "currency": "BRL",
                  "products": [{"product_id": "P1", "name": "Caneca", "price": total,
                                "category": "Casa > Cozinha"}]})


def _sign_in(page: Page, server: LiveServer) -> None:
    page.goto(f"{server.base_url}/login")
    page.get_by_label("E-mail").fill(OWNER_EMAIL)
    page.get_by_label("Password").fill(OWNER_PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    expect(page).to_have_url(f"{server.base_url}/overview")


def test_overview_rfm_and_a_segment_built_with_a_live_count(
        live_server: LiveServer, engine: Engine, write_key: str, page: Page) -> None:
    _create_owner(engine)
    _orders(live_server, write_key)
    with session_scope(engine) as session:
        analytics.compute_rfm(session=session, as_of=datetime(2026, 3, 10).date(),
                              now=datetime(2026, 3, 10, tzinfo=UTC))
    _sign_in(page, live_server)
    expect(page.locator("#kpi-orders")).to_have_text("4")
    expect(page.locator("#kpi-revenue")).to_have_text("BRL 450.00")
    expect(page.locator("#kpi-buyers")).to_have_text("3")
    bars = page.locator("#revenue-by-month rect.bar")
    assert [(bars.nth(i).get_attribute("data-label"), bars.nth(i).get_attribute("data-value"))
            for i in range(bars.count())] == [("2026-01", "100.0"), ("2026-03", "350.0")]
    expect(page.locator("#cohorts tbody tr")).to_have_count(2)
    expect(page.locator("#top-categories tbody tr td").first).to_have_text("Casa")

    page.get_by_role("link", name="RFM").click()
    # Ana (2 purchases) is the only one with the higher frequency score.
    cells = {(cell.get_attribute("data-r"), cell.get_attribute("data-f")):
             cell.locator("strong").inner_text()
             for cell in page.locator("#rfm-grid td").all()}
    assert sum(int(count) for count in cells.values()) == 3
    expect(page.locator("#rfm-groups tbody tr")).to_have_count(11)

    page.get_by_role("link", name="Segments").click()
    page.get_by_role("link", name="New segment").click()
    page.locator("#segment-name").fill("Repeat buyers")
    expect(page.locator("#live-count")).to_have_text("3 customers")  # everyone: all of nothing
    page.get_by_role("button", name="Add condition").click()  # orders_count gte 1
    expect(page.locator("#live-count")).to_have_text("3 customers")
    page.get_by_label("Value").fill("2")
    page.get_by_label("Value").press("Tab")
    expect(page.locator("#live-count")).to_have_text("1 customers")
    page.get_by_label("Value").fill("lots")  # not a number: the rule's error, named
    page.get_by_label("Value").press("Tab")
    expect(page.locator("#live-count")).to_have_text("rule.all[0].value: must be a number")
    page.get_by_label("Operator").select_option("gt")
    page.get_by_label("Value").fill("1")
    page.get_by_label("Value").press("Tab")
    expect(page.locator("#live-count")).to_have_text("1 customers")
    page.get_by_role("button", name="Save segment").click()
    expect(page).to_have_url(re.compile(r"/segments/\d+$"))
    expect(page.locator("#segment-size")).to_have_text("1")
    expect(page.locator("#segment-members tbody tr")).to_have_count(1)
    expect(page.locator("#segment-members tbody td").nth(1)).to_have_text("ana@example.com")
    page.get_by_role("link", name="Segments").click()
    expect(page.locator("#segment-list tbody tr td").nth(1)).to_have_text("1")
    assert "Traceback" not in live_server.output(), live_server.output()
