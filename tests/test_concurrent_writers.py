"""Two server processes' writers on one database: every identity and message stored once."""

from __future__ import annotations

import threading

from fastapi.testclient import TestClient
from sqlalchemy import func, select

from clientela.api.app import create_app
from clientela.customers.models import Customer, Identity
from clientela.db import build_engine, session_scope
from clientela.tracking.models import Event
from tests.helpers import batch


def _together(calls: list) -> None:
    """Run the calls in threads at once and wait for all of them."""
    threads = [threading.Thread(target=call) for call in calls]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)


def _counts(settings) -> tuple[int, int, int]:
    """(events, live customers, identities) in the database."""
    engine = build_engine(settings)
    with session_scope(engine, writes=False) as session:
        live = select(func.count()).select_from(Customer).where(Customer.merged_into_id.is_(None))
        counts = (session.scalar(select(func.count()).select_from(Event)),
                  session.scalar(live),
                  session.scalar(select(func.count()).select_from(Identity)))
    engine.dispose()
    return counts  # type: ignore[return-value]


def _calls(round_: int) -> list[dict]:
    # Both writers see the same ten people for the first time, in the same moment.
    return [{"type": "identify", "userId": f"user-{n}", "anonymousId": f"anon-{n}",
             "messageId": f"r{round_}-{n}", "traits": {"email": f"p{n}@example.com"}}
            for n in range(10)]


def test_parallel_writers_store_each_person_and_message_once(settings, write_key):
    apps = [TestClient(create_app(settings, build_engine(settings))) for _ in range(2)]
    answers: list[int] = []

    def send(client: TestClient, round_: int) -> None:
        answers.append(batch(client, write_key, _calls(round_)).status_code)

    with apps[0], apps[1]:
        _together([lambda c=client, r=round_: send(c, r)
                   for round_ in range(6) for client in apps])  # each round sent twice
    assert answers == [200] * 12
    assert _counts(settings) == (60, 10, 30)
    engine = build_engine(settings)
    with session_scope(engine, writes=False) as session:
        owners = session.execute(select(Identity.value, Identity.customer_id)
                                 .where(Identity.kind == "user_id")).all()
        by_user = dict(owners)
        for kind in ("anonymous_id", "email"):
            rows = session.execute(select(Identity.value, Identity.customer_id)
                                   .where(Identity.kind == kind)).all()
            for value, customer_id in rows:
                number = value.removeprefix("anon-").removeprefix("p").split("@")[0]
                assert by_user[f"user-{number}"] == customer_id
    engine.dispose()


def test_two_writers_on_overlapping_visitors_lose_nothing(settings, write_key):
    """Four clients over two writers, the same visitors in neighbouring batches: writers
    race to create the same people; every call is stored once and every identity has one
    live owner."""
    calls = [{"type": kind, "anonymousId": f"anon-{n % 40}", "messageId": f"m{n}",
              **({"userId": f"user-{n % 40}", "traits": {"email": f"v{n % 40}@example.com"}}
                 if kind == "identify" else {"event": "Product Viewed"})}
             for n, kind in enumerate(["track", "track", "identify"] * 400)]
    batches = [calls[start:start + 25] for start in range(0, len(calls), 25)]
    apps = [TestClient(create_app(settings, build_engine(settings))) for _ in range(2)]
    problems: list[str] = []

    def client_loop(number: int) -> None:
        for body in batches[number::4]:
            answer = batch(apps[number % 2], write_key, body)
            if answer.status_code != 200 or answer.json()["rejected"]:
                problems.append(answer.text)

    with apps[0], apps[1]:
        _together([lambda n=n: client_loop(n) for n in range(4)])
    assert problems == []
    assert _counts(settings) == (1200, 40, 120)
    engine = build_engine(settings)
    with session_scope(engine, writes=False) as session:
        merged_owners = session.scalar(select(func.count()).select_from(Identity).join(
            Customer, Customer.id == Identity.customer_id).where(
            Customer.merged_into_id.is_not(None)))
        assert merged_owners == 0
    engine.dispose()
