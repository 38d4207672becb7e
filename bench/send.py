"""Campaign sending throughput: personalised messages rendered and delivered over SMTP, next
to a bare smtplib loop.

What is measured
----------------
1. The store: the demo shop at `--customers` customers (default 120,000; seed `--seed`),
   built once by `clientela demo` and cached (bench/_store.py), copied to a temporary
   folder so the cache stays as it was. There, the first `--messages` (default 100,000)
   live customers with an e-mail address, by id, are given marketing consent (one UPDATE,
   before any clock): they are the audience.

2. A campaign as a shop would send it: a template greeting the customer by name, listing the
   items of their last order and four recommended products (best sellers of their favourite
   category), in the shop's layout, CSS inlined, with open and click tracking; sent to a
   segment of customers with e-mail, frozen when it starts (the freeze is timed apart:
   `freeze_seconds`).

3. Ours: `messaging.delivery.deliver_campaign` with the SMTP transport, the code the worker
   runs: claiming batches, checking consent and the weekly cap, building each customer's
   merge fields from the database, rendering, composing (RFC 8058 headers), tracking links,
   sending over `CLIENTELA_SMTP_CONNECTIONS` (4) reused connections, and recording every
   delivery. The receiving end is a real SMTP server, aiosmtpd's Sink handler offering
   PIPELINING as production relays do (bench/_sink.py), in its own process on 127.0.0.1.
   `messages_per_second` = messages / wall time of the send; every delivery must end
   `sent`.

4. The baseline, in the same run, against the same server: Python's smtplib sending one
   message rendered beforehand by our code, the same number of times over one connection
   (`sendmail` in a loop). It personalises nothing and stores nothing: the bare cost of SMTP
   on this machine. `ratio_to_baseline` = ours / baseline.

The goal (issue 5): at least 1,000 personalised messages per second. One JSON object goes to
stdout, progress to stderr.

    .venv/bin/python bench/send.py [--messages N] [--customers N] [--seed S] [--cache DIR]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import smtplib
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

from _store import CURRENCY, DEFAULT_CACHE, demo_store, log, settings_for
from sqlalchemy import func, select, text

from clientela.config import Settings
from clientela.db import build_engine, session_scope
from clientela.messaging import service
from clientela.messaging.delivery import Sender, deliver_campaign
from clientela.messaging.models import Delivery
from clientela.messaging.transport import Outcome, Smtp
from clientela.segments import service as segments

GOAL = 1000.0
TEMPLATE_HTML = """\
<h1>Olá, {{ customer.first_name | default("cliente") }}!</h1>
{% if last_order %}
<p>Obrigado pelo seu pedido {{ last_order.number }} de {{ last_order.total }}:</p>
<ul>{% for item in last_order.items %}<li>{{ item.quantity }} × {{ item.name }}
  ({{ item.price }})</li>{% endfor %}</ul>
{% endif %}
<h2>Escolhidos para você</h2>
<table><tr>{% for product in recommended %}
  <td><a href="{{ product.url }}"><img src="{{ product.image_url }}" alt=""><br>
  {{ product.name }}<br><b>{{ product.price }}</b></a></td>{% endfor %}</tr></table>
