"""A real SMTP server (aiosmtpd) for tests: it keeps every message it receives, parsed."""

from __future__ import annotations

import socket
import ssl
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from email import message_from_bytes, policy
from email.message import EmailMessage
from typing import Any

from aiosmtpd.controller import Controller
from fastapi.testclient import TestClient
from sqlalchemy import select

from clientela.customers import service as customers
from clientela.customers.models import Identity
from clientela.db import session_scope
from tests.helpers import basic


@dataclass
class Received:
    """What the server took: (envelope recipients, parsed message), in arrival order."""

    messages: list[tuple[list[str], EmailMessage]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)
    delay: float = 0.0  # seconds each message takes, to catch a sender mid-send
    refuse: dict[str, str] = field(default_factory=dict)  # recipient -> SMTP reply
    # recipient -> SMTP reply to the end of its message's data (the message not taken)
    refuse_data: dict[str, str] = field(default_factory=dict)
    # recipient -> where the server drops the connection, once: at its "rcpt" (nothing
    # taken) or after its "data" (the message taken, no answer sent)
    drop: dict[str, str] = field(default_factory=dict)
    pipelining: bool = False  # offer PIPELINING (RFC 2920) in the EHLO reply

    def recipients(self) -> list[str]:
        with self.lock:
            return [to for tos, _ in self.messages for to in tos]

    def to(self, address: str) -> list[EmailMessage]:
        with self.lock:
            return [message for tos, message in self.messages if address in tos]


class _Handler:
    def __init__(self, received: Received) -> None:
        self.received = received

    async def handle_EHLO(self, server: Any, session: Any, envelope: Any, hostname: str,
                          responses: list[str]) -> list[str]:
        session.host_name = hostname
        if self.received.pipelining:
            responses.insert(-1, "250-PIPELINING")
        return responses

    async def handle_RCPT(self, server: Any, session: Any, envelope: Any, address: str,
                          options: Any) -> str:
        if self.received.drop.get(address) == "rcpt":
            del self.received.drop[address]
            server.transport.close()
            return "250 OK"  # never arrives
        if address in self.received.refuse:
            return self.received.refuse[address]
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        if self.received.delay:
            time.sleep(self.received.delay)
        refusal = next((self.received.refuse_data[to] for to in envelope.rcpt_tos
                        if to in self.received.refuse_data), None)
        if refusal is not None:
            return refusal
        message = message_from_bytes(envelope.content, policy=policy.default)
        assert isinstance(message, EmailMessage)
        with self.received.lock:
            self.received.messages.append((list(envelope.rcpt_tos), message))
        if any(self.received.drop.get(to) == "data" for to in envelope.rcpt_tos):
            for to in envelope.rcpt_tos:
                self.received.drop.pop(to, None)
            server.transport.close()
        return "250 Message accepted"


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@contextmanager
def smtp_server(ssl_context: ssl.SSLContext | None = None, **options: Any
                ) -> Iterator[tuple[int, Received]]:
    """(port, what it received) of an SMTP server on 127.0.0.1 for the block's duration;
    `ssl_context`: TLS from the first byte (SMTPS); `options` go to aiosmtpd's SMTP (an
    `authenticator`, a `tls_context` for STARTTLS, ...)."""
    received = Received()
    controller = Controller(_Handler(received), hostname="127.0.0.1", port=_free_port(),
                            ssl_context=ssl_context, server_kwargs=options)
    controller.start()
    try:
        yield controller.port, received
    finally:
        controller.stop()


def body(message: EmailMessage, subtype: str) -> str:
    """The text/<subtype> part of a message, decoded."""
    part = message.get_body(preferencelist=(subtype,))
    assert part is not None, f"no text/{subtype} part"
    return str(part.get_content())


TEMPLATE = {
    "name": "Novidades",
    "subject": "ignored: the campaign's subject is used",
    "html": "<p>Olá {{ customer.first_name | default('cliente') }}!</p>"
            "<p><a href=\"https://loja.example/ofertas\">Ver ofertas</a></p>",
    "text": "Olá {{ customer.first_name | default('cliente') }}! Ofertas: "
            "https://loja.example/ofertas",
}


def subscribers(client: TestClient, write_key: str, engine: Any, names: list[str]
            ) -> dict[str, int]:
    """Customers named `names` (e-mail <name>@example.com), subscribed to marketing."""
    calls = [{"type": "identify", "userId": name, "messageId": f"id-{name}",
              "traits": {"email": f"{name}@example.com", "firstName": name.title()}}
             for name in names]
    answer = client.post("/v1/batch", json={"batch": calls}, headers=basic(write_key))
    assert answer.status_code == 200 and answer.json()["rejected"] == [], answer.text
    with session_scope(engine) as session:
        ids = dict(session.execute(select(Identity.value, Identity.customer_id).where(
            Identity.kind == "user_id")).tuples().all())
        for name in names:
            customers.set_email_consent(session=session, customer_id=ids[name],
                                        state="subscribed", source="test")
    return {name: ids[name] for name in names}


def new_campaign(api: TestClient, name: str, exclude: list[int] | None = None,
              **extra: Any) -> dict[str, Any]:
    template = api.post("/api/v1/templates", json={**TEMPLATE, "name": f"T {name}"})
    assert template.status_code == 201, template.text
    everyone = api.post("/api/v1/segments", json={
        "name": f"With e-mail {name}", "rule": {"field": "email", "op": "exists", "value": True}})
    assert everyone.status_code == 201, everyone.text
    campaign = api.post("/api/v1/campaigns", json={
        "name": name, "subject": "{{ customer.first_name | default('Olá') }}, ofertas da semana",
        "template_id": template.json()["id"], "segment_ids": [everyone.json()["id"]],
        "exclude_segment_ids": exclude or [], **extra})
    assert campaign.status_code == 201, campaign.text
    return dict(campaign.json())


def campaign_report(api: TestClient, campaign_id: int) -> dict[str, Any]:
    return dict(api.get(f"/api/v1/campaigns/{campaign_id}/report").json())
