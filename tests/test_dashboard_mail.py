"""The dashboard's e-mail pages: templates, campaigns (editor, live audience and preview,
test sends, schedule, cancel, report) and the outbox, over HTTP on SQLite and PostgreSQL,
and a campaign built in the editor in headless Chromium."""

from __future__ import annotations

import os
import re
from datetime import UTC, datetime
from email import message_from_bytes, policy
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import httpx
import pytest
from fastapi.testclient import TestClient
from playwright.sync_api import Page, expect
from sqlalchemy import Engine, select

from clientela.config import Settings
from clientela.core.clock import utcnow
from clientela.customers import service as customers
from clientela.customers.models import Identity
from clientela.db import session_scope
from clientela.messaging import previews, tasks
from clientela.messaging import service as messaging
from clientela.messaging.models import Campaign, Delivery, Template
from clientela.messaging.transport import outbox_folder
from clientela.segments import service as segments
from clientela.team import service as team
from tests.helpers import OWNER, PASSWORD, basic, sign_in
from tests.mail import TEMPLATE, body, subscribers

if TYPE_CHECKING:
    from tests.server import LiveServer

pytest_plugins = ("tests.server", "tests.browser")

GREETING = "<p>Olá {{ customer.first_name | default('cliente') }}!</p>"


def _segment(engine: Engine, name: str, rule: dict[str, Any]) -> int:
    with session_scope(engine) as session:
        return segments.create_segment(session=session, name=name, rule=rule,
                                       description=None, now=utcnow(), currency="BRL").id


def _template(engine: Engine, name: str = "Novidades", **parts: str) -> int:
    values = {**TEMPLATE, "name": name, **parts}
    with session_scope(engine) as session:
        return messaging.create_template(session=session, now=utcnow(), name=values["name"],
                                         subject=values["subject"], html=values["html"],
                                         text=values["text"]).id


def _people(client: TestClient, write_key: str, engine: Engine) -> dict[str, int]:
    """Ana (tagged vip) and Bruno may receive marketing e-mail; Carla unsubscribed; Dora's
    address is suppressed."""
    ids = subscribers(client, write_key, engine, ["ana", "bruno", "carla", "dora"])
    with session_scope(engine) as session:
        customers.add_tags(session=session, customer_id=ids["ana"], tags=["vip"])
        customers.set_email_consent(session=session, customer_id=ids["carla"],
                                    state="unsubscribed", source="test")
        customers.suppress(session=session, email="dora@example.com", reason="hard_bounce")
    return ids


def _error(html: str, element_id: str) -> str:
    found = re.search(rf'id="{element_id}"[^>]*>([^<]*)<', html)
    assert found, f"no #{element_id} in the page"
    return found.group(1)


def _outbox(settings: Settings) -> dict[str, Any]:
    """The outbox's messages by recipient."""
    found = {}
    for path in sorted(outbox_folder(settings).glob("*.eml")):
        message = message_from_bytes(path.read_bytes(), policy=policy.default)
        found[str(message["To"])] = message
    return found


def test_pages_need_a_signed_in_user(client: TestClient) -> None:
    for path in ("/campaigns", "/campaigns/new", "/campaigns/1", "/templates",
                 "/templates/new", "/templates/1", "/outbox", "/outbox/x.eml"):
        answer = client.get(path, follow_redirects=False)
        assert (answer.status_code, answer.headers["location"]) == (303, "/login"), path
    answer = client.post("/mail/preview", json={"subject": "x", "html": "y"},
                         follow_redirects=False)
    assert (answer.status_code, answer.headers["location"]) == (303, "/login")


