"""The dashboard's scenario pages: the list (triggers in words, on/off switches, reports),
ready-made scenarios, the editor (saved exactly, refused with the field named and nothing
saved) and the report by step, over HTTP on SQLite and PostgreSQL; and a ready-made scenario
edited in headless Chromium."""

from __future__ import annotations

import html
import json
import re
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

import httpx
import pytest
from fastapi.testclient import TestClient
from playwright.sync_api import Page, expect
from sqlalchemy import Engine, select

from clientela.automation import service, tasks
from clientela.automation.models import Scenario
from clientela.config import Settings
from clientela.core.clock import utcnow
from clientela.db import session_scope
from clientela.messaging import service as messaging
from clientela.messaging.models import Template
from clientela.segments import service as segments
from clientela.team import service as team
from tests.helpers import OWNER, PASSWORD, basic, sign_in

if TYPE_CHECKING:
    from tests.server import LiveServer

pytest_plugins = ("tests.server", "tests.browser")

T0 = datetime(2026, 11, 20, 14, 0, tzinfo=UTC)
READY_NAMES = ["Carrinho abandonado", "Boas-vindas", "Pós-compra", "Reconquista",
               "Aniversário"]


def _text(page_html: str, element_id: str) -> str:
    found = re.search(rf'id="{element_id}"[^>]*>([^<]*)<', page_html)
    assert found, f"no #{element_id} in the page"
    return html.unescape(found.group(1))


def _steps_field(page_html: str) -> Any:
    found = re.search(r'id="steps-json"[^>]*>([^<]*)</textarea>', page_html)
    assert found, "no steps field in the page"
    return json.loads(html.unescape(found.group(1)))


def _rows(page_html: str, table_id: str) -> list[list[str]]:
    """The table's body rows as the cells' text."""
    body = page_html.split(f'id="{table_id}"', 1)[1].split("<tbody>", 1)[1]
    body = body.split("</tbody>", 1)[0]
    return [[html.unescape(re.sub(r"<[^>]+>", "", cell)).strip()
             for cell in re.findall(r"<td[^>]*>(.*?)</td>", row, re.S)]
            for row in re.findall(r"<tr[^>]*>(.*?)</tr>", body, re.S)]


def _scenario(engine: Engine, scenario_id: int) -> dict[str, Any]:
    with session_scope(engine, writes=False) as session:
        s = service.get_scenario(session=session, scenario_id=scenario_id)
        return {"name": s.name, "trigger": s.trigger, "steps": s.steps,
                "goal_event": s.goal_event, "reentry": s.reentry,
                "quiet": (s.quiet_start, s.quiet_end), "active": s.active}


def _templates(engine: Engine) -> dict[str, int]:
    with session_scope(engine, writes=False) as session:
        return dict(session.execute(select(Template.name, Template.id)).tuples().all())


def _welcome(client: TestClient) -> int:
    created = client.post("/scenarios/ready-made", data={"key": "welcome"},
                          follow_redirects=False)
    assert created.status_code == 303, created.text
    return int(created.headers["location"].rsplit("/", 1)[1])


def test_pages_need_a_signed_in_user(client: TestClient) -> None:
    for path in ("/scenarios", "/scenarios/new", "/scenarios/1"):
        answer = client.get(path, follow_redirects=False)
        assert (answer.status_code, answer.headers["location"]) == (303, "/login"), path
    for path in ("/scenarios", "/scenarios/1", "/scenarios/1/switch", "/scenarios/ready-made"):
        answer = client.post(path, data={}, follow_redirects=False)
        assert (answer.status_code, answer.headers["location"]) == (303, "/login"), path


