"""A small demo shop's traffic, sent through the ingestion service like real calls."""

from __future__ import annotations

import random
import unicodedata
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from rich.console import Console
from rich.progress import Progress
from sqlalchemy import Engine, select

from clientela.config import Settings
from clientela.core.clock import utcnow
from clientela.db import session_scope
from clientela.team import service as team
from clientela.team.models import ApiKey, User
from clientela.tracking.service import record_events, validated_event
from clientela.tracking.store import PendingEvent

DEMO_USER = "owner@clientela.demo"
DEMO_PASSWORD = "clientela-demo"
FIRST = ["Ana", "Bruno", "Carla", "Diego", "Eduarda", "Felipe", "Gabriela", "Henrique", "Isabela",
         "João", "Larissa", "Marcos", "Natália", "Otávio", "Paula", "Rafael", "Sofia", "Thiago"]
LAST = ["Silva", "Santos", "Oliveira", "Souza", "Lima", "Pereira", "Costa", "Almeida",
        "Ferreira", "Rodrigues", "Gomes", "Martins", "Araújo", "Barbosa"]
CITIES = [("São Paulo", "SP"), ("Rio de Janeiro", "RJ"), ("Belo Horizonte", "MG"),
          ("Curitiba", "PR"), ("Porto Alegre", "RS"), ("Salvador", "BA"), ("Recife", "PE")]
PRODUCTS = [("TEN-001", "Tênis Corrida Leve", "Calçados", 299.90),
            ("CAM-014", "Camiseta Algodão", "Roupas", 59.90),
            ("MOC-203", "Mochila Urbana", "Acessórios", 189.00),
            ("JAQ-077", "Jaqueta Corta-vento", "Roupas", 249.50),
            ("GAR-310", "Garrafa Térmica", "Acessórios", 89.90),
            ("SAN-045", "Sandália Conforto", "Calçados", 119.90)]
PAGES = ["/", "/categoria/calcados", "/categoria/roupas", "/ofertas", "/sobre"]
BATCH = 500


@dataclass(slots=True)
class _Visitor:
    number: int
    anonymous_id: str
    user_id: str | None
    start: datetime


def _calls(visitor: _Visitor, rng: random.Random) -> list[dict[str, Any]]:
    """One visitor's journey: pages, products, perhaps sign-up, cart and orders."""
    calls: list[dict[str, Any]] = []
    moment = visitor.start
    ids = {"anonymousId": visitor.anonymous_id}

    def add(kind: str, **fields: Any) -> None:
        nonlocal moment
        moment += timedelta(seconds=rng.randint(5, 600))
        calls.append({"type": kind, **ids, "timestamp": moment.isoformat(),
                      "messageId": f"demo-{visitor.number}-{len(calls)}", **fields})

    for _ in range(rng.randint(1, 6)):
        add("page", name="Page", properties={"path": rng.choice(PAGES)})
    viewed = rng.sample(PRODUCTS, rng.randint(1, 3))
    for sku, name, category, price in viewed:
        add("track", event="Product Viewed", properties={
            "product_id": sku, "name": name, "category": category, "price": price})
    if visitor.user_id is None:
        return calls
    first, last = rng.choice(FIRST), rng.choice(LAST)
    city, state = rng.choice(CITIES)
    ids["userId"] = visitor.user_id
    add("identify", traits={
        "email": _ascii(f"{first}.{last}{visitor.number}@example.com".lower()),
        "firstName": first, "lastName": last, "phone": f"+55 11 9{rng.randint(1000, 9999)}-"
        f"{rng.randint(1000, 9999)}", "address": {"city": city, "state": state, "country": "BR"},
        "gender": rng.choice(["female", "male"]),
        "birthday": f"{rng.randint(1960, 2004)}-{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d}"})
    for order in range(rng.choice([0, 0, 1, 1, 1, 2, 3])):
        sku, name, category, price = rng.choice(viewed)
        quantity = rng.randint(1, 2)
        add("track", event="Product Added", properties={"product_id": sku, "price": price,
                                                       "quantity": quantity})
        add("track", event="Order Completed", properties={
            "order_id": f"demo-{visitor.number}-{order}", "currency": "BRL",
            "total": round(price * quantity + 19.90, 2),
            "products": [{"product_id": sku, "name": name, "category": category,
                          "price": price, "quantity": quantity}]})
    return calls


def _ascii(text: str) -> str:
    """`text` without accents (João -> joao), as shops' e-mail addresses are."""
    return unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()


def _source_id(engine: Engine) -> int:
    with session_scope(engine) as session:
        existing = session.scalar(select(ApiKey.id).where(ApiKey.name == "demo",
                                                          ApiKey.kind == "write"))
        return existing or team.create_key(session=session, kind="write", name="demo").id


def _ensure_owner(engine: Engine) -> None:
    with session_scope(engine) as session:
        if session.scalar(select(User.id).where(User.email == DEMO_USER)) is None:
            team.create_user(session=session, email=DEMO_USER, password=DEMO_PASSWORD,
                             role="owner")


def _events(visitors: int, seed: int, now: datetime, currency: str) -> list[PendingEvent]:
    rng = random.Random(seed)
    events: list[PendingEvent] = []
    for number in range(visitors):
        visitor = _Visitor(number=number, anonymous_id=f"demo-anon-{seed}-{number}",
                           user_id=f"demo-user-{number}" if rng.random() < 0.45 else None,
                           start=now - timedelta(days=rng.uniform(0, 90)))
        events += [validated_event(call, kind=None, received_at=now, currency=currency)
                   for call in _calls(visitor, rng)]
    return events


def load_demo(*, engine: Engine, settings: Settings, visitors: int, seed: int) -> None:
    """Send the demo's calls through `record_events` in batches, then print how to sign in."""
    console = Console()
    source_id = _source_id(engine)
    _ensure_owner(engine)
    events = _events(visitors, seed, utcnow().replace(microsecond=0), settings.store_currency)
    stored = duplicates = 0
    with Progress(console=console, transient=True) as progress:
        task = progress.add_task("loading demo events", total=len(events))
        for start in range(0, len(events), BATCH):
            chunk = events[start:start + BATCH]
            with session_scope(engine) as session:
                recorded = record_events(session=session, source_id=source_id, events=chunk,
                                         default_region=settings.default_country,
                                         exchange=settings.exchange)
            stored, duplicates = stored + recorded.stored, duplicates + recorded.duplicates
            progress.advance(task, len(chunk))
    console.print(f"demo: {stored} new events from {visitors} visitors "
                  f"({duplicates} already loaded)")
    console.print(f"Sign in at http://{settings.host}:{settings.port} as "
                  f"[bold]{DEMO_USER}[/bold] with password [bold]{DEMO_PASSWORD}[/bold]",
                  soft_wrap=True)