def test_templates_are_written_checked_previewed_and_deleted(
        client: TestClient, engine: Engine, write_key: str) -> None:
    sign_in(client, engine)
    ids = subscribers(client, write_key, engine, ["ana"])
    assert "No templates yet." in client.get("/templates").text
    assert 'id="template-form"' in client.get("/templates/new").text

    broken = "<p>Oi</p>\n<p>{{ customer.first_name }</p>"
    refused = client.post("/templates", data={"name": "Boas-vindas", "subject": "Oi",
                                              "html": broken, "text": ""})
    assert refused.status_code == 400
    assert _error(refused.text, "html-error") == "html: line 2: unexpected &#39;}&#39;"
    assert "{{ customer.first_name }&lt;/p&gt;</textarea>" in refused.text  # kept as typed
    nul = client.post("/templates", data={"name": "N", "subject": "Oi", "html": "a\x00b"})
    assert _error(nul.text, "html-error") == "html: must not contain NUL characters"
    bad_text = client.post("/templates", data={"name": "N", "subject": "Oi", "html": "<p>a</p>",
                                               "text": "{% for %}"})
    assert _error(bad_text.text, "text-error").startswith("text: line 1: ")

    saved = client.post("/templates", follow_redirects=False, data={
        "name": "Boas-vindas", "subject": "Oi {{ customer.first_name }}", "html": GREETING,
        "text": ""})
    assert saved.status_code == 303
    template_id = int(saved.headers["location"].rsplit("/", 1)[1])
    twice = client.post("/templates", data={"name": "Boas-vindas", "subject": "Oi",
                                            "html": "<p>x</p>"})
    assert (twice.status_code, _error(twice.text, "name-error")) == (
        400, "name: a template named &#39;Boas-vindas&#39; exists")
    with session_scope(engine, writes=False) as session:
        stored = session.get(Template, template_id)
        assert (stored.name, stored.subject, stored.html, stored.text) == (
            "Boas-vindas", "Oi {{ customer.first_name }}", GREETING, None)

    listed = client.get("/templates").text
    assert f'<a href="/templates/{template_id}">Boas-vindas</a>' in listed
    changed = client.post(f"/templates/{template_id}", data={
        "name": "Boas-vindas", "subject": "Olá!", "html": GREETING, "text": "Olá, texto."},
        follow_redirects=False)
    assert changed.status_code == 303
    page = client.get(f"/templates/{template_id}").text
    assert 'value="Olá!"' in page and ">Olá, texto.</textarea>" in page
    wrong = client.post(f"/templates/{template_id}", data={
        "name": "Boas-vindas", "subject": "{{ x", "html": GREETING})
    assert _error(wrong.text, "subject-error") == (
        "subject: line 1: unexpected end of template, expected "
        "&#39;end of print statement&#39;.")
    assert client.get("/templates/999").status_code == 404

    # The live preview: as the sample customer, a real one by e-mail or id, or an error.
    draft = {"subject": "Oi {{ customer.first_name }}", "html": GREETING, "text": None}
    sample = client.post("/mail/preview", json={**draft, "customer": ""}).json()
    assert sample["subject"] == "Oi Ana" and "Olá Ana!" in sample["html"]
    assert sample["text"].startswith("Olá Ana!")
    renamed = client.post("/v1/identify", headers=basic(write_key),
                          json={"userId": "ana", "traits": {"firstName": "Aninha"}})
    assert renamed.status_code == 200, renamed.text
    by_email = client.post("/mail/preview", json={**draft, "customer": " ANA@example.com "})
    assert by_email.json()["subject"] == "Oi Aninha"
    by_id = client.post("/mail/preview", json={**draft, "customer": str(ids["ana"])})
    assert "Olá Aninha!" in by_id.json()["html"]
    nobody = client.post("/mail/preview", json={**draft, "customer": "zé@example.com"})
    assert (nobody.status_code, nobody.json()) == (400, {
        "error": "customer: no customer has the id or e-mail address 'zé@example.com'",
        "field": "customer"})
    assert client.post("/mail/preview", json={**draft, "customer": "98765"}).json() == {
        "error": "customer 98765: no such customer", "field": None}
    faulty = client.post("/mail/preview", json={**draft, "html": broken})
    assert faulty.json() == {"error": "html: line 2: unexpected '}'", "field": "html"}
    saved_one = client.post("/mail/preview", json={"template_id": template_id, "subject": ""})
    assert saved_one.json()["subject"] == "Olá!" and saved_one.json()["text"].startswith(
        "Olá, texto.")

    # A template a campaign uses stays; an unused one goes.
    everyone = _segment(engine, "Everyone", {"field": "email", "op": "exists", "value": True})
    with session_scope(engine) as session:
        messaging.create_campaign(session=session, name="Uses it", subject="x",
                                  template_id=template_id, segment_ids=[everyone],
                                  exclude_segment_ids=[], tracking=True,
                                  throttle_per_second=None, now=utcnow())
    kept = client.post(f"/templates/{template_id}/delete")
    assert (kept.status_code, _error(kept.text, "template-error")) == (
        409, f"template {template_id} is used by campaign &#39;Uses it&#39;")
    spare = _template(engine, "Spare")
    gone = client.post(f"/templates/{spare}/delete", follow_redirects=False)
    assert (gone.status_code, gone.headers["location"]) == (303, "/templates")
    assert ">Spare</a>" not in client.get("/templates").text