def test_ready_made_scenarios_are_created_listed_and_switched(
        client: TestClient, engine: Engine) -> None:
    sign_in(client, engine)
    listed = client.get("/scenarios").text
    assert "No scenarios yet." in listed
    assert re.findall(r"Create “([^”]+)”", listed) == READY_NAMES
    assert 'href="/scenarios/new"' in listed

    scenario_id = _welcome(client)
    t = _templates(engine)
    assert _scenario(engine, scenario_id) == {
        "name": "Boas-vindas", "trigger": {"type": "subscribed"}, "steps": [
            {"type": "email", "template_id": t["Boas-vindas: 1. boas-vindas"],
             "subject": "Bem-vindo(a), {{ customer.first_name }}!"},
            {"type": "wait", "days": 3},
            {"type": "email", "template_id": t["Boas-vindas: 2. mais vendidos"],
             "subject": "Os mais vendidos da semana"}],
        "goal_event": None, "reentry": "never", "quiet": (22, 8), "active": False}
    listed = client.get("/scenarios").text
    assert re.findall(r"Create “([^”]+)”", listed) == [
        name for name in READY_NAMES if name != "Boas-vindas"]
    assert _rows(listed, "scenario-list") == [[
        "Boas-vindas", "The customer subscribes to marketing e-mail", "Off",
        "0", "0", "0", "0", "0", "0", "BRL 0.00"]]
    assert 'role="switch" aria-checked="false" aria-label="Boas-vindas"' in listed

    # htmx switches without a reload: it gets the switch back, now on.
    switched = client.post(f"/scenarios/{scenario_id}/switch",
                           data={"active": "on", "back": "list"}, headers={"HX-Request": "true"})
    assert switched.status_code == 200
    assert 'aria-checked="true"' in switched.text and "<html" not in switched.text
    assert 'name="active" value="off"' in switched.text
    assert _scenario(engine, scenario_id)["active"] is True
    # A plain form goes back to the page it came from.
    off = client.post(f"/scenarios/{scenario_id}/switch", data={"active": "off", "back": "list"},
                      follow_redirects=False)
    assert (off.status_code, off.headers["location"]) == (303, "/scenarios")
    assert _scenario(engine, scenario_id)["active"] is False
    on = client.post(f"/scenarios/{scenario_id}/switch", data={"active": "on", "back": "page"},
                     follow_redirects=False)
    assert on.headers["location"] == f"/scenarios/{scenario_id}"
    assert _scenario(engine, scenario_id)["active"] is True
    assert client.post("/scenarios/999/switch", data={"active": "on"}).status_code == 404

    unknown = client.post("/scenarios/ready-made", data={"key": "nope"})
    assert unknown.status_code == 400
    assert _text(unknown.text, "scenarios-error") == (
        "ready_made: must be one of abandoned_cart, birthday, post_purchase, welcome, win_back")


def _form(**fields: Any) -> dict[str, str]:
    """The editor's fields as the browser posts them (steps as JSON)."""
    values = {"name": "Boas-vindas VIP", "trigger_type": "subscribed", "goal_event": "",
              "reentry": "never", "quiet_start": "22", "quiet_end": "8",
              "steps": [{"type": "wait", "hours": 1}]}
    values.update(fields)
    if not isinstance(values["steps"], str):
        values["steps"] = json.dumps(values["steps"])
    return values


