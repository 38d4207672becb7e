"""The SMTP client against a real aiosmtpd server: replies of one and many lines, refusals
for now and for good, PIPELINING, dots at the start of lines, AUTH, and connections that
drop before or after a message is handed over."""

from __future__ import annotations

import asyncio
import ssl
import subprocess
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.smtp import AuthResult, LoginPassword
from sqlalchemy import select

from clientela.config import Settings
from clientela.db import session_scope
from clientela.messaging.compose import Outgoing
from clientela.messaging.delivery import Sender, deliver_campaign
from clientela.messaging.models import Delivery
from clientela.messaging.transport import Outcome, Smtp
from tests.mail import Received, new_campaign, smtp_server, subscribers


def _relay(port: int, tmp_path: Path, **overrides: Any) -> Settings:
    values: dict[str, Any] = {"smtp_host": "127.0.0.1", "smtp_tls": "none", **overrides}
    return Settings(env="test", database_url=f"sqlite:///{tmp_path}/unused.db",  # type: ignore[arg-type]
                    data_dir=tmp_path, secret_key="test-secret-key", smtp_port=port,
                    smtp_connections=1, **values)


def _message(to: str, body: str = "Olá!\r\n") -> Outgoing:
    data = f"From: news@loja.example\r\nTo: {to}\r\nSubject: Oi\r\n\r\n{body}".encode()
    return Outgoing(message_id=f"<{to}>", mail_from="news@loja.example", to=to, data=data)


def _send_all(settings: Settings, messages: list[Outgoing]) -> list[Outcome]:
    """Each message in turn over the same relay, as a campaign's batch would."""
    async def run() -> list[Outcome]:
        transport = Smtp(settings)
        try:
            return [await transport.send(message) for message in messages]
        finally:
            await transport.close()
    return asyncio.run(run())


@pytest.fixture(params=[False, True], ids=["sequential", "pipelining"])
def relay(request: pytest.FixtureRequest, tmp_path: Path
          ) -> Iterator[tuple[Settings, Received]]:
    with smtp_server() as (port, received):
        received.pipelining = request.param
        yield _relay(port, tmp_path), received


def test_refusals_for_good_and_for_now_of_one_line_or_many(relay):
    settings, received = relay
    received.refuse = {"ana@example.com": "550-5.1.1 no such user here\r\n550 5.1.1 ask the shop",
                       "bruno@example.com": "451 4.3.0 try again later"}
    outcomes = _send_all(settings, [_message(f"{name}@example.com")
                                    for name in ("ana", "bruno", "carla")])
    assert outcomes == [
        Outcome(False, permanent=True, detail="550 5.1.1 no such user here\n5.1.1 ask the shop"),
        Outcome(False, permanent=False, detail="451 4.3.0 try again later"),
        Outcome(True)]
    assert received.recipients() == ["carla@example.com"]


def test_lines_starting_with_a_dot_arrive_as_written(relay):
    settings, received = relay
    body = ".hidden\r\n..two\r\n.\r\nend\r\n"
    assert _send_all(settings, [_message("ana@example.com", body)]) == [Outcome(True)]
    [(_, message)] = received.messages
    assert message.get_content() == body


def test_a_connection_dropped_before_the_message_is_sent_sends_it_on_a_new_one(relay):
    settings, received = relay
    received.drop = {"bruno@example.com": "rcpt"}
    outcomes = _send_all(settings, [_message(f"{name}@example.com")
                                    for name in ("ana", "bruno", "carla")])
    assert outcomes == [Outcome(True)] * 3
    assert received.recipients() == ["ana@example.com", "bruno@example.com",
                                     "carla@example.com"]


