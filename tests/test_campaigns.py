"""Campaigns end to end: audience, consent, suppression, exactly-once delivery to a real SMTP
server, RFC 8058 headers, one-click unsubscribe as a mail client does it."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from urllib.parse import urlsplit

from fastapi.testclient import TestClient
from sqlalchemy import select, update

from clientela.api.app import create_app
from clientela.customers import service as customers
from clientela.customers.models import Customer
from clientela.db import session_scope
from clientela.messaging import queries, tasks
from clientela.messaging.delivery import Sender, deliver_campaign
from clientela.messaging.models import Delivery
from clientela.messaging.transport import Smtp
from tests.helpers import basic
from tests.mail import body, campaign_report, new_campaign, subscribers


def test_a_campaign_reaches_exactly_those_who_may_receive_it_once(
        mail_api, client, write_key, engine, mail_settings, smtp):
    _, received = smtp
    ids = subscribers(client, write_key, engine, ["ana", "bruno", "carla", "dora"])
    with session_scope(engine) as session:
        customers.suppress(session=session, email="BRUNO@example.com", reason="hard_bounce")
        customers.set_email_consent(session=session, customer_id=ids["carla"],
                                    state="unsubscribed", source="test")
        customers.add_tags(session=session, customer_id=ids["dora"], tags=["staff"])
    staff = mail_api.post("/api/v1/segments", json={"name": "Staff", "rule": {"tag": "staff"}})
    campaign = new_campaign(mail_api, "Semana", exclude=[staff.json()["id"]])
    started = mail_api.post(f"/api/v1/campaigns/{campaign['id']}/send", json={"mode": "now"})
    assert started.status_code == 200, started.text
    assert (started.json()["status"], started.json()["audience_size"]) == ("sending", 1)

    done = tasks.send_campaigns(engine=engine, settings=mail_settings)
    assert done[campaign["id"]].sent == 1
    assert received.recipients() == ["ana@example.com"]
    [message] = received.to("ana@example.com")
    assert message["Subject"] == "Ana, ofertas da semana"
    assert message["From"] == "Loja Teste <news@loja.example>"
    assert message["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    unsubscribe_url = message["List-Unsubscribe"].strip("<>")
    assert unsubscribe_url.startswith("https://crm.loja.example/u/")
    with session_scope(engine, writes=False) as session:
        delivery = session.scalar(select(Delivery).where(Delivery.status == "sent"))
        assert (delivery.message_id, delivery.email) == (message["Message-ID"],
                                                         "ana@example.com")
    assert message["Message-ID"].startswith(f"<d{delivery.id}.")
    html, text = body(message, "html"), body(message, "plain")
    assert "Olá Ana!" in html and unsubscribe_url in html
    # The campaign tracks clicks: the text part's link is a redirect too (test_mail_tracking).
    assert text.startswith("Olá Ana! Ofertas: https://crm.loja.example/t/c/")
    assert campaign_report(mail_api, campaign["id"]) == {
        "campaign_id": campaign["id"], "status": "sent", "audience": 1, "pending": 0,
        "sent": 1, "delivered": 1, "bounced": 0, "hard_bounced": 0, "complaints": 0,
        "failed": 0, "skipped": 0, "unconfirmed": 0, "opened": 0, "machine_opened": 0,
        "clicked": 0, "unsubscribed": 0, "attribution_days": 5, "orders": 0,
        "revenue": "0.00", "currency": "BRL"}

    # Nothing is sent twice, however often the job runs.
    assert tasks.send_campaigns(engine=engine, settings=mail_settings) == {}
    assert received.recipients() == ["ana@example.com"]

    # One-click unsubscribe exactly as a mail client does it (RFC 8058): a POST, no sign-in.
    path = urlsplit(unsubscribe_url).path
    page = client.get(path)
    assert page.status_code == 200 and "Unsubscribe a***@example.com?" in page.text
    done_page = client.post(path, content=b"List-Unsubscribe=One-Click", headers={
        "Content-Type": "application/x-www-form-urlencoded"}, follow_redirects=False)
    assert done_page.status_code == 200 and "You are unsubscribed" in done_page.text
    with session_scope(engine, writes=False) as session:
        ana = session.get(Customer, ids["ana"])
        assert (ana.email_marketing, ana.email_marketing_source) == (
            "unsubscribed", "unsubscribe link")
    assert campaign_report(mail_api, campaign["id"])["unsubscribed"] == 1


def test_unsubscribe_links_are_signed_and_need_the_one_click_body(client, mail_api):
    assert client.get("/u/MQ.forged").status_code == 400
    assert "This link does not work" in client.get("/u/MQ.forged").text
    forged = client.post("/u/MQ.forged", data={"List-Unsubscribe": "One-Click"})
    assert forged.status_code == 400


def test_preferences_page_unsubscribes_and_subscribes_again(
        mail_api, client, write_key, engine, mail_settings, smtp):
    ids = subscribers(client, write_key, engine, ["ana"])
    campaign = new_campaign(mail_api, "Prefs")
    mail_api.post(f"/api/v1/campaigns/{campaign['id']}/send", json={"mode": "now"})
    tasks.send_campaigns(engine=engine, settings=mail_settings)
    [message] = smtp[1].to("ana@example.com")
    path = urlsplit(message["List-Unsubscribe"].strip("<>")).path + "/preferences"
    assert "E-mail preferences for a***@example.com" in client.get(path).text
    client.post(path, data={"email_marketing": "unsubscribed"})
    with session_scope(engine, writes=False) as session:
        assert session.get(Customer, ids["ana"]).email_marketing == "unsubscribed"
    saved = client.post(path, data={"email_marketing": "subscribed"})
    assert saved.status_code == 200 and "Saved." in saved.text
    with session_scope(engine, writes=False) as session:
        ana = session.get(Customer, ids["ana"])
        assert (ana.email_marketing, ana.email_marketing_source) == (
            "subscribed", "preference page")
    assert client.post(path, data={"email_marketing": "maybe"}).status_code == 400


def test_a_scheduled_campaign_freezes_its_audience_when_its_time_comes(
        mail_api, client, write_key, engine, mail_settings):
    from clientela.messaging import service

    subscribers(client, write_key, engine, ["ana"])
    campaign = new_campaign(mail_api, "Later")
    past = mail_api.post(f"/api/v1/campaigns/{campaign['id']}/send",
                         json={"mode": "at", "send_at": "2020-01-01T00:00:00Z"})
    assert (past.status_code, past.json()["code"]) == (400, "invalid_schedule")
    at = datetime.now(UTC) + timedelta(hours=2)
    scheduled = mail_api.post(f"/api/v1/campaigns/{campaign['id']}/send",
                              json={"mode": "at", "send_at": at.isoformat()})
    assert scheduled.json()["status"] == "scheduled"
    subscribers(client, write_key, engine, ["bruno"])  # joins before the time: included
    with session_scope(engine) as session:
        assert service.start_due_campaigns(session=session, now=at - timedelta(minutes=1),
                                           currency="BRL") == []
        assert service.start_due_campaigns(session=session, now=at,
                                           currency="BRL") == [campaign["id"]]
    assert campaign_report(mail_api, campaign["id"])["audience"] == 2
    again = mail_api.post(f"/api/v1/campaigns/{campaign['id']}/send", json={"mode": "now"})
    assert (again.status_code, again.json()["code"]) == (409, "campaign_started")


def _two_campaigns_to_ana(mail_api, client, write_key, engine, mail_settings):
    """Settings with a weekly cap of 1, and two campaigns started for Ana alone."""
    settings = mail_settings.model_copy(update={"marketing_cap_per_week": 1})
    subscribers(client, write_key, engine, ["ana"])
    first, second = new_campaign(mail_api, "First"), new_campaign(mail_api, "Second")
    for campaign in (first, second):
        mail_api.post(f"/api/v1/campaigns/{campaign['id']}/send", json={"mode": "now"})
    return settings, first, second


def test_the_weekly_cap_skips_customers_who_had_enough(
        mail_api, client, write_key, engine, mail_settings, smtp):
    settings, first, second = _two_campaigns_to_ana(mail_api, client, write_key, engine,
                                                    mail_settings)
    tasks.send_campaigns(engine=engine, settings=settings)
    assert len(smtp[1].to("ana@example.com")) == 1
    reports = [campaign_report(mail_api, c["id"]) for c in (first, second)]
    assert sorted((r["sent"], r["skipped"]) for r in reports) == [(0, 1), (1, 0)]
    with session_scope(engine, writes=False) as session:
        # The campaign list's reports, all in one go, say the same of each.
        together = queries.reports(session=session, campaigns=queries.list_campaigns(
            session=session), currency="BRL")
        assert {i: (r.sent, r.skipped, r.audience) for i, r in together.items()} == {
            r["campaign_id"]: (r["sent"], r["skipped"], 1) for r in reports}
        assert session.scalar(select(Delivery.detail).where(
            Delivery.status == "skipped")) == "weekly cap reached"


def test_the_weekly_cap_counts_messages_still_on_the_wire(
        mail_api, client, write_key, engine, mail_settings, smtp):
    settings, first, second = _two_campaigns_to_ana(mail_api, client, write_key, engine,
                                                    mail_settings)
    now = datetime.now(UTC)
    with session_scope(engine) as session:  # another sender is sending the first right now
        session.execute(update(Delivery).where(Delivery.campaign_id == first["id"]).values(
            status="sending", claimed_at=now, claimed_by="another", attempts=1))
    tally = deliver_campaign(Sender(settings=settings, engine=engine,
                                    transport=Smtp(settings), now=lambda: now), second["id"])
    assert (tally.sent, tally.skipped) == (0, 1)
    assert smtp[1].recipients() == []
    with session_scope(engine, writes=False) as session:
        assert session.execute(select(Delivery.campaign_id, Delivery.status, Delivery.detail)
                               .order_by(Delivery.campaign_id)).tuples().all() == [
            (first["id"], "sending", None), (second["id"], "skipped", "weekly cap reached")]


def test_a_refusing_relay_fails_for_good_or_retries_later(
        mail_api, client, write_key, engine, mail_settings, smtp):
    _, received = smtp
    received.refuse = {"ana@example.com": "550 5.1.1 no such user",
                       "bruno@example.com": "451 4.3.0 try again later"}
    subscribers(client, write_key, engine, ["ana", "bruno", "carla"])
    campaign = new_campaign(mail_api, "Refused")
    mail_api.post(f"/api/v1/campaigns/{campaign['id']}/send", json={"mode": "now"})
    now = datetime.now(UTC)
    sender = Sender(settings=mail_settings, engine=engine, transport=Smtp(mail_settings),
                    now=lambda: now)
    tally = deliver_campaign(sender, campaign["id"])
    assert (tally.sent, tally.failed, tally.retrying) == (1, 1, 1)
    assert received.recipients() == ["carla@example.com"]
    report = campaign_report(mail_api, campaign["id"])
    assert (report["status"], report["sent"], report["failed"], report["pending"]) == (
        "sending", 1, 1, 1)
    # Five minutes later the relay takes it.
    received.refuse = {}
    later = now + timedelta(minutes=5)
    tally = deliver_campaign(Sender(settings=mail_settings, engine=engine,
                                    transport=Smtp(mail_settings), now=lambda: later),
                             campaign["id"])
    assert tally.sent == 1 and received.recipients() == ["carla@example.com",
                                                          "bruno@example.com"]
    assert campaign_report(mail_api, campaign["id"])["status"] == "sent"


def test_without_a_relay_messages_land_in_the_outbox(
        client, write_key, engine, settings, secret_key, tmp_path):
    outbox_settings = settings.model_copy(update={"smtp_host": None, "data_dir": tmp_path})
    with TestClient(create_app(outbox_settings, engine)) as api:
        api.headers["Authorization"] = f"Bearer {secret_key}"
        subscribers(client, write_key, engine, ["ana", "bruno"])
        campaign = new_campaign(api, "Outbox")
        api.post(f"/api/v1/campaigns/{campaign['id']}/send", json={"mode": "now"})
    tasks.send_campaigns(engine=engine, settings=outbox_settings)
    files = sorted((tmp_path / "outbox").glob("*.eml"))
    assert len(files) == 2
    texts = sorted(f.read_text() for f in files)
    assert "To: ana@example.com" in texts[0] and "To: bruno@example.com" in texts[1]


_KILLABLE = """
import sys
from datetime import datetime, timedelta, UTC
from clientela.config import Settings
from clientela.db import build_engine
from clientela.messaging.delivery import Sender, deliver_campaign
from clientela.messaging.transport import Smtp
settings = Settings()
sender = Sender(settings=settings, engine=build_engine(settings), transport=Smtp(settings),
                now=lambda: datetime.now(UTC), batch=5)