def test_the_editor_saves_exactly_and_refuses_a_bad_template_saving_nothing(
        client: TestClient, engine: Engine) -> None:
    sign_in(client, engine)
    scenario_id = _welcome(client)
    t = _templates(engine)
    first, second = t["Boas-vindas: 1. boas-vindas"], t["Boas-vindas: 2. mais vendidos"]
    with session_scope(engine) as session:
        vip = segments.create_segment(session=session, name="VIP", rule={"tag": "vip"},
                                      description=None, now=utcnow(), currency="BRL").id
    page = client.get(f"/scenarios/{scenario_id}").text
    assert _steps_field(page) == _scenario(engine, scenario_id)["steps"]
    assert 'value="subscribed" selected' in page and 'value="never" selected' in page

    steps = [{"type": "email", "template_id": first, "subject": "Oi", "coupon": "BEMVINDO5"},
             {"type": "branch", "rule": {"tag": "vip"}, "else_step": 3},
             {"type": "tag", "add": "vip-welcomed"},
             {"type": "wait", "best_hour": True},
             {"type": "email", "template_id": second, "subject": "Mais"}]
    saved = client.post(f"/scenarios/{scenario_id}", follow_redirects=False, data=_form(
        trigger_type="segment_entered", trigger_segment_id=str(vip), trigger_event="ignored",
        goal_event=" Order Completed ", reentry="after_exit", quiet_start="21",
        quiet_end="7", steps=steps))
    assert (saved.status_code, saved.headers["location"]) == (303, f"/scenarios/{scenario_id}")
    expected = {"name": "Boas-vindas VIP",
                "trigger": {"type": "segment_entered", "segment_id": vip,
                            "exit_on_leave": False},
                "steps": steps, "goal_event": "Order Completed", "reentry": "after_exit",
                "quiet": (21, 7), "active": False}
    assert _scenario(engine, scenario_id) == expected
    page = client.get(f"/scenarios/{scenario_id}").text
    assert _text(page, "scenario-trigger") == "Starts when: The customer enters the segment VIP"
    assert [row[1] for row in _rows(page, "step-report")] == [
        "E-mail “Oi” (template Boas-vindas: 1. boas-vindas, coupon BEMVINDO5)",
        "If the customer matches the rule, go on; else go to step 4",
        "Add the tag vip-welcomed",
        "Wait until the customer's best hour (else the shop's), within 24 hours",
        "E-mail “Mais” (template Boas-vindas: 2. mais vendidos)"]

    # A template that does not exist: refused, the field named, the edits kept, nothing saved.
    edited = [*steps[:2], {"type": "email", "template_id": 7777, "subject": "Nope"}]
    refused = client.post(f"/scenarios/{scenario_id}", data=_form(
        name="Renamed", trigger_type="first_order", quiet_start="", quiet_end="",
        steps=edited))
    assert refused.status_code == 400
    assert _text(refused.text, "scenario-error") == (
        "steps.2.template_id: there is no template 7777")
    assert _steps_field(refused.text) == edited
    assert 'id="scenario-name" value="Renamed"' in refused.text
    assert 'value="first_order" selected' in refused.text
    assert _scenario(engine, scenario_id) == expected

    for fields, message in [
        ({"trigger_type": "event", "trigger_event": " "}, "trigger.event: is required"),
        ({"trigger_type": "segment_left"}, "trigger.segment_id: choose a segment"),
        ({"trigger_type": "days_since_last_order", "trigger_days": "0"},
         "trigger.days_since_last_order.days: Input should be greater than or equal to 1"),
        ({"trigger_type": "event_not_followed", "trigger_event": "Checkout Started",
          "trigger_followed_by": "Order Completed", "trigger_within_hours": "uma"},
         "trigger.within_hours: must be a number of hours"),
        ({"trigger_type": "event_not_followed", "trigger_event": "Checkout Started",
          "trigger_followed_by": "", "trigger_within_hours": "1"},
         "trigger.followed_by: is required"),
        ({"quiet_start": "22", "quiet_end": ""},
         "quiet_hours: give both hours (0 to 23), or neither"),
        ({"quiet_start": "24", "quiet_end": "8"}, "quiet_hours: hours from 0 to 23"),
        ({"steps": "[{"}, "steps: not JSON"),
        ({"steps": []}, "steps: from 1 to 50 steps"),
        ({"steps": [{"type": "branch", "rule": {"tag": "vip"}, "else_step": 0}]},
         "steps.0.else_step: must jump forward (past 0)"),
        ({"steps": [{"type": "tag", "add": "a", "remove": "b"}]},
         "steps.0.tag: give exactly one of add or remove"),
        ({"steps": [{"type": "wait", "hours": 1, "best_hour": True}]},
         "steps.0.wait: give exactly one of hours, days, until_hour or best_hour"),
        ({"steps": [{"type": "email", "template_id": first, "subject": "x",
                     "coupon": "DEZ OFF"}]},
         "steps.0.email.coupon: String should match pattern '^\\S+$'"),
        ({"name": " ", "steps": steps}, "name: is required"),
        ({"reentry": "sometimes", "steps": steps},
         "reentry: must be one of never, after_exit, always"),
    ]:
        answer = client.post(f"/scenarios/{scenario_id}", data=_form(**fields))
        assert answer.status_code == 400, (fields, answer.text)
        assert _text(answer.text, "scenario-error") == message, fields
    assert _scenario(engine, scenario_id) == expected
    assert client.post("/scenarios/999", data=_form(steps=steps)).status_code == 404