def test_a_connection_dropped_after_the_message_is_sent_never_sends_it_again(relay):
    settings, received = relay
    received.drop = {"bruno@example.com": "data"}
    outcomes = _send_all(settings, [_message(f"{name}@example.com")
                                    for name in ("ana", "bruno", "carla")])
    assert outcomes == [Outcome(True), Outcome(
        False, unconfirmed=True, detail="connection lost after the message was sent: "
        "ConnectionResetError: the server closed the connection"), Outcome(True)]
    assert received.recipients() == ["ana@example.com", "bruno@example.com",
                                     "carla@example.com"]


def _send_together(settings: Settings, messages: list[Outgoing]) -> list[Outcome]:
    """The messages at once over the relay's connections, as a campaign's batch goes."""
    async def run() -> list[Outcome]:
        transport = Smtp(settings)
        try:
            return list(await asyncio.gather(*(transport.send(m) for m in messages)))
        finally:
            await transport.close()
    return asyncio.run(run())


def test_messages_sent_together_each_hear_their_own_answer(relay):
    settings, received = relay
    received.refuse = {"bruno@example.com": "550 5.1.1 no such user"}
    received.refuse_data = {"carla@example.com": "554 5.7.1 message refused as spam",
                            "davi@example.com": "452 4.3.1 out of space for now"}
    names = ("ana", "bruno", "carla", "davi", "eva", "fabio")
    outcomes = _send_together(settings, [_message(f"{name}@example.com") for name in names])
    assert outcomes == [
        Outcome(True),
        Outcome(False, permanent=True, detail="550 5.1.1 no such user"),
        Outcome(False, permanent=True, detail="554 5.7.1 message refused as spam"),
        Outcome(False, permanent=False, detail="452 4.3.1 out of space for now"),
        Outcome(True), Outcome(True)]
    assert received.recipients() == ["ana@example.com", "eva@example.com", "fabio@example.com"]


def test_a_drop_after_a_message_sent_together_loses_only_its_answer(relay):
    """The message whose data the server took before dropping the connection may have been
    delivered: unconfirmed, never sent again. The ones waiting for the connection go on a
    new one."""
    settings, received = relay
    received.drop = {"bruno@example.com": "data"}
    names = ("ana", "bruno", "carla", "davi")
    outcomes = _send_together(settings, [_message(f"{name}@example.com") for name in names])
    assert outcomes == [Outcome(True), Outcome(
        False, unconfirmed=True, detail="connection lost after the message was sent: "
        "ConnectionResetError: the server closed the connection"), Outcome(True), Outcome(True)]
    assert sorted(received.recipients()) == [f"{name}@example.com" for name in names]


def test_a_relay_that_is_not_there_is_tried_again_later(tmp_path):
    with smtp_server() as (port, _received):
        pass  # stopped: nobody listens on the port any more
    [outcome] = _send_all(_relay(port, tmp_path), [_message("ana@example.com")])
    assert (outcome.sent, outcome.permanent, outcome.unconfirmed) == (False, False, False)
    assert outcome.detail is not None and outcome.detail.startswith("ConnectionRefusedError")


def _shop_login(server: Any, session: Any, envelope: Any, mechanism: str,
                auth_data: Any) -> AuthResult:
    good = (isinstance(auth_data, LoginPassword) and auth_data.login == b"loja"
            and auth_data.password == b"s3gredo")
    return AuthResult(success=good, handled=False)


@pytest.fixture
def certificate(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> ssl.SSLContext:
    """A server context with a fresh self-signed certificate for "localhost", which the
    client's default context trusts through SSL_CERT_FILE (as a shop's own CA would be)."""
    cert, key = tmp_path / "relay.pem", tmp_path / "relay.key"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
                    "-subj", "/CN=localhost", "-addext", "subjectAltName=DNS:localhost",
                    "-keyout", str(key), "-out", str(cert)], check=True, capture_output=True)
    monkeypatch.setenv("SSL_CERT_FILE", str(cert))
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert, key)
    return context


