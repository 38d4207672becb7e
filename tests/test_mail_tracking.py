"""Opens, clicks, bounces and complaints: from the message a real SMTP server received, as
a reader, a mail proxy, a relay or a bounce mail would report them."""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
from datetime import timedelta
from pathlib import Path
from typing import Any

import orjson
import pytest
from sqlalchemy import select

from clientela.customers.models import Customer, Suppression
from clientela.db import session_scope
from clientela.messaging import tasks
from clientela.messaging.models import Delivery
from clientela.messaging.templates import Rendered
from clientela.messaging.tracking import clicked, tracked
from clientela.tracking.models import Event
from tests.helpers import basic
from tests.mail import body, campaign_report, new_campaign, subscribers

HUMAN = "Mozilla/5.0 (Macintosh; Intel Mac OS X 14_0) AppleWebKit/605.1.15 (KHTML, like Gecko)"
APPLE_PROXY = "Mozilla/5.0"


def _sent(mail_api, client, write_key, engine, settings, smtp, names: list[str],
          **campaign: Any) -> tuple[dict[str, int], dict[str, Any]]:
    ids = subscribers(client, write_key, engine, names)
    made = new_campaign(mail_api, "Tracked", **campaign)
    mail_api.post(f"/api/v1/campaigns/{made['id']}/send", json={"mode": "now"})
    tasks.send_campaigns(engine=engine, settings=settings)
    return ids, made


def _paths(message: Any) -> tuple[str, list[str]]:
    """(the open pixel's path, the click redirects' paths) in the HTML of a message."""
    html = body(message, "html")
    [pixel] = re.findall(r'src="https://crm\.loja\.example(/t/o/[^"]+\.gif)"', html)
    clicks = re.findall(r'href="https://crm\.loja\.example(/t/c/[^"]+)"', html)
    return pixel, clicks


def test_opens_and_clicks_of_people_count_and_reach_the_profile(
        mail_api, client, write_key, engine, mail_settings, smtp):
    ids, campaign = _sent(mail_api, client, write_key, engine, mail_settings, smtp,
                          ["ana", "bruno"])
    [ana_mail], [bruno_mail] = smtp[1].to("ana@example.com"), smtp[1].to("bruno@example.com")
    pixel, [offers] = _paths(ana_mail)
    # The unsubscribe and preference links are not rewritten; the offers link is.
    assert body(ana_mail, "html").count('href="https://crm.loja.example/u/') == 2

    # Ana's mail app shows the images, twice; she clicks.
    for _ in range(2):
        answer = client.get(pixel, headers={"User-Agent": HUMAN})
        assert answer.status_code == 200 and answer.headers["cache-control"] == "no-store"
        assert answer.headers["content-type"] == "image/gif" and answer.content[:6] == b"GIF89a"
    followed = client.get(offers, headers={"User-Agent": HUMAN}, follow_redirects=False)
    assert (followed.status_code, followed.headers["location"]) == (
        302, "https://loja.example/ofertas")
    # Bruno uses Apple Mail with Privacy Protection: its proxy fetches the pixel at once.
    bruno_pixel, _ = _paths(bruno_mail)
    assert client.get(bruno_pixel, headers={"User-Agent": APPLE_PROXY}).status_code == 200

    report = campaign_report(mail_api, campaign["id"])
    assert (report["sent"], report["opened"], report["machine_opened"], report["clicked"]) == (
        2, 1, 1, 1)
    with session_scope(engine, writes=False) as session:
        events = session.execute(select(Event.customer_id, Event.event, Event.properties)
                                 .where(Event.event.like("Email %"))
                                 .order_by(Event.id)).tuples().all()
    delivery = _delivery_of(engine, ids["ana"])
    assert [(cid, name) for cid, name, _ in events] == [
        (ids["ana"], "Email Opened"), (ids["ana"], "Email Opened"),
        (ids["ana"], "Email Link Clicked")]
    assert events[2][2] == {"campaign_id": campaign["id"], "delivery_id": delivery,
                            "url": "https://loja.example/ofertas"}
    # The profile's timeline shows them.
    timeline = mail_api.get(f"/api/v1/customers/{ids['ana']}/events").json()["items"]
    assert [item["event"] for item in timeline[:3]] == [
        "Email Link Clicked", "Email Opened", "Email Opened"]