def _form(**values: Any) -> dict[str, Any]:
    return {"name": "Semana", "subject": "{{ customer.first_name }}, ofertas",
            "template_id": "", "segment_ids": [], "exclude_segment_ids": [],
            "throttle_per_second": "", "schedule": "draft", **values}


def test_the_campaign_editor_counts_previews_saves_schedules_and_cancels(
        client: TestClient, engine: Engine, write_key: str, settings: Settings) -> None:
    sign_in(client, engine)
    ids = _people(client, write_key, engine)
    template_id = _template(engine)
    everyone = _segment(engine, "Everyone", {"field": "email", "op": "exists", "value": True})
    vip = _segment(engine, "VIP", {"tag": "vip"})

    editor = client.get("/campaigns/new").text
    assert f'<option value="{template_id}" >Novidades</option>' in editor
    assert f'<option value="{vip}" >VIP</option>' in editor

    # The live count: members who may receive marketing e-mail now (not Carla, not Dora).
    def count(include: list[int], exclude: list[int]) -> Any:
        return client.post("/campaigns/audience", json={
            "segment_ids": include, "exclude_segment_ids": exclude}).json()

    assert count([everyone], []) == {"count": 2}
    assert count([everyone], [vip]) == {"count": 1}
    assert count([vip], []) == {"count": 1}
    assert count([], []) == {"error": "segment_ids: at least one segment is needed",
                             "field": "segment_ids"}
    assert count([everyone], [999]) == {"error": "exclude_segment_ids: there is no segment 999",
                                        "field": "exclude_segment_ids"}
    # The campaign's preview: the template under the campaign's subject.
    shown = client.post("/mail/preview", json={"template_id": template_id,
                                               "subject": "{{ customer.first_name }}, ofertas",
                                               "customer": str(ids["bruno"])}).json()
    assert shown["subject"] == "Bruno, ofertas" and "Olá Bruno!" in shown["html"]

    no_template = client.post("/campaigns", data=_form(segment_ids=[str(everyone)]))
    assert (no_template.status_code, _error(no_template.text, "template_id-error")) == (
        400, "template_id: choose a template")
    no_segment = client.post("/campaigns", data=_form(template_id=str(template_id)))
    assert _error(no_segment.text, "segment_ids-error") == (
        "segment_ids: at least one segment is needed")
    slow = client.post("/campaigns", data=_form(template_id=str(template_id),
                                                segment_ids=[str(everyone)],
                                                throttle_per_second="0"))
    assert _error(slow.text, "throttle_per_second-error").startswith("throttle_per_second: ")
    past = client.post("/campaigns", data=_form(
        template_id=str(template_id), segment_ids=[str(everyone)], schedule="at",
        send_at="2020-01-01T10:00", tz_offset="0"))
    assert (past.status_code, _error(past.text, "send_at-error")) == (
        400, "send_at: must be a time in the future")
    with session_scope(engine, writes=False) as session:
        assert session.scalars(select(Campaign)).all() == []  # nothing half-written

    created = client.post("/campaigns", follow_redirects=False, data=_form(
        template_id=str(template_id), segment_ids=[str(everyone)],
        exclude_segment_ids=[str(vip)], throttle_per_second="50"))
    assert created.status_code == 303
    campaign_id = int(created.headers["location"].rsplit("/", 1)[1])
    with session_scope(engine, writes=False) as session:
        campaign = session.get(Campaign, campaign_id)
        assert (campaign.status, campaign.segment_ids, campaign.exclude_segment_ids,
                campaign.tracking, campaign.throttle_per_second) == (
            "draft", [everyone], [vip], False, 50)
    draft_page = client.get(f"/campaigns/{campaign_id}").text
    assert 'id="campaign-status">draft<' in draft_page and 'id="edit-campaign"' in draft_page
    assert "<dt>Excluded</dt><dd>VIP</dd>" in draft_page
    assert 'id="cancel-campaign"' not in draft_page
    edit = client.get(f"/campaigns/{campaign_id}/edit").text
    assert f'<option value="{vip}" selected>VIP</option>' in edit
    assert 'type="number" min="1" max="100000" value="50"' in edit

    # Edited and scheduled at 10:00 in the browser's zone, three hours behind UTC.
    scheduled = client.post(f"/campaigns/{campaign_id}/edit", follow_redirects=False,
                            data=_form(name="Semana 2", template_id=str(template_id),
                                       segment_ids=[str(everyone), str(vip)], tracking="on",
                                       schedule="at", send_at="2099-01-01T10:00",
                                       tz_offset="180"))
    assert scheduled.status_code == 303, scheduled.text
    with session_scope(engine, writes=False) as session:
        campaign = session.get(Campaign, campaign_id)
        assert (campaign.name, campaign.status, campaign.send_at, campaign.segment_ids,
                campaign.exclude_segment_ids, campaign.tracking) == (
            "Semana 2", "scheduled", datetime(2099, 1, 1, 13, 0, tzinfo=UTC),
            sorted([everyone, vip]), [], True)
    assert client.get(f"/campaigns/{campaign_id}/edit",
                      follow_redirects=False).headers["location"] == f"/campaigns/{campaign_id}"
    late = client.post(f"/campaigns/{campaign_id}/edit", data=_form(
        template_id=str(template_id), segment_ids=[str(everyone)]))
    assert (late.status_code, _error(late.text, "campaign-error")) == (
        409, f"campaign {campaign_id} is scheduled: only a draft can change")
    page = client.get(f"/campaigns/{campaign_id}").text
    assert "<dt>Schedule</dt><dd>at 2099-01-01 13:00 UTC</dd>" in page
    assert 'id="cancel-campaign"' in page
    cancelled = client.post(f"/campaigns/{campaign_id}/cancel", follow_redirects=False)
    assert cancelled.status_code == 303
    assert 'id="campaign-status">cancelled<' in client.get(f"/campaigns/{campaign_id}").text
    again = client.post(f"/campaigns/{campaign_id}/cancel")
    assert (again.status_code, _error(again.text, "campaign-error")) == (
        409, f"campaign {campaign_id} is already cancelled")
    assert client.get("/campaigns/999").status_code == 404

    # Test sends land in the outbox (no relay), nothing recorded as a delivery.
    tested = client.post("/campaigns/test", json={
        "template_id": template_id, "subject": "{{ customer.first_name }}, ofertas",
        "email": "Dona@Loja.com.br", "customer": "bruno@example.com"})
    assert tested.status_code == 200, tested.text
    assert re.fullmatch(rf"<test\.t{template_id}\.\d+\.[0-9a-f]{{8}}@.+>",
                        tested.json()["message_id"])
    from_page = client.post(f"/campaigns/{campaign_id}/test",
                            data={"email": "socio@loja.com.br", "customer": ""})
    assert "Test sent to socio@loja.com.br (&lt;test.c" in from_page.text
    refused = client.post(f"/campaigns/{campaign_id}/test", data={"email": "nope"})
    assert (refused.status_code, _error(refused.text, "campaign-error")) == (
        400, "email: must be an e-mail address")
    assert client.post("/campaigns/test", json={"template_id": template_id, "subject": "x",
                                                "email": "a@b.c", "customer": "nobody"}
                       ).json()["field"] == "customer"
    sent = _outbox(settings)
    assert sorted(sent) == ["dona@loja.com.br", "socio@loja.com.br"]
    assert sent["dona@loja.com.br"]["Subject"] == "[TESTE] Bruno, ofertas"
    assert "Olá Bruno!" in body(sent["dona@loja.com.br"], "html")
    assert sent["socio@loja.com.br"]["Subject"] == "[TESTE] Ana, ofertas"  # the sample
    with session_scope(engine, writes=False) as session:
        assert session.scalars(select(Delivery)).all() == []