def test_a_blank_scenario_is_written_in_the_editor(client: TestClient, engine: Engine) -> None:
    sign_in(client, engine)
    blank = client.get("/scenarios/new").text
    assert _steps_field(blank) == [] and 'action="/scenarios"' in blank
    assert 'value="subscribed" selected' in blank and 'id="trigger-exit" checked' in blank
    steps = [{"type": "wait", "until_hour": 9},
             {"type": "trait", "key": "lembrete", "value": 2},
             {"type": "webhook", "url": "https://hooks.loja.example/lembrete"}]
    refused = client.post("/scenarios", data=_form(name="Lembrete", steps=[]))
    assert refused.status_code == 400
    assert _text(refused.text, "scenario-error") == "steps: from 1 to 50 steps"
    with session_scope(engine, writes=False) as session:
        assert service.list_scenarios(session=session) == []
    created = client.post("/scenarios", follow_redirects=False, data=_form(
        name="Lembrete", trigger_type="days_since_last_order", trigger_days="30",
        quiet_start="", quiet_end="", reentry="always", steps=steps))
    assert created.status_code == 303, created.text
    scenario_id = int(created.headers["location"].rsplit("/", 1)[1])
    assert _scenario(engine, scenario_id) == {
        "name": "Lembrete", "trigger": {"type": "days_since_last_order", "days": 30},
        "steps": steps, "goal_event": None, "reentry": "always", "quiet": (None, None),
        "active": False}
    again = client.post("/scenarios", data=_form(name="Lembrete", steps=steps))
    assert again.status_code == 409
    assert _text(again.text, "scenario-error") == "name: a scenario named 'Lembrete' exists"
    page = client.get(f"/scenarios/{scenario_id}").text
    assert _text(page, "scenario-trigger") == "Starts when: 30 days since the last order"
    checkout = client.post("/scenarios", follow_redirects=False, data=_form(
        name="Checkout", trigger_type="event_not_followed", trigger_event="Checkout Started",
        trigger_followed_by="Order Completed", trigger_within_hours="1,5", steps=steps))
    assert checkout.status_code == 303, checkout.text
    checkout_id = int(checkout.headers["location"].rsplit("/", 1)[1])
    assert _scenario(engine, checkout_id)["trigger"] == {
        "type": "event_not_followed", "event": "Checkout Started",
        "followed_by": "Order Completed", "within_hours": 1.5}
    shown = client.get(f"/scenarios/{checkout_id}").text
    assert _text(shown, "scenario-trigger") == (
        "Starts when: “Checkout Started” not followed by “Order Completed” within 1.5 hours")
    assert 'id="trigger-within-hours" min="0.25" max="720" step="0.25" value="1.5"' in shown
    assert [row[1] for row in _rows(page, "step-report")] == [
        "Wait until 09:00 UTC", "Set the trait lembrete to 2",
        "Call https://hooks.loja.example/lembrete"]


def _signed_up(client: TestClient, write_key: str, user: str, at: datetime) -> None:
    answer = client.post("/v1/batch", headers=basic(write_key), json={"batch": [
        {"type": "track", "userId": user, "event": "Signed Up", "timestamp": at.isoformat(),
         "messageId": f"{user}-signed-up"}]})
    assert answer.status_code == 200 and answer.json()["rejected"] == [], answer.text


def test_the_report_counts_customers_waiting_at_each_step(
        client: TestClient, engine: Engine, settings: Settings, write_key: str) -> None:
    sign_in(client, engine)
    steps = [{"type": "wait", "hours": 1}, {"type": "tag", "add": "welcomed"},
             {"type": "wait", "days": 2}, {"type": "email", "template_id": 0, "subject": "Oi"}]
    with session_scope(engine) as session:
        template = messaging.create_template(session=session, name="Oi", subject="Oi",
                                             html="<p>Oi</p>", text=None, now=T0)
        steps[3]["template_id"] = template.id
        scenario = service.create_scenario(
            session=session, name="Cadastro", trigger={"type": "event", "event": "Signed Up"},
            steps=steps, goal_event=None, reentry="never", quiet_hours=None, now=T0)
        service.switch(session=session, scenario_id=scenario.id, active=True, now=T0)
        scenario_id = scenario.id
    # Ana goes past her first wait and the tag, to wait two days; Bruno waits his first hour.
    _signed_up(client, write_key, "ana", T0 + timedelta(minutes=1))
    assert tasks.run_scenarios(engine=engine, settings=settings,
                               clock=lambda: T0 + timedelta(minutes=5))[:2] == (1, 1)
    _signed_up(client, write_key, "bruno", T0 + timedelta(minutes=30))
    assert tasks.run_scenarios(engine=engine, settings=settings,
                               clock=lambda: T0 + timedelta(minutes=66))[:2] == (1, 2)
    page = client.get(f"/scenarios/{scenario_id}").text
    assert _rows(page, "step-report") == [
        ["1", "Wait 1 hour", "0"], ["2", "Add the tag welcomed", "1"],
        ["3", "Wait 2 days", "0"], ["4", "E-mail “Oi” (template Oi)", "1"]]
    report = dict(zip(re.findall(r"<dt>([^<]+)</dt>", page),
                      re.findall(r"<dd>([^<]+)</dd>", page), strict=True))
    assert report == {"Entered": "2", "In progress": "2", "Completed": "0", "Converted": "0",
                      "Exited": "0", "Messages": "0", "Orders": "0", "Revenue": "BRL 0.00"}
    with session_scope(engine) as session:  # a second one: each row counts its own
        service.create_scenario(session=session, name="Depois", trigger={"type": "first_order"},
                                steps=steps[:1], goal_event=None, reentry="never",
                                quiet_hours=None, now=T0)
    assert _rows(client.get("/scenarios").text, "scenario-list") == [
        ["Cadastro", "Each time the customer does “Signed Up”", "On",
         "2", "2", "0", "0", "0", "0", "BRL 0.00"],
        ["Depois", "The customer's first order", "Off", "0", "0", "0", "0", "0", "0",
         "BRL 0.00"]]

    # Switched on, its steps cut to two: enrolments keep their step index, so Ana (at step
    # index 3) is past the new last step, and finishes at her next run.
    saved = client.post(f"/scenarios/{scenario_id}", follow_redirects=False, data=_form(
        name="Cadastro", trigger_type="event", trigger_event="Signed Up", quiet_start="",
        quiet_end="", steps=steps[:2]))
    assert saved.status_code == 303, saved.text
    assert _scenario(engine, scenario_id)["active"] is True
    page = client.get(f"/scenarios/{scenario_id}").text
    assert _rows(page, "step-report") == [
        ["1", "Wait 1 hour", "0"], ["2", "Add the tag welcomed", "1"],
        ["", "Past the last step (finish at their next run)", "1"]]
    tasks.run_scenarios(engine=engine, settings=settings,
                        clock=lambda: T0 + timedelta(days=3))
    with session_scope(engine, writes=False) as session:
        assert service.counts(session=session, scenario_id=scenario_id) == {"completed": 2}


