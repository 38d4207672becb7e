"""Durable before acknowledged: 503 when storage fails, 429 when too much is waiting."""

from __future__ import annotations

import sqlite3
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

from fastapi.testclient import TestClient
from sqlalchemy import create_engine, func, select, text

from clientela.api.app import create_app
from clientela.db import build_engine, session_scope
from clientela.team import service as team
from clientela.tracking.models import Event
from tests.helpers import batch


@contextmanager
def _database_locked(url: str) -> Iterator[None]:
    """Another connection holds the write lock on the events until the block ends."""
    if url.startswith("sqlite"):
        connection = sqlite3.connect(url.removeprefix("sqlite:///"), isolation_level=None)
        connection.execute("BEGIN IMMEDIATE")
        try:
            yield
        finally:
            connection.execute("ROLLBACK")
            connection.close()
        return
    engine = create_engine(url)
    with engine.connect() as connection:
        connection.execute(text("LOCK TABLE events IN ACCESS EXCLUSIVE MODE"))
        try:
            yield
        finally:
            connection.rollback()
    engine.dispose()


def _client(settings, **overrides) -> tuple[TestClient, str]:
    tuned = settings.model_copy(update=overrides)
    engine = build_engine(tuned)
    with session_scope(engine) as session:
        key = team.create_key(session=session, kind="write").key
    return TestClient(create_app(tuned, engine)), key


def _stored(settings) -> int:
    engine = build_engine(settings)
    with session_scope(engine, writes=False) as session:
        count = int(session.scalar(select(func.count()).select_from(Event)))
    engine.dispose()
    return count


def _wait_for(writer, backlog: tuple[int, int]) -> None:
    """Until the writer's (queued, being written) events are `backlog`, at most 5 s."""
    deadline = time.monotonic() + 5
    while writer.backlog() != backlog:
        assert time.monotonic() < deadline, writer.backlog()
        time.sleep(0.01)


def _calls(tag: str, n: int = 5) -> list[dict]:
    return [{"type": "track", "anonymousId": tag, "event": "E", "messageId": f"{tag}-{i}"}
            for i in range(n)]


def test_storage_failure_is_503_with_retry_after_and_nothing_is_lost(settings, database_url):
    client, key = _client(settings, db_busy_timeout_ms=300)
    with client:
        with _database_locked(database_url):
            failed = batch(client, key, _calls("a"))
        assert failed.status_code == 503
        assert failed.headers["Retry-After"] == "5"
        assert failed.json() == {"code": "storage_unavailable",
                                 "message": "the database is unavailable; retry later"}
        assert _stored(settings) == 0
        retried = batch(client, key, _calls("a"))
        assert retried.status_code == 200
    assert _stored(settings) == 5


def test_overload_is_429_with_retry_after(settings, database_url):
    client, key = _client(settings, db_busy_timeout_ms=5000, ingest_queue_limit=5)
    writer = client.app.state.ingest_writer
    answers: dict[str, int] = {}

    def post(tag: str) -> None:
        answers[tag] = batch(client, key, _calls(tag)).status_code

    with client:
        with _database_locked(database_url):
            writing = threading.Thread(target=post, args=("first",))
            writing.start()
            _wait_for(writer, (0, 5))  # the writer holds the first batch, waiting for the lock
            queued = threading.Thread(target=post, args=("second",))
            queued.start()
            _wait_for(writer, (5, 5))
            refused = batch(client, key, _calls("third"))
            assert refused.status_code == 429
            assert refused.headers["Retry-After"] == "5"
            assert refused.json()["code"] == "overloaded"
        writing.join(10)
        queued.join(10)
    assert answers == {"first": 200, "second": 200}
    assert _stored(settings) == 10