def test_a_sent_campaign_reports_and_the_outbox_shows_it(
        client: TestClient, engine: Engine, write_key: str, settings: Settings) -> None:
    sign_in(client, engine)
    subscribers(client, write_key, engine, ["ana", "bruno", "carla", "dora", "edu"])
    template_id = _template(engine)
    everyone = _segment(engine, "Everyone", {"field": "email", "op": "exists", "value": True})
    started = client.post("/campaigns", follow_redirects=False, data=_form(
        template_id=str(template_id), segment_ids=[str(everyone)], tracking="on",
        schedule="now"))
    campaign_id = int(started.headers["location"].rsplit("/", 1)[1])
    sending = client.get(f"/campaigns/{campaign_id}").text
    assert 'id="campaign-status">sending<' in sending and 'id="cancel-campaign"' in sending
    assert tasks.send_campaigns(engine=engine, settings=settings)[campaign_id].sent == 5

    # Ana opens, clicks and buys; Bruno's mail proxy fetches the pixel; Carla unsubscribes;
    # Dora complains; Edu's address bounces.
    messages = _outbox(settings)
    ana = body(messages["ana@example.com"], "html")
    pixel = re.search(r'<img[^>]+src="([^"]+/t/o/[^"]+)"', ana)
    link = re.search(r'href="([^"]+/t/c/[^"]+)"', ana)
    assert pixel and link
    assert client.get(urlsplit(pixel.group(1)).path).status_code == 200
    assert client.get(urlsplit(link.group(1)).path, follow_redirects=False).status_code == 302
    bruno = re.search(r'src="([^"]+/t/o/[^"]+)"', body(messages["bruno@example.com"], "html"))
    assert bruno
    client.get(urlsplit(bruno.group(1)).path, headers={"User-Agent": "YahooMailProxy"})
    unsubscribe = urlsplit(messages["carla@example.com"]["List-Unsubscribe"].strip("<>")).path
    client.post(unsubscribe, data={"List-Unsubscribe": "One-Click"})
    with session_scope(engine) as session:
        for name, kind in (("dora", "complaint"), ("edu", "hard_bounce")):
            messaging.record_bounce(session=session, kind=kind, at=utcnow(),
                                    message_id=str(messages[f"{name}@example.com"]["Message-ID"]))
    order = client.post("/v1/track", headers=basic(write_key), json={
        "userId": "ana", "event": "Order Completed", "properties": {
            "order_id": "o-1", "total": 120.50, "currency": "BRL",
            "products": [{"product_id": "p1", "name": "Caneca", "price": 120.50}]}})
    assert order.status_code == 200, order.text

    page = client.get(f"/campaigns/{campaign_id}").text
    report = dict(re.findall(r"<dt>([^<]+)</dt><dd>([^<]*)</dd>",
                             page.split('id="campaign-report"')[1].split("</dl>")[0]))
    assert report == {
        "Sent": "5", "Delivered": "4", "Bounced": "1 (1 hard)", "Opened (people)": "1",
        "Machine opens": "1", "Clicked": "1", "Unsubscribed": "2", "Complaints": "1",
        "Orders": "1", "Revenue": "BRL 120.50", "Waiting": "0", "Failed": "0", "Skipped": "0",
        "Unconfirmed": "0"}
    assert 'id="campaign-status">sent<' in page and 'id="cancel-campaign"' not in page
    assert "<dt>Audience</dt><dd>5</dd>" in page
    listed = client.get("/campaigns").text
    row = listed.split(f'<a href="/campaigns/{campaign_id}">Semana</a>')[1].split("</tr>")[0]
    assert re.findall(r'<td class="num">(\d+)</td>', row) == ["5", "5", "1", "1"]
    assert ">sent</span>" in row

    # The outbox: newest first, each message shown with its headers and HTML, sandboxed.
    folder = outbox_folder(settings)
    names = {str(message["To"]): name for name, message in (
        (path.name, message_from_bytes(path.read_bytes(), policy=policy.default))
        for path in folder.glob("*.eml"))}
    for minute, name in enumerate(["edu", "dora", "carla", "bruno", "ana"]):
        stamp = datetime(2026, 3, 1, 12, minute, tzinfo=UTC).timestamp()
        os.utime(folder / names[f"{name}@example.com"], (stamp, stamp))
    outbox = client.get("/outbox").text
    assert re.findall(r"<td>([a-z]+@example\.com)</td>", outbox) == [
        "ana@example.com", "bruno@example.com", "carla@example.com", "dora@example.com",
        "edu@example.com"]
    assert outbox.count(">Ana, ofertas</a>") == 1
    shown = client.get(f"/outbox/{names['ana@example.com']}").text
    assert "<dt>To</dt><dd>ana@example.com</dd>" in shown
    assert "<dt>List-Unsubscribe-Post</dt><dd>List-Unsubscribe=One-Click</dd>" in shown
    frame = re.search(r'<iframe id="message-html" sandbox title="[^"]+" srcdoc="([^"]*)"', shown)
    assert frame and "Olá Ana!" in frame.group(1) and "<p>" not in frame.group(1)
    assert "&lt;p&gt;Olá Ana!" in frame.group(1)  # escaped into the attribute, not the page