def test_starttls_then_auth_and_smtps(tmp_path, certificate, monkeypatch):
    with smtp_server(tls_context=certificate, require_starttls=True,
                     authenticator=_shop_login, auth_required=True) as (port, received):
        relay = _relay(port, tmp_path, smtp_host="localhost", smtp_tls="starttls",
                       smtp_username="loja", smtp_password="s3gredo")
        assert _send_all(relay, [_message("ana@example.com")]) == [Outcome(True)]
        assert received.recipients() == ["ana@example.com"]
        plain = _relay(port, tmp_path, smtp_host="localhost", smtp_tls="none")
        [refused] = _send_all(plain, [_message("bruno@example.com")])
        assert (refused.sent, refused.permanent) == (False, True)
        assert refused.detail is not None and refused.detail.startswith("530")
    with smtp_server(ssl_context=certificate) as (port, received):
        relay = _relay(port, tmp_path, smtp_host="localhost", smtp_tls="tls")
        assert _send_all(relay, [_message("carla@example.com")]) == [Outcome(True)]
        assert received.recipients() == ["carla@example.com"]
        monkeypatch.delenv("SSL_CERT_FILE")  # a certificate nobody vouches for
        [untrusted] = _send_all(relay, [_message("dora@example.com")])
        assert not untrusted.sent and received.recipients() == ["carla@example.com"]
        assert "CERTIFICATE_VERIFY_FAILED" in (untrusted.detail or ""), untrusted


@pytest.mark.parametrize("mechanism", ["PLAIN", "LOGIN"])
def test_auth_logs_in_with_what_the_server_offers(tmp_path, mechanism):
    with smtp_server(authenticator=_shop_login, auth_require_tls=False, auth_required=True,
                     auth_exclude_mechanism=[m for m in ("PLAIN", "LOGIN") if m != mechanism]
                     ) as (port, received):
        right = _relay(port, tmp_path, smtp_username="loja", smtp_password="s3gredo")
        wrong = _relay(port, tmp_path, smtp_username="loja", smtp_password="errada")
        assert _send_all(right, [_message("ana@example.com")]) == [Outcome(True)]
        assert _send_all(wrong, [_message("bruno@example.com")]) == [
            Outcome(False, permanent=True, detail="535 5.7.8 Authentication credentials invalid")]
        assert received.recipients() == ["ana@example.com"]


def test_a_campaign_whose_connection_drops_mid_batch_sends_nobody_twice(
        mail_api, client, write_key, engine, mail_settings, smtp):
    _, received = smtp
    received.drop = {"bruno@example.com": "data", "dora@example.com": "rcpt"}
    subscribers(client, write_key, engine, ["ana", "bruno", "carla", "dora", "edu"])
    campaign = new_campaign(mail_api, "Dropped")
    mail_api.post(f"/api/v1/campaigns/{campaign['id']}/send", json={"mode": "now"})
    now = datetime.now(UTC)
    relay = mail_settings.model_copy(update={"smtp_connections": 1})
    tally = deliver_campaign(Sender(settings=relay, engine=engine, transport=Smtp(relay),
                                    now=lambda: now), campaign["id"])
    assert (tally.sent, tally.unconfirmed, tally.retrying, tally.failed) == (4, 1, 0, 0)
    later = now + timedelta(minutes=11)
    tally = deliver_campaign(Sender(settings=relay, engine=engine, transport=Smtp(relay),
                                    now=lambda: later), campaign["id"])
    assert (tally.sent, tally.unconfirmed) == (0, 0)
    assert sorted(received.recipients()) == [f"{name}@example.com" for name in
                                             ("ana", "bruno", "carla", "dora", "edu")]
    with session_scope(engine, writes=False) as session:
        assert dict(session.execute(select(Delivery.email, Delivery.status).where(
            Delivery.campaign_id == campaign["id"])).tuples().all()) == {
            "ana@example.com": "sent", "bruno@example.com": "unconfirmed",
            "carla@example.com": "sent", "dora@example.com": "sent", "edu@example.com": "sent"}