<p><a href="https://loja.example.com/ofertas?utm_source=email">Ver todas as ofertas</a></p>
"""


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def start_sink() -> tuple[subprocess.Popen[bytes], int]:
    port = _free_port()
    server = subprocess.Popen([sys.executable, "-m", "aiosmtpd", "-n", "-c",
                               "_sink.PipeliningSink", "-l", f"127.0.0.1:{port}"],
                              env={**os.environ, "PYTHONPATH": str(Path(__file__).parent)})
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                return server, port
        except OSError:
            time.sleep(0.1)
    server.kill()
    raise SystemExit("the SMTP server did not start")


def audience(settings: Settings, messages: int) -> int:
    """Consent for the first `messages` live customers with an address; how many."""
    engine = build_engine(settings)
    with session_scope(engine) as session:
        session.execute(text("UPDATE customers SET email_marketing = 'unknown'"))
        session.execute(text(
            "UPDATE customers SET email_marketing = 'subscribed' WHERE id IN (SELECT id FROM "
            "customers WHERE merged_into_id IS NULL AND email IS NOT NULL ORDER BY id "
            "LIMIT :n)"), {"n": messages})
        count = session.scalar(text(
            "SELECT count(*) FROM customers WHERE email_marketing = 'subscribed'"))
    engine.dispose()
    return int(count or 0)


def start_campaign(settings: Settings, now: object) -> tuple[int, float]:
    engine = build_engine(settings)
    started = time.perf_counter()
    with session_scope(engine) as session:
        template = service.create_template(session=session, name="Bench", subject="x",
                                           html=TEMPLATE_HTML, text=None, now=now)
        segment = segments.create_segment(session=session, name="Com e-mail", rule={
            "field": "email", "op": "exists", "value": True}, description=None, now=now,
            currency=CURRENCY)
        campaign = service.create_campaign(
            session=session, name="Bench", subject="{{ customer.first_name }}, novidades",
            template_id=template.id, segment_ids=[segment.id], exclude_segment_ids=[],
            tracking=True, throttle_per_second=None, now=now)
        service.send_campaign(session=session, campaign_id=campaign.id, mode="now",
                              send_at=None, now=now, currency=CURRENCY)
        campaign_id = campaign.id
    engine.dispose()
    return campaign_id, time.perf_counter() - started


def ours(settings: Settings, campaign_id: int, now: object) -> tuple[float, int]:
    engine = build_engine(settings)
    sender = Sender(settings=settings, engine=engine, transport=Smtp(settings),
                    now=lambda: now, batch=500)
    started = time.perf_counter()
    tally = deliver_campaign(sender, campaign_id)
    seconds = time.perf_counter() - started
    with session_scope(engine, writes=False) as session:
        sent = session.scalar(select(func.count()).where(Delivery.status == "sent")) or 0
    engine.dispose()
    if tally.sent != sent:
        raise SystemExit(f"tally {tally} but {sent} deliveries sent")
    return seconds, int(sent)


def baseline(port: int, outbox_sample: bytes, count: int) -> float:
    started = time.perf_counter()
    with smtplib.SMTP("127.0.0.1", port) as smtp:
        for _ in range(count):
            smtp.sendmail("news@loja.example", ["cliente@example.com"], outbox_sample)
    return time.perf_counter() - started


def sample_message(settings: Settings) -> bytes:
    """One message of the campaign as our code renders it, for the baseline to repeat."""
    from datetime import UTC, datetime

    from clientela.messaging.context import BestSellers
    from clientela.messaging.delivery import _Claimed, _drafts
    from clientela.messaging.drafts import make

    engine = build_engine(settings)
    with session_scope(engine, writes=False) as session:
        row = session.execute(select(Delivery.id, Delivery.customer_id, Delivery.email,
                                     Delivery.template_id, Delivery.subject,
                                     Delivery.tracking, Delivery.coupon).limit(1)).one()
    now = datetime.now(UTC)
    sender = Sender(settings=settings, engine=engine, transport=Smtp(settings),
                    now=lambda: now)
    [draft] = _drafts(sender, [_Claimed(row[0], row[1], row[2], 1, *row[3:])],
                      BestSellers(as_of=now))
    message = make(settings, now, draft)
    assert not isinstance(message, Outcome), message
    engine.dispose()
    return message.data


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=100_000)
    parser.add_argument("--customers", type=int, default=120_000)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--cache", type=Path, default=DEFAULT_CACHE)
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    store = demo_store(args.cache, args.customers, args.seed)
    folder = Path(tempfile.mkdtemp(prefix="clientela-send-"))
    server, port = start_sink()
    try:
        database = folder / "clientela.db"
        log(f"copying the store to {database}")
        shutil.copy(store.path, database)
        settings = settings_for(f"sqlite:///{database}", folder).model_copy(update={
            "smtp_host": "127.0.0.1", "smtp_port": port, "smtp_tls": "none",
            "public_url": "https://crm.loja.example", "mail_from": "Loja <news@loja.example>",
            "marketing_cap_per_week": 10})
        size = audience(settings, args.messages)
        now = store.anchor
        campaign_id, freeze = start_campaign(settings, now)
        log(f"audience {size}, frozen in {freeze:.1f}s; sending")
        seconds, sent = ours(settings, campaign_id, now)
        rate = sent / seconds
        log(f"ours: {sent} messages in {seconds:.1f}s ({rate:.0f}/s)")
        sample = sample_message(settings)
        base_seconds = baseline(port, sample, sent)
        base_rate = sent / base_seconds
        log(f"baseline: {sent} in {base_seconds:.1f}s ({base_rate:.0f}/s)")
    finally:
        server.terminate()
        server.wait()
        shutil.rmtree(folder, ignore_errors=True)
    ok = sent == size
    print(json.dumps({
        "benchmark": "send", "customers": args.customers, "audience": size, "sent": sent,
        "message_bytes": len(sample), "freeze_seconds": round(freeze, 2),
        "ours": {"seconds": round(seconds, 2), "messages_per_second": round(rate, 1)},
        "baseline": {"what": "smtplib sendmail of one pre-rendered message in a loop, one "
                             "connection, same server", "seconds": round(base_seconds, 2),
                     "messages_per_second": round(base_rate, 1)},
        "ratio_to_baseline": round(rate / base_rate, 3), "goal_messages_per_second": GOAL,
        "goal_met": rate >= GOAL, "store": store.build, "verified": ok}, indent=1))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