@pytest.mark.parametrize("name", [
    "..%2F..%2Fclientela.db", "..%2Fserver.log", "%2Fetc%2Fpasswd", "x.part", "..eml",
    ".hidden.eml", "nope.eml", "a%00.eml", "link.eml"])
def test_outbox_file_names_never_leave_the_folder(
        client: TestClient, engine: Engine, settings: Settings, name: str) -> None:
    sign_in(client, engine)
    folder = outbox_folder(settings)
    folder.mkdir(parents=True)
    (folder.parent / "secret.eml").write_text("To: x@example.com\n\nsecret")
    (folder / "x.part").write_text("To: x@example.com\n\npartial")
    (folder / "link.eml").symlink_to(folder.parent / "secret.eml")
    answer = client.get(f"/outbox/{name}")
    assert answer.status_code == 404 and "secret" not in answer.text
    assert "partial" not in answer.text
    assert "The outbox is empty." in client.get("/outbox").text


def test_the_api_test_send_reaches_the_relay(
        mail_api: TestClient, engine: Engine, smtp: tuple[int, Any], client: TestClient,
        write_key: str, mail_settings: Settings) -> None:
    ids = subscribers(client, write_key, engine, ["ana"])
    template_id = _template(engine)
    everyone = _segment(engine, "Everyone", {"field": "email", "op": "exists", "value": True})
    campaign = mail_api.post("/api/v1/campaigns", json={
        "name": "Semana", "subject": "{{ customer.first_name }}, ofertas",
        "template_id": template_id, "segment_ids": [everyone]}).json()
    answer = mail_api.post(f"/api/v1/campaigns/{campaign['id']}/test",
                           json={"email": "Dona@Loja.com.br", "customer_id": ids["ana"]})
    assert answer.status_code == 202, answer.text
    [message] = smtp[1].to("dona@loja.com.br")
    assert message["Subject"] == "[TESTE] Ana, ofertas"
    assert message["Message-ID"] == answer.json()["message_id"]
    bad = mail_api.post(f"/api/v1/campaigns/{campaign['id']}/test", json={"email": "nope"})
    assert (bad.status_code, bad.json()["message"]) == (400, "email: must be an e-mail address")
    too_big = mail_api.post("/api/v1/campaigns", json={
        "name": "Big", "subject": "x", "template_id": 2**63, "segment_ids": [everyone]})
    assert too_big.status_code == 422, too_big.text  # was a 500: past BIGINT
    preview = mail_api.post(f"/api/v1/templates/{template_id}/preview", json={})
    assert "Olá Ana!" in preview.json()["html"]
    # Two tests sent within the same second are two messages, not one Message-ID twice.
    same_second = datetime(2026, 11, 22, 12, 0, tzinfo=UTC)
    with session_scope(engine, writes=False) as session:
        parts = messaging.parts_of(messaging.get_template(
            session=session, template_id=template_id), "Oi")
        sent = {previews.send_test(session=session, settings=mail_settings, parts=parts,
                                   email="dona@loja.com.br", customer_id=None,
                                   now=same_second, label="c1") for _ in range(2)}
    assert len(sent) == 2
    assert {str(m["Message-ID"]) for m in smtp[1].to("dona@loja.com.br")[1:]} == sent