@pytest.mark.browser
def test_a_ready_made_scenario_edited_in_the_browser(live_server: LiveServer, engine: Engine,
                                                     page: Page) -> None:
    with session_scope(engine) as session:
        team.create_user(session=session, email=OWNER, password=PASSWORD, role="owner")
    page.goto(f"{live_server.base_url}/login")
    page.get_by_label("E-mail").fill(OWNER)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    expect(page).to_have_url(f"{live_server.base_url}/overview")

    page.get_by_role("link", name="Scenarios", exact=True).click()
    page.get_by_role("button", name="Create “Boas-vindas”").click()
    expect(page).to_have_url(re.compile(r"/scenarios/\d+$"))
    scenario_id = int(page.url.rsplit("/", 1)[1])
    expect(page.locator("#steps > li")).to_have_count(3)
    page.get_by_label("Step 1: coupon ({{ coupon }} in the template)").fill(" BEMVINDO5 ")
    page.get_by_label("Step 2: wait for").select_option("best_hour")
    page.locator("#step-kind").select_option("tag")
    page.get_by_role("button", name="Add step").click()
    page.get_by_label("Step 4: tag name").fill("boas-vindas")
    page.get_by_role("button", name="Move step 4 up").click()
    expect(page.get_by_label("Step 3: tag name")).to_have_value("boas-vindas")
    expect(page.locator("#steps > li .kind-label")).to_have_text(
        ["E-mail", "Wait", "Tag", "E-mail"])
    page.get_by_role("button", name="Save scenario").click()
    expect(page.locator("#step-report tbody tr")).to_have_count(4)
    expect(page.locator("#step-report tbody tr:nth-child(3) td:nth-child(2)")).to_have_text(
        "Add the tag boas-vindas")

    page.get_by_role("link", name="Scenarios", exact=True).click()
    switch = page.get_by_role("switch", name="Boas-vindas")
    expect(switch).to_have_attribute("aria-checked", "false")
    switch.click()
    expect(page.get_by_role("switch", name="Boas-vindas")).to_have_attribute(
        "aria-checked", "true")
    expect(page.get_by_role("switch", name="Boas-vindas")).to_have_text("On")

    answer = httpx.get(f"{live_server.base_url}/api/v1/scenarios/{scenario_id}",
                       headers={"Authorization": f"Bearer {_secret_key(engine)}"}, timeout=10)
    with session_scope(engine, writes=False) as session:
        t = dict(session.execute(select(Template.name, Template.id)).tuples().all())
        active_since = session.scalar(select(Scenario.active_since).where(
            Scenario.id == scenario_id))
    assert answer.status_code == 200, answer.text
    scenario = answer.json()
    assert (scenario["name"], scenario["active"], scenario["steps"]) == ("Boas-vindas", True, [
        {"type": "email", "template_id": t["Boas-vindas: 1. boas-vindas"],
         "subject": "Bem-vindo(a), {{ customer.first_name }}!", "coupon": "BEMVINDO5"},
        {"type": "wait", "best_hour": True},
        {"type": "tag", "add": "boas-vindas"},
        {"type": "email", "template_id": t["Boas-vindas: 2. mais vendidos"],
         "subject": "Os mais vendidos da semana"}])
    assert active_since is not None
    assert "Traceback" not in live_server.output(), live_server.output()


def _secret_key(engine: Engine) -> str:
    with session_scope(engine) as session:
        return team.create_key(session=session, kind="secret", name="browser test").key