def _delivery_of(engine: Any, customer_id: int) -> int:
    with session_scope(engine, writes=False) as session:
        return int(session.scalar(select(Delivery.id).where(
            Delivery.customer_id == customer_id)) or 0)


def test_click_redirects_go_only_to_links_of_that_message(
        mail_api, client, write_key, engine, mail_settings, smtp):
    _sent(mail_api, client, write_key, engine, mail_settings, smtp, ["ana"])
    [message] = smtp[1].to("ana@example.com")
    _, [offers] = _paths(message)
    token = offers.rsplit("/", 1)[1]
    value, mac = token.split(".")
    forged_value = base64.urlsafe_b64encode(
        base64.urlsafe_b64decode(value + "==").replace(b"https://loja.example/ofertas",
                                                       b"https://evil.example/")).rstrip(b"=")
    forged = client.get(f"/t/c/{forged_value.decode()}.{mac}", follow_redirects=False)
    assert forged.status_code == 400 and "location" not in forged.headers
    assert client.get("/t/o/forged.gif").status_code == 200  # an image, counting nothing


def test_without_tracking_messages_carry_no_pixel_and_plain_links(
        mail_api, client, write_key, engine, mail_settings, smtp):
    _sent(mail_api, client, write_key, engine, mail_settings, smtp, ["ana"], tracking=False)
    [message] = smtp[1].to("ana@example.com")
    html, text = body(message, "html"), body(message, "plain").replace("\r\n", "\n")
    assert "/t/o/" not in html and "/t/c/" not in html
    assert 'href="https://loja.example/ofertas"' in html
    assert text.startswith("Olá Ana! Ofertas: https://loja.example/ofertas\n\n--\n")


def test_links_in_the_text_part_are_click_tracked_too(
        mail_api, client, write_key, engine, mail_settings, smtp):
    ids, campaign = _sent(mail_api, client, write_key, engine, mail_settings, smtp, ["ana"])
    [message] = smtp[1].to("ana@example.com")
    _, [offers] = _paths(message)
    unsubscribe = message["List-Unsubscribe"].strip("<>")
    # The same link has the same redirect in both parts; the recipient's own links stay.
    assert body(message, "plain").replace("\r\n", "\n") == (
        f"Olá Ana! Ofertas: https://crm.loja.example{offers}\n\n--\nLoja Teste\n\n"
        f"Preferências de e-mail: {unsubscribe}/preferences\n"
        f"Cancelar inscrição: {unsubscribe}")
    assert unsubscribe.startswith("https://crm.loja.example/u/")

    followed = client.get(offers, headers={"User-Agent": HUMAN}, follow_redirects=False)
    assert (followed.status_code, followed.headers["location"]) == (
        302, "https://loja.example/ofertas")
    with session_scope(engine, writes=False) as session:
        clicks = session.execute(select(Event.customer_id, Event.properties).where(
            Event.event == "Email Link Clicked")).tuples().all()
    assert clicks == [(ids["ana"], {"campaign_id": campaign["id"],
                                    "delivery_id": _delivery_of(engine, ids["ana"]),
                                    "url": "https://loja.example/ofertas"})]
    assert campaign_report(mail_api, campaign["id"])["clicked"] == 1


def test_text_links_end_where_the_sentence_goes_on(settings):
    text = ("Veja https://loja.example/a. Ou (https://loja.example/b?x=1&y=2), "
            "https://pt.wikipedia.org/wiki/Loja_(comércio)! Sair: https://crm.loja.example/u/t\n"
            "Sem link: http:// e ftp://loja.example/c")
    tracking_on = settings.model_copy(update={"public_url": "https://crm.loja.example/"})
    rendered = tracked(Rendered(subject="s", html="<p>x</p>", text=text),
                       settings=tracking_on, delivery_id=42)
    tokens = re.findall(r"https://crm\.loja\.example/t/c/([A-Za-z0-9_-]+\.[A-Za-z0-9_-]+)",
                        rendered.text)
    assert [clicked(tracking_on, token) for token in tokens] == [
        (42, "https://loja.example/a"), (42, "https://loja.example/b?x=1&y=2"),
        (42, "https://pt.wikipedia.org/wiki/Loja_(comércio)")]
    redirect = "https://crm.loja.example/t/c/{}".format
    assert rendered.text == (
        f"Veja {redirect(tokens[0])}. Ou ({redirect(tokens[1])}), {redirect(tokens[2])}! "
        "Sair: https://crm.loja.example/u/t\nSem link: http:// e ftp://loja.example/c")