def _subscribers_of(server: LiveServer, write_key: str, engine: Engine) -> None:
    """Ana (vip) and Bruno subscribed to marketing e-mail, Carla not."""
    calls = [{"type": "identify", "userId": name, "messageId": f"id-{name}",
              "traits": {"email": f"{name}@example.com", "firstName": name.title()}}
             for name in ("ana", "bruno", "carla")]
    answer = httpx.post(f"{server.base_url}/v1/batch", json={"batch": calls},
                        headers=basic(write_key), timeout=10.0)
    assert answer.status_code == 200 and answer.json()["rejected"] == [], answer.text
    with session_scope(engine) as session:
        owners = dict(session.execute(select(Identity.value, Identity.customer_id).where(
            Identity.kind == "user_id")).tuples().all())
        for name in ("ana", "bruno"):
            customers.set_email_consent(session=session, customer_id=owners[name],
                                        state="subscribed", source="test")
        customers.add_tags(session=session, customer_id=owners["ana"], tags=["vip"])


@pytest.mark.browser
def test_a_campaign_built_in_the_editor(live_server: LiveServer, engine: Engine,
                                        write_key: str, page: Page) -> None:
    with session_scope(engine) as session:
        team.create_user(session=session, email=OWNER, password=PASSWORD, role="owner")
    _subscribers_of(live_server, write_key, engine)
    _template(engine)
    _segment(engine, "Everyone", {"field": "email", "op": "exists", "value": True})
    _segment(engine, "VIP", {"tag": "vip"})
    page.goto(f"{live_server.base_url}/login")
    page.get_by_label("E-mail").fill(OWNER)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    expect(page).to_have_url(f"{live_server.base_url}/overview")

    page.get_by_role("link", name="Campaigns").click()
    page.get_by_role("link", name="New campaign").click()
    count, subject = page.locator("#audience-count"), page.locator("#preview-subject")
    frame = page.locator("#preview-frame")
    expect(count).to_have_text("segment_ids: at least one segment is needed")
    page.locator("#campaign-name").fill("Semana")
    page.locator("#campaign-subject").fill("{{ customer.first_name }}, ofertas")
    page.locator("#campaign-template").select_option(label="Novidades")
    expect(subject).to_have_text("Ana, ofertas")  # the sample customer
    expect(frame).to_have_attribute("srcdoc", re.compile("Olá Ana!"))
    page.locator("#campaign-segments").select_option(label="Everyone")
    expect(count).to_have_text("2 customers")  # Carla gave no consent
    page.locator("#campaign-exclude").select_option(label="VIP")
    expect(count).to_have_text("1 customers")
    page.locator("#preview-customer").fill("bruno@example.com")
    expect(subject).to_have_text("Bruno, ofertas")
    expect(frame).to_have_attribute("srcdoc", re.compile("Olá Bruno!"))
    page.locator("#campaign-subject").fill("{{ customer.first_name }}, só hoje")
    expect(subject).to_have_text("Bruno, só hoje")
    page.locator("#preview-customer").fill("nobody@example.com")
    expect(page.locator("#preview-error")).to_have_text(
        "customer: no customer has the id or e-mail address 'nobody@example.com'")
    page.get_by_role("button", name="Save campaign").click()
    expect(page).to_have_url(re.compile(r"/campaigns/\d+$"))
    expect(page.locator("#campaign-status")).to_have_text("draft")
    facts = dict(zip(page.locator("#campaign-facts dt").all_inner_texts(),
                     page.locator("#campaign-facts dd").all_inner_texts(), strict=True))
    assert (facts["Subject"], facts["Template"], facts["Segments"], facts["Excluded"]) == (
        "{{ customer.first_name }}, só hoje", "Novidades", "Everyone", "VIP")
    page.get_by_role("link", name="Campaigns").click()
    expect(page.locator("#campaign-list tbody tr td").first).to_have_text("Semana")
    assert "Traceback" not in live_server.output(), live_server.output()
