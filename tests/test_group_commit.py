"""How the ingestion writer forms its groups: a group waits, briefly, for as many events as
the last one held, since the requesters answered by that commit are about to send again."""

from __future__ import annotations

import threading
import time

import pytest
from sqlalchemy import select

from clientela.core.clock import utcnow
from clientela.core.money import Exchange
from clientela.db import session_scope
from clientela.ingest import writer as writing
from clientela.ingest.writer import IngestWriter, Job
from clientela.tracking.models import Event
from clientela.tracking.schemas import parse_event
from clientela.tracking.service import Recorded
from clientela.tracking.store import pending


def _job(tag: str, count: int, answers: dict[str, Recorded | None]) -> Job:
    events = [pending(parse_event({"type": "track", "anonymousId": tag, "event": "E",
                                   "messageId": f"{tag}-{i}"}, kind=None,
                                  received_at=utcnow()))
              for i in range(count)]

    def settle(result: Recorded | None, error: BaseException | None) -> None:
        assert error is None
        answers[tag] = result

    return Job(source_id=1, count=count, settle=settle, events=events)


@pytest.fixture
def writer(engine, write_key, monkeypatch) -> IngestWriter:
    # Waits are bounded by half the last write (set by each test), not by MAX_GATHER, so
    # that a slow machine cannot make the timings wrong.
    monkeypatch.setattr(writing, "MAX_GATHER", 5.0)
    # Not started: the test plays the writer thread's part, step by step.
    return IngestWriter(engine=engine, default_region="BR", exchange=Exchange(),
                        queue_limit=1000, group_events=100)


def _stored(engine) -> list[str]:
    with session_scope(engine, writes=False) as session:
        return list(session.scalars(select(Event.message_id).order_by(Event.id)))


def test_a_group_waits_for_as_many_events_as_the_last_one_held(writer, engine):
    answers: dict[str, Recorded | None] = {}
    writer.enqueue(_job("a", 3, answers))
    writer._gather()  # nothing written yet: nothing to wait for
    first = writer._take_group()
    writer._write_group(first)
    writer._last_write = 2.0  # may wait up to 1 s

    writer.enqueue(_job("b", 1, answers))
    later = threading.Timer(0.01, lambda: writer.enqueue(_job("c", 2, answers)))
    later.start()
    started = time.monotonic()
    writer._gather()  # returns once c's 2 events make the 3 the last group held
    waited = time.monotonic() - started
    later.join()
    group = writer._take_group()
    writer._write_group(group)

    assert [job.count for job in first] == [3]
    assert [job.count for job in group] == [1, 2]
    assert 0.005 <= waited < 0.9
    assert answers == {"a": Recorded(stored=3, duplicates=0),
                       "b": Recorded(stored=1, duplicates=0),
                       "c": Recorded(stored=2, duplicates=0)}
    assert _stored(engine) == ["a-0", "a-1", "a-2", "b-0", "c-0", "c-1"]


def test_a_group_that_does_not_fill_in_time_lowers_what_the_next_one_waits_for(writer):
    answers: dict[str, Recorded | None] = {}
    writer.enqueue(_job("a", 3, answers))
    writer._write_group(writer._take_group())
    writer._last_write = 0.02  # waits half of that, 10 ms, for 2 more events in vain

    writer.enqueue(_job("b", 1, answers))
    started = time.monotonic()
    writer._gather()
    waited = time.monotonic() - started
    group = writer._take_group()
    writer._write_group(group)
    assert [job.count for job in group] == [1]
    assert 0.01 <= waited < 0.5

    writer._last_write = 2.0
    writer.enqueue(_job("c", 1, answers))  # 1 expected now, 1 queued: no wait at all
    started = time.monotonic()
    writer._gather()
    assert time.monotonic() - started < 0.5
    assert [job.count for job in writer._take_group()] == [1]


def test_a_stopping_writer_does_not_wait_for_more(writer):
    answers: dict[str, Recorded | None] = {}
    writer.enqueue(_job("a", 3, answers))
    writer._write_group(writer._take_group())
    writer._last_write = 2.0
    writer.enqueue(_job("b", 1, answers))
    writer.stop()  # not started: only marks it stopping
    started = time.monotonic()
    writer._gather()
    assert time.monotonic() - started < 0.5