def test_orders_after_a_click_are_attributed_within_the_window(
        mail_api, client, write_key, engine, mail_settings, smtp):
    _, campaign = _sent(mail_api, client, write_key, engine, mail_settings, smtp, ["ana"])
    _, [offers] = _paths(smtp[1].to("ana@example.com")[0])
    client.get(offers, headers={"User-Agent": HUMAN}, follow_redirects=False)
    with session_scope(engine, writes=False) as session:
        clicked = session.scalar(select(Delivery.clicked_at))
    assert clicked is not None

    def order(order_id: str, after: timedelta, total: float) -> dict[str, Any]:
        return {"type": "track", "userId": "ana", "event": "Order Completed",
                "messageId": order_id, "timestamp": (clicked + after).isoformat(),
                "properties": {"order_id": order_id, "total": total, "currency": "BRL"}}

    calls = [order("before", -timedelta(hours=1), 10.0), order("soon", timedelta(hours=2), 120.5),
             order("later", timedelta(days=4), 30.0), order("too-late", timedelta(days=6), 99.0)]
    assert client.post("/v1/batch", json={"batch": calls},
                       headers=basic(write_key)).json()["rejected"] == []
    report = campaign_report(mail_api, campaign["id"])
    assert (report["orders"], report["revenue"]) == (2, "150.50")
    week = mail_api.get(f"/api/v1/campaigns/{campaign['id']}/report",
                        params={"attribution_days": 7}).json()
    assert (week["orders"], week["revenue"]) == (3, "249.50")


def _signature(body: bytes, secret: str) -> str:
    return base64.b64encode(hmac.new(secret.encode(), body, hashlib.sha256).digest()).decode()


def test_relay_reports_suppress_hard_bounces_and_complaints(
        mail_settings, engine, client, write_key, smtp):
    from fastapi.testclient import TestClient

    from clientela.api.app import create_app

    settings = mail_settings.model_copy(update={"mail_events_secret": "relay-secret"})
    with TestClient(create_app(settings, engine)) as api:
        api.headers["Authorization"] = mail_api_key(engine)
        ids, campaign = _sent(api, client, write_key, engine, settings, smtp,
                              ["ana", "bruno", "carla"])
        message_ids = {to: smtp[1].to(to)[0]["Message-ID"] for to in (
            "ana@example.com", "bruno@example.com", "carla@example.com")}
        reports = {"events": [
            {"message_id": message_ids["ana@example.com"], "type": "hard_bounce",
             "detail": "550 5.1.1 user unknown"},
            {"message_id": message_ids["bruno@example.com"].strip("<>"), "type": "soft_bounce"},
            {"message_id": message_ids["carla@example.com"], "type": "complaint"}]}
        raw = orjson.dumps(reports)
        unsigned = api.post("/integrations/email/events", content=raw)
        assert (unsigned.status_code, unsigned.json()["code"]) == (401, "invalid_signature")
        answer = api.post("/integrations/email/events", content=raw, headers={
            "X-Clientela-Signature": _signature(raw, "relay-secret")})
        assert answer.status_code == 200 and answer.json() == {"success": True, "recorded": 3}
        bad = orjson.dumps({"message_id": "<nobody@here>", "type": "lost"})
        refused = api.post("/integrations/email/events", content=bad, headers={
            "X-Clientela-Signature": _signature(bad, "relay-secret")})
        assert refused.status_code == 400 and "type: must be one of" in refused.json()["message"]
        report = api.get(f"/api/v1/campaigns/{campaign['id']}/report").json()
    assert (report["sent"], report["delivered"], report["bounced"], report["hard_bounced"],
            report["complaints"], report["unsubscribed"]) == (3, 1, 2, 1, 1, 1)
    with session_scope(engine, writes=False) as session:
        suppressed = dict(session.execute(select(Suppression.email, Suppression.reason))
                          .tuples().all())
        carla = session.get(Customer, ids["carla"])
        assert (carla.email_marketing, carla.email_marketing_source) == (
            "unsubscribed", "complaint")
    assert suppressed == {"ana@example.com": "hard_bounce", "carla@example.com": "complaint"}


