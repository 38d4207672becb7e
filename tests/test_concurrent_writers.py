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
        threads = [threading.Thread(target=send, args=(client, round_))
                   for round_ in range(6) for client in apps]  # each round sent twice
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(30)
    assert answers == [200] * 12
    engine = build_engine(settings)
    with session_scope(engine, writes=False) as session:
        assert session.scalar(select(func.count()).select_from(Event)) == 60
        live = select(func.count()).select_from(Customer).where(Customer.merged_into_id.is_(None))
        assert session.scalar(live) == 10
        assert session.scalar(select(func.count()).select_from(Identity)) == 30
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