deliver_campaign(sender, int(sys.argv[1]))
"""


def test_a_sender_killed_mid_send_resumes_without_sending_anyone_twice(
        mail_api, client, write_key, engine, mail_settings, smtp):
    _, received = smtp
    received.delay = 0.05
    names = [f"p{n:02d}" for n in range(30)]
    subscribers(client, write_key, engine, names)
    campaign = new_campaign(mail_api, "Killed")
    mail_api.post(f"/api/v1/campaigns/{campaign['id']}/send", json={"mode": "now"})
    env = {**os.environ, **{f"CLIENTELA_{key.upper()}": str(value) for key, value in {
        "env": "test", "database_url": mail_settings.sqlalchemy_url,
        "data_dir": mail_settings.data_dir, "secret_key": mail_settings.secret_key,
        "smtp_host": "127.0.0.1", "smtp_port": mail_settings.smtp_port, "smtp_tls": "none",
        "public_url": mail_settings.public_url, "mail_from": mail_settings.mail_from}.items()}}
    child = subprocess.Popen([sys.executable, "-c", _KILLABLE, str(campaign["id"])], env=env)
    deadline = time.monotonic() + 60
    while len(received.recipients()) < 8 and time.monotonic() < deadline:
        time.sleep(0.01)
    child.send_signal(signal.SIGKILL)
    child.wait()
    before = received.recipients()
    assert 8 <= len(before) < 30, before

    # Within the lease the claims of the dead sender are left alone...
    now = datetime.now(UTC)
    deliver_campaign(Sender(settings=mail_settings, engine=engine,
                            transport=Smtp(mail_settings), now=lambda: now), campaign["id"])
    # ... after it, they are given up (it may have sent them) and the rest goes out.
    later = now + timedelta(minutes=11)
    tally = deliver_campaign(Sender(settings=mail_settings, engine=engine,
                                    transport=Smtp(mail_settings), now=lambda: later),
                             campaign["id"])
    everyone = received.recipients()
    assert len(everyone) == len(set(everyone)), "someone received the campaign twice"
    with session_scope(engine, writes=False) as session:
        states = dict(session.execute(select(Delivery.email, Delivery.status).where(
            Delivery.campaign_id == campaign["id"])).tuples().all())
    sent = {email for email, status in states.items() if status == "sent"}
    unconfirmed = {email for email, status in states.items() if status == "unconfirmed"}
    assert sent | unconfirmed == {f"{name}@example.com" for name in names}
    # At most two batches of 5 were in flight: one on the wire, the next being rendered.
    assert tally.unconfirmed == len(unconfirmed) and len(unconfirmed) <= 10
    # Everyone marked sent received it; the unconfirmed may or may not have.
    assert sent <= set(everyone) and set(everyone) <= sent | unconfirmed
    assert campaign_report(mail_api, campaign["id"])["status"] == "sent"


def test_best_hour_sends_each_recipient_at_the_hour_they_act_in_within_a_day(
        mail_api, client, write_key, engine):
    from clientela.messaging import service

    now = datetime(2026, 11, 20, 10, 30, tzinfo=UTC)

    def at(days: int, hour: int) -> str:
        return (now - timedelta(days=days)).replace(hour=hour, minute=5).isoformat()

    calls = [
        # Ana orders in the evening (20h UTC), three times.
        *({"type": "track", "userId": "ana", "event": "Order Completed", "timestamp": at(d, 20),
           "messageId": f"ana-{d}", "properties": {"order_id": f"A{d}", "total": 10}}
          for d in (3, 10, 40)),
        # Bruno opened e-mails at 9h lately; his old evening orders weigh less.
        *({"type": "track", "userId": "bruno", "event": "Email Opened", "timestamp": at(d, 9),
           "messageId": f"bruno-{d}"} for d in (1, 2)),
        *({"type": "track", "userId": "bruno", "event": "Order Completed",
           "timestamp": at(d, 20), "messageId": f"bruno-o{d}",
           "properties": {"order_id": f"B{d}", "total": 10}} for d in (150, 160, 170)),
        # Older than 180 days: ignored.
        {"type": "track", "userId": "carla", "event": "Email Opened", "timestamp": at(200, 4),
         "messageId": "carla-old"},
    ]
    assert client.post("/v1/batch", json={"batch": calls},
                       headers=basic(write_key)).json()["rejected"] == []
    ids = subscribers(client, write_key, engine, ["ana", "bruno", "carla"])
    campaign = new_campaign(mail_api, "Best hour")
    with session_scope(engine) as session:
        service.send_campaign(session=session, campaign_id=campaign["id"], mode="best_hour",
                              send_at=None, now=now, currency="BRL")
    with session_scope(engine, writes=False) as session:
        due = dict(session.execute(select(Delivery.customer_id, Delivery.due_at).where(
            Delivery.campaign_id == campaign["id"])).tuples().all())
    assert due == {
        ids["ana"]: datetime(2026, 11, 20, 20, 0, tzinfo=UTC),
        ids["bruno"]: datetime(2026, 11, 21, 9, 0, tzinfo=UTC),  # 9h has passed today
        ids["carla"]: datetime(2026, 11, 20, 20, 0, tzinfo=UTC),  # the audience's hour
    }


def test_production_refuses_to_send_without_https_links(
        mail_settings, engine, client, write_key, secret_key):
    production = mail_settings.model_copy(update={"env": "production",
                                                  "public_url": "http://crm.loja.example"})
    with TestClient(create_app(production, engine)) as api:
        api.headers["Authorization"] = f"Bearer {secret_key}"
        subscribers(client, write_key, engine, ["ana"])
        campaign = new_campaign(api, "Plain http")
        refused = api.post(f"/api/v1/campaigns/{campaign['id']}/send", json={"mode": "now"})
    assert (refused.status_code, refused.json()["code"]) == (400, "public_url_not_https")
    assert campaign_report(api, campaign["id"])["audience"] == 0


def test_a_template_that_breaks_on_one_customer_fails_that_message_alone(
        mail_api, client, write_key, engine, mail_settings, smtp):
    calls = [{"type": "identify", "userId": name, "messageId": f"n-{name}",
              "traits": {"email": f"{name}@example.com", "n": n}}
             for name, n in (("ana", 2), ("bruno", 0))]
    assert client.post("/v1/batch", json={"batch": calls},
                       headers=basic(write_key)).json()["rejected"] == []
    subscribers(client, write_key, engine, ["ana", "bruno"])
    template = mail_api.post("/api/v1/templates", json={
        "name": "Divide", "subject": "x", "html": "<p>{{ 10 // customer.traits.n }}</p>"})
    everyone = mail_api.post("/api/v1/segments", json={
        "name": "All", "rule": {"field": "email", "op": "exists", "value": True}}).json()
    campaign = mail_api.post("/api/v1/campaigns", json={
        "name": "Divide", "subject": "Oi", "template_id": template.json()["id"],
        "segment_ids": [everyone["id"]]}).json()
    mail_api.post(f"/api/v1/campaigns/{campaign['id']}/send", json={"mode": "now"})
    tasks.send_campaigns(engine=engine, settings=mail_settings)
    assert smtp[1].recipients() == ["ana@example.com"]
    assert "<p>5</p>" in body(smtp[1].to("ana@example.com")[0], "html")
    with session_scope(engine, writes=False) as session:
        failed = session.execute(select(Delivery.email, Delivery.detail).where(
            Delivery.status == "failed")).tuples().all()
    assert failed == [("bruno@example.com",
                       "html: line 1: ZeroDivisionError: integer division or modulo by zero")]
    report = campaign_report(mail_api, campaign["id"])
    assert (report["status"], report["sent"], report["failed"]) == ("sent", 1, 1)