def mail_api_key(engine: Any) -> str:
    from clientela.team import service as team

    with session_scope(engine) as session:
        return "Bearer " + team.create_key(session=session, kind="secret", name="mail").key


def test_email_events_answer_404_when_not_configured(client):
    answer = client.post("/integrations/email/events", content=b"{}")
    assert (answer.status_code, answer.json()["code"]) == (404, "not_configured")


DSN = """\
From: MAILER-DAEMON@mx.example.net
To: news@loja.example
Subject: Undelivered Mail Returned to Sender
MIME-Version: 1.0
Content-Type: multipart/report; report-type=delivery-status; boundary="B"

--B
Content-Type: text/plain

This is the mail system at host mx.example.net. Your message could not be delivered.

--B
Content-Type: message/delivery-status

Reporting-MTA: dns; mx.example.net
Arrival-Date: Sun, 22 Nov 2026 10:00:00 +0000

Final-Recipient: rfc822; {to}
Original-Recipient: rfc822;{to}
Action: {action}
Status: {status}
Diagnostic-Code: smtp; {code}

--B
Content-Type: text/rfc822-headers

From: Loja Teste <news@loja.example>
To: {to}
Subject: Ana, ofertas da semana
Message-ID: {message_id}

--B--
"""


def test_delivery_status_mails_in_the_bounce_folder_are_recorded(
        mail_api, client, write_key, engine, mail_settings, smtp, tmp_path: Path):
    settings = mail_settings.model_copy(update={"data_dir": tmp_path})
    _, campaign = _sent(mail_api, client, write_key, engine, settings, smtp,
                        ["ana", "bruno"])
    folder = tmp_path / "bounces"
    folder.mkdir()
    for to, action, status, code in (
            ("ana@example.com", "failed", "5.1.1", "550 5.1.1 <ana@example.com>: unknown"),
            ("bruno@example.com", "delayed", "4.4.1", "451 4.4.1 connection timed out")):
        message_id = smtp[1].to(to)[0]["Message-ID"]
        (folder / f"{to}.eml").write_text(DSN.format(to=to, action=action, status=status,
                                                     code=code, message_id=message_id))
    (folder / "stranger.eml").write_text(DSN.format(
        to="x@example.org", action="failed", status="5.1.1", code="550",
        message_id="<not-ours@elsewhere>"))
    assert tasks.read_bounces(engine=engine, settings=settings) == 2
    assert sorted(p.name for p in (folder / "done").iterdir()) == [
        "ana@example.com.eml", "bruno@example.com.eml"]
    assert [p.name for p in (folder / "unread").iterdir()] == ["stranger.eml"]
    with session_scope(engine, writes=False) as session:
        bounces = dict(session.execute(select(Delivery.email, Delivery.bounce)).tuples().all())
        assert session.scalar(select(Suppression.reason).where(
            Suppression.email == "ana@example.com")) == "hard_bounce"
        assert session.get(Suppression, "bruno@example.com") is None
    assert bounces == {"ana@example.com": "hard", "bruno@example.com": "soft"}
    report = campaign_report(mail_api, campaign["id"])
    assert (report["bounced"], report["hard_bounced"], report["delivered"]) == (2, 1, 0)
    # A suppressed address gets no more campaigns.
    second = new_campaign(mail_api, "Again")
    mail_api.post(f"/api/v1/campaigns/{second['id']}/send", json={"mode": "now"})
    assert campaign_report(mail_api, second["id"])["audience"] == 1


@pytest.mark.parametrize(("agent", "machine"), [
    (HUMAN, False), ("Mozilla/5.0", True), (None, True),
    ("Mozilla/5.0 (Windows NT 5.1; rv:11.0) Gecko Firefox/11.0 (via ggpht.com GoogleImageProxy)",
     False),
    ("YahooMailProxy; https://help.yahoo.com/kb/yahoo-mail-proxy-SLN28749.html", True),
    ("python-requests/2.31", True)])
def test_machines_are_told_from_people(agent, machine):
    from clientela.messaging.tracking import is_machine

    assert is_machine(agent) is machine

