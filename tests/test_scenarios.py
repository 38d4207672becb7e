"""Scenarios end to end with a controllable clock: events in, messages out through a real
SMTP server, the goal reached, the scenario left."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import select

from clientela.automation import engine as scenario_engine
from clientela.automation import service, tasks
from clientela.automation.models import Enrolment
from clientela.commerce.carts import abandon_carts
from clientela.customers import service as customers
from clientela.db import session_scope
from clientela.messaging.best_hour import best_hour_of
from clientela.messaging.models import Delivery
from tests.helpers import basic
from tests.mail import body, subscribers

T0 = datetime(2026, 11, 20, 14, 0, tzinfo=UTC)  # 11h in Brasília: outside quiet hours


def _track(client: Any, write_key: str, user: str, event: str, at: datetime,
           number: int, **properties: Any) -> None:
    answer = client.post("/v1/batch", headers=basic(write_key), json={"batch": [
        {"type": "track", "userId": user, "event": event, "timestamp": at.isoformat(),
         "messageId": f"{user}-{event}-{number}", "properties": properties}]})
    assert answer.status_code == 200 and answer.json()["rejected"] == [], answer.text


def _run(engine: Any, settings: Any, at: datetime) -> tuple[int, int, Any]:
    return tasks.run_scenarios(engine=engine, settings=settings, clock=lambda: at)


def test_abandoned_cart_sends_at_1_24_72_hours_and_stops_at_the_order(
        mail_api, client, write_key, engine, mail_settings, smtp):
    _, received = smtp
    subscribers(client, write_key, engine, ["ana", "bruno"])
    created = mail_api.post("/api/v1/scenarios", json={"ready_made": "abandoned_cart"})
    assert created.status_code == 201, created.text
    scenario = created.json()
    assert (scenario["active"], scenario["trigger"]) == (False, {"type": "cart_abandoned"})
    on = mail_api.patch(f"/api/v1/scenarios/{scenario['id']}", json={"active": True})
    assert on.json()["active"] is True
    with session_scope(engine) as session:  # switched on at T0
        service.switch(session=session, scenario_id=scenario["id"], active=False, now=T0)
        service.switch(session=session, scenario_id=scenario["id"], active=True, now=T0)

    tenis = {"cart_id": "c-ana", "product_id": "P1", "name": "Tênis Corrida", "price": 199.9,
             "quantity": 1, "url": "https://loja.example/p/p1"}
    _track(client, write_key, "ana", "Product Added", T0, 1, **tenis)
    _track(client, write_key, "bruno", "Product Added", T0, 1,
           **{**tenis, "cart_id": "c-bruno"})
    with session_scope(engine) as session:
        assert abandon_carts(session=session, now=T0 + timedelta(minutes=61),
                             after_minutes=60) == 2

    hour = T0 + timedelta(minutes=61)
    enrolled, moved, tally = _run(engine, mail_settings, hour)
    assert (enrolled, moved, tally.sent) == (2, 2, 2)
    [first] = received.to("ana@example.com")
    assert first["Subject"] == "Seus itens estão esperando por você"
    html = body(first, "html")
    assert "Ana, você esqueceu algo no carrinho" in html and "Tênis Corrida" in html
    assert "R$ 199,90" in html
    # Running again in the same minute does nothing more.
    assert _run(engine, mail_settings, hour)[:2] == (0, 0)

    day = T0 + timedelta(hours=24, minutes=2)
    assert _run(engine, mail_settings, day)[2].sent == 2
    assert received.to("ana@example.com")[1]["Subject"] == (
        "Ainda pensando? Seu carrinho continua aqui")
    # Ana orders on the second day; Bruno does not.
    _track(client, write_key, "ana", "Order Completed", T0 + timedelta(hours=30), 1,
           order_id="A-1", total=199.9, products=[tenis])
    _run(engine, mail_settings, T0 + timedelta(hours=72, minutes=3))
    assert len(received.to("ana@example.com")) == 2
    assert [m["Subject"] for m in received.to("bruno@example.com")][-1] == (
        "Última chance: seu carrinho vai expirar")
    with session_scope(engine, writes=False) as session:
        states = {row.reason or row.status: row.status for row in session.scalars(
            select(Enrolment).order_by(Enrolment.id))}
    assert states == {"goal": "converted", "completed": "completed"}
    report = mail_api.get(f"/api/v1/scenarios/{scenario['id']}/report").json()
    assert report == {"scenario_id": scenario["id"], "entered": 2, "active": 0,
                      "completed": 1, "converted": 1, "exited": 0, "messages": 5,
                      "orders": 1, "revenue": "199.90", "currency": "BRL"}


def test_steps_branch_tag_set_traits_call_webhooks_and_respect_quiet_hours(
        mail_api, client, write_key, engine, mail_settings, smtp):
    ids = subscribers(client, write_key, engine, ["ana", "bruno"])
    with session_scope(engine) as session:
        customers.add_tags(session=session, customer_id=ids["ana"], tags=["vip"])
    template = mail_api.post("/api/v1/templates", json={
        "name": "Oi", "subject": "oi", "html": "<p>Oi {{ customer.first_name }}</p>"}).json()
    posted: list[tuple[str, bytes, dict[str, str]]] = []

    def post(url: str, body: bytes, headers: dict[str, str]) -> int:
        posted.append((url, body, headers))
        return 200

    steps = [{"type": "branch", "rule": {"tag": "vip"}, "else_step": 3},
             {"type": "tag", "add": "vip-welcomed"},
             {"type": "email", "template_id": template["id"], "subject": "Oi VIP"},
             {"type": "trait", "key": "welcomed", "value": True},
             {"type": "webhook", "url": "https://hooks.example/welcome"}]
    with session_scope(engine) as session:
        scenario = service.create_scenario(
            session=session, name="Custom", trigger={"type": "event", "event": "Signed Up"},
            steps=steps, goal_event=None, reentry="never", quiet_hours=(22, 8), now=T0)
        service.switch(session=session, scenario_id=scenario.id, active=True, now=T0)
        scenario_id = scenario.id
    night = T0.replace(hour=23)
    for name in ("ana", "bruno"):
        _track(client, write_key, name, "Signed Up", night - timedelta(minutes=5), 1)
    assert tasks.run_scenarios(engine=engine, settings=mail_settings, clock=lambda: night,
                               post=post)[:2] == (2, 2)
    with session_scope(engine, writes=False) as session:
        assert customers.tags_of(session=session, customer_id=ids["ana"]) == [
            "vip", "vip-welcomed"]
        assert customers.tags_of(session=session, customer_id=ids["bruno"]) == []
        [delivery] = session.scalars(select(Delivery)).all()
        # Quiet hours (22h to 8h): the e-mail waits for 8h.
        assert (delivery.customer_id, delivery.due_at, delivery.subject) == (
            ids["ana"], T0.replace(day=21, hour=8), "Oi VIP")
        welcomed = {c: customers.get_customer(session=session, customer_id=c).traits.get(
            "welcomed") for c in ids.values()}
        assert welcomed == {ids["ana"]: True, ids["bruno"]: True}
        statuses = sorted(session.scalars(select(Enrolment.status)))
    assert statuses == ["completed", "completed"]
    assert [url for url, _, _ in posted] == ["https://hooks.example/welcome"] * 2
    _, payload, headers = posted[0]
    assert headers["X-Clientela-Signature"] == scenario_engine.webhook_signature(
        mail_settings.secret_key, payload)
    assert headers["Idempotency-Key"].startswith("enrolment-")
    # "never": signing up again does not enrol again.
    _track(client, write_key, "ana", "Signed Up", night + timedelta(minutes=5), 2)
    later = night + timedelta(minutes=10)
    assert tasks.run_scenarios(engine=engine, settings=mail_settings, clock=lambda: later,
                               post=post)[:2] == (0, 0)
    assert scenario_id


@pytest.mark.parametrize(("definition", "message"), [
    ({"ready_made": "nope"}, "ready_made: must be one of abandoned_cart, birthday, "
                             "post_purchase, welcome, win_back"),
    ({"name": "x", "trigger": {"type": "soon"}, "steps": [{"type": "wait", "hours": 1}]},
     "trigger: Input tag 'soon' found using 'type' does not match any of the expected tags"),
    ({"name": "x", "trigger": {"type": "inactive"},
      "steps": [{"type": "wait", "hours": 1, "days": 1}]},
     "steps.0.wait: give exactly one of hours, days, until_hour or best_hour"),
    ({"name": "x", "trigger": {"type": "inactive"},
      "steps": [{"type": "wait", "best_hour": False}]},
     "steps.0.wait.best_hour: Input should be True"),
    ({"name": "x", "trigger": {"type": "inactive"},
      "steps": [{"type": "email", "template_id": 1, "subject": "x", "coupon": "VOLTA 10"}]},
     "steps.0.email.coupon: String should match pattern"),
    ({"name": "x", "trigger": {"type": "inactive"},
      "steps": [{"type": "email", "template_id": 999, "subject": "x"}]},
     "steps.0.template_id: there is no template 999"),
    ({"name": "x", "trigger": {"type": "inactive"},
      "steps": [{"type": "branch", "rule": {"field": "nope", "op": "eq", "value": 1},
                 "else_step": 1}]},
     "steps.0.rule.field: "),
    ({"name": "x", "trigger": {"type": "inactive"},
      "steps": [{"type": "branch", "rule": {"tag": "vip"}, "else_step": 0}]},
     "steps.0.else_step: must jump forward (past 0)"),
])
def test_bad_scenarios_are_refused_naming_the_field(mail_api, definition, message):
    answer = mail_api.post("/api/v1/scenarios", json=definition)
    assert answer.status_code == 400, answer.text
    assert answer.json()["message"].startswith(message)


def test_a_scenario_is_replaced_with_put_and_switched_with_patch(mail_api, engine):
    template = mail_api.post("/api/v1/templates", json={
        "name": "Oi", "subject": "oi", "html": "<p>Oi</p>"}).json()
    created = mail_api.post("/api/v1/scenarios", json={"ready_made": "birthday"}).json()
    url = f"/api/v1/scenarios/{created['id']}"
    assert mail_api.patch(url, json={"active": True}).json()["active"] is True
    definition = {"name": "Aniversário VIP", "trigger": {"type": "birthday"},
                  "steps": [{"type": "wait", "until_hour": 10},
                            {"type": "branch", "rule": {"tag": "vip"}, "else_step": 3},
                            {"type": "email", "template_id": template["id"], "subject": "Oi"}],
                  "goal_event": "Order Completed", "reentry": "never", "quiet_hours": [21, 7]}
    replaced = mail_api.put(url, json=definition)
    assert replaced.status_code == 200, replaced.text
    expected = {**created, "name": "Aniversário VIP", "steps": definition["steps"],
                "goal_event": "Order Completed", "reentry": "never", "quiet_start": 21,
                "quiet_end": 7, "active": True, "active_since": replaced.json()["active_since"]}
    assert replaced.json() == expected  # still switched on
    assert mail_api.get(url).json() == expected

    bad = mail_api.put(url, json={**definition, "name": "Outro", "steps": [
        {"type": "email", "template_id": 7777, "subject": "x"}]})
    assert (bad.status_code, bad.json()["message"]) == (
        400, "steps.0.template_id: there is no template 7777")
    taken = mail_api.post("/api/v1/scenarios", json={"ready_made": "welcome"}).json()
    clash = mail_api.put(url, json={**definition, "name": taken["name"]})
    assert (clash.status_code, clash.json()["message"]) == (
        409, "name: a scenario named 'Boas-vindas' exists")
    assert mail_api.get(url).json() == expected  # nothing half-saved
    assert mail_api.put("/api/v1/scenarios/999", json=definition).status_code == 404
    missing = mail_api.put(url, json={"name": "x", "trigger": {"type": "birthday"}})
    assert missing.status_code == 422
    assert mail_api.patch(url, json={"active": False}).json()["active"] is False


def test_email_steps_carry_their_coupon_and_waits_end_at_each_customers_best_hour(
        mail_api, client, write_key, engine, mail_settings, smtp):
    _, received = smtp
    ids = subscribers(client, write_key, engine, ["ana", "bruno"])
    with session_scope(engine, writes=False) as session:
        assert best_hour_of(session=session, customer_id=None, now=T0) is None
    # Ana opens her e-mails around 9h; Carla, the shop's most active reader, around 17h;
    # Bruno never did either, so he gets the shop's best hour.
    day = timedelta(days=1)
    for number, at in enumerate((T0 - day, T0 - 2 * day), 1):
        _track(client, write_key, "ana", "Email Opened", at.replace(hour=9, minute=10), number)
    for number, at in enumerate((T0 - day, T0 - 2 * day, T0 - 3 * day), 1):
        _track(client, write_key, "carla", "Email Link Clicked",
               at.replace(hour=17, minute=5), number)
    template = mail_api.post("/api/v1/templates", json={
        "name": "Cupom", "subject": "cupom",
        "html": "<p>Seu cupom: {{ coupon | default('nenhum') }}</p>"}).json()
    created = mail_api.post("/api/v1/scenarios", json={
        "name": "Cupom na melhor hora", "trigger": {"type": "event", "event": "Signed Up"},
        "steps": [{"type": "wait", "best_hour": True},
                  {"type": "email", "template_id": template["id"], "subject": "Para você",
                   "coupon": "VOLTA15"}]})
    assert created.status_code == 201, created.text
    with session_scope(engine) as session:
        service.switch(session=session, scenario_id=created.json()["id"], active=True, now=T0)
    for name in ("ana", "bruno"):
        _track(client, write_key, name, "Signed Up", T0 + timedelta(seconds=30), 1)

    assert _run(engine, mail_settings, T0 + timedelta(minutes=1))[:2] == (2, 2)
    with session_scope(engine, writes=False) as session:
        assert best_hour_of(session=session, customer_id=ids["ana"], now=T0) == 9
        assert best_hour_of(session=session, customer_id=None, now=T0) == 17
        waiting = dict(session.execute(select(Enrolment.customer_id, Enrolment.next_run_at)
                                       ).tuples().all())
    assert waiting == {ids["ana"]: T0.replace(day=21, hour=9),
                       ids["bruno"]: T0.replace(hour=17)}
    assert _run(engine, mail_settings, T0.replace(hour=17))[2].sent == 1
    [to_bruno] = received.to("bruno@example.com")
    assert "Seu cupom: VOLTA15" in body(to_bruno, "html")
    assert received.to("ana@example.com") == []
    assert _run(engine, mail_settings, T0.replace(day=21, hour=9))[2].sent == 1
    assert "Seu cupom: VOLTA15" in body(received.to("ana@example.com")[0], "html")


def test_the_ready_made_win_back_offers_its_coupon(mail_api):
    created = mail_api.post("/api/v1/scenarios", json={"ready_made": "win_back"}).json()
    emails = [step for step in created["steps"] if step["type"] == "email"]
    assert [step["coupon"] for step in emails] == ["VOLTA10", "VOLTA10"]
    template = mail_api.get(f"/api/v1/templates/{emails[0]['template_id']}").json()
    assert "<b>{{ coupon }}</b>" in template["html"]


def test_a_failing_webhook_is_retried_with_back_off_then_skipped(
        client, write_key, engine, mail_settings):
    ids = subscribers(client, write_key, engine, ["ana"])
    posted: list[datetime] = []
    with session_scope(engine) as session:
        scenario = service.create_scenario(
            session=session, name="Hook", trigger={"type": "event", "event": "Signed Up"},
            steps=[{"type": "webhook", "url": "https://hooks.example/down"},
                   {"type": "tag", "add": "hooked"}],
            goal_event=None, reentry="never", quiet_hours=None, now=T0)
        service.switch(session=session, scenario_id=scenario.id, active=True, now=T0)
    _track(client, write_key, "ana", "Signed Up", T0 + timedelta(seconds=30), 1)

    def run(at: datetime) -> tuple[int, int | None, datetime]:
        def down(url: str, body: bytes, headers: dict[str, str]) -> int:
            posted.append(at)
            return 503

        tasks.run_scenarios(engine=engine, settings=mail_settings, clock=lambda: at, post=down)
        with session_scope(engine, writes=False) as session:
            enrolment = session.scalars(select(Enrolment)).one()
            return enrolment.step, enrolment.attempts, enrolment.next_run_at

    at = T0 + timedelta(minutes=1)
    for attempt, wait in enumerate((5, 10, 20, 40, 80), 1):
        assert run(at) == (0, attempt, at + timedelta(minutes=wait))
        at += timedelta(minutes=wait)
    # The sixth failure gives up on the webhook and goes on with the scenario.
    assert run(at)[:2] == (2, 0)
    assert len(posted) == 6
    with session_scope(engine, writes=False) as session:
        assert customers.tags_of(session=session, customer_id=ids["ana"]) == ["hooked"]
        assert session.scalars(select(Enrolment.status)).one() == "completed"


def test_one_run_moves_every_due_enrolment_a_batch_at_a_time(
        client, write_key, engine, mail_settings):
    names = ["ana", "bruno", "carla", "dora", "edu"]
    ids = subscribers(client, write_key, engine, names)
    with session_scope(engine) as session:
        scenario = service.create_scenario(
            session=session, name="Tag all", trigger={"type": "event", "event": "Signed Up"},
            steps=[{"type": "tag", "add": "signed-up"}], goal_event=None, reentry="never",
            quiet_hours=None, now=T0)
        service.switch(session=session, scenario_id=scenario.id, active=True, now=T0)
    for name in names:
        _track(client, write_key, name, "Signed Up", T0 + timedelta(seconds=30), 1)
    enrolled, moved, _ = tasks.run_scenarios(engine=engine, settings=mail_settings,
                                             clock=lambda: T0 + timedelta(minutes=1), batch=2)
    assert (enrolled, moved) == (5, 5)  # batches of 2, 2 and 1 in one run
    with session_scope(engine, writes=False) as session:
        assert {name: customers.tags_of(session=session, customer_id=ids[name])
                for name in names} == {name: ["signed-up"] for name in names}


def test_an_event_not_followed_by_another_within_the_window(
        client, write_key, engine, mail_settings):
    ids = subscribers(client, write_key, engine, ["ana", "bruno", "carla", "dora"])
    with session_scope(engine) as session:
        scenario = service.create_scenario(
            session=session, name="Checkout abandoned",
            trigger={"type": "event_not_followed", "event": "Checkout Started",
                     "followed_by": "Order Completed", "within_hours": 1},
            steps=[{"type": "tag", "add": "left-checkout"}], goal_event=None,
            reentry="always", quiet_hours=None, now=T0)
        service.switch(session=session, scenario_id=scenario.id, active=True, now=T0)
    minutes = [("dora", "Checkout Started", -120),  # its window closed before switching on
               ("ana", "Checkout Started", 5), ("ana", "Checkout Started", 20),  # one burst
               ("bruno", "Checkout Started", 5), ("bruno", "Order Completed", 30),
               ("carla", "Checkout Started", 10)]
    for number, (name, event, minute) in enumerate(minutes):
        _track(client, write_key, name, event, T0 + timedelta(minutes=minute), number)

    def left_checkout() -> dict[str, list[str]]:
        with session_scope(engine, writes=False) as session:
            return {name: customers.tags_of(session=session, customer_id=ids[name])
                    for name in ids}

    assert _run(engine, mail_settings, T0 + timedelta(minutes=72))[:2] == (1, 1)
    assert left_checkout() == {"ana": [], "bruno": [], "carla": ["left-checkout"], "dora": []}
    assert _run(engine, mail_settings, T0 + timedelta(minutes=85))[:2] == (1, 1)
    assert left_checkout() == {"ana": ["left-checkout"], "bruno": [], "carla": ["left-checkout"],
                               "dora": []}
    assert _run(engine, mail_settings, T0 + timedelta(minutes=90))[:2] == (0, 0)
