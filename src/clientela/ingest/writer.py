"""Group commit for ingestion: requests wait while one thread writes many of them at once.

A request is acknowledged only after the transaction holding its events commits. While
one group is being written, the next requests queue up and go together in the next
commit, so the cost of a durable commit is shared by everyone waiting.

The writer does not care where a job comes from: `submit` queues calls from the same
process; the writer process (`ingest.process`) queues jobs that arrived over its socket.
"""

from __future__ import annotations

import asyncio
import logging
import random
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

from sqlalchemy import Engine
from sqlalchemy.exc import IntegrityError, InterfaceError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout

from clientela.commerce.catalog import CatalogMemory
from clientela.core.errors import Overloaded, StorageUnavailable
from clientela.core.money import Exchange
from clientela.customers.merging import CustomerMoved
from clientela.db import WriterLock, session_scope
from clientela.tracking.service import Recorded, record_batches
from clientela.tracking.store import PendingEvent

log = logging.getLogger(__name__)
_STORAGE_ERRORS = (IntegrityError, OperationalError, InterfaceError, PoolTimeout,
                   CustomerMoved)
# PostgreSQL's deadlock_detected and serialization_failure: transient, worth a retry.
_RETRY_SQLSTATES = frozenset({"40P01", "40001"})
_RACE_RETRIES = 6
ANSWER_WITHIN = 60.0
STOP_WITHIN = 30.0  # to finish the queue when stopping

Settle = Callable[[Recorded | None, BaseException | None], None]


@dataclass(slots=True)
class Job:
    """Calls from one request; `settle` hears the outcome, from the writer thread."""

    source_id: int
    count: int
    settle: Settle
    events: list[PendingEvent]


async def answer(future: asyncio.Future[Recorded]) -> Recorded:
    """The outcome of a queued job, or a 503 once waiting for it takes too long."""
    try:
        return await asyncio.wait_for(asyncio.shield(future), ANSWER_WITHIN)
    except TimeoutError:
        # Still queued or being written: it may yet be stored, so the client retries
        # and the messageId keeps the retry from storing it twice.
        raise StorageUnavailable("the write is taking too long; retry later") from None


class IngestWriter:
    """One writer thread per database writer; `submit`/`enqueue` hand it calls to store."""

    def __init__(self, *, engine: Engine, default_region: str, exchange: Exchange,
                 queue_limit: int, group_events: int) -> None:
        self.engine = engine
        self.default_region = default_region
        self.exchange = exchange
        self.catalog = CatalogMemory()
        self.queue_limit = queue_limit
        self.group_events = group_events
        self._jobs: deque[Job] = deque()
        self._queued_events = 0
        self._writing_events = 0
        self._wake = threading.Condition()
        self._lock = WriterLock(engine)
        self._stopping = False
        self._thread: threading.Thread | None = None

    def backlog(self) -> tuple[int, int]:
        """(events queued, events being written) at this moment."""
        with self._wake:
            return self._queued_events, self._writing_events

    def start(self) -> None:
        """Start the writer thread (again, after `stop`)."""
        if self._thread is not None and self._thread.is_alive():
            return
        self._stopping = False
        self._thread = threading.Thread(target=self._run, name="ingest-writer", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Finish what is queued, then end the thread."""
        with self._wake:
            self._stopping = True
            self._wake.notify()
        if self._thread is not None:
            self._thread.join(timeout=STOP_WITHIN)
        self._lock.close()

    def enqueue(self, job: Job) -> None:
        """Queue a job (from any thread); Overloaded when too much is already waiting."""
        with self._wake:
            if self._stopping:
                raise StorageUnavailable("the server is shutting down; retry")
            if self._queued_events + job.count > self.queue_limit and self._jobs:
                raise Overloaded(f"ingestion queue is full ({self._queued_events} events "
                                 "waiting); retry later")
            self._jobs.append(job)
            self._queued_events += job.count
            self._wake.notify()

    async def submit(self, source_id: int, events: list[PendingEvent]) -> Recorded:
        """Queue calls of this process and wait for their commit."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[Recorded] = loop.create_future()

        def settle(result: Recorded | None, error: BaseException | None) -> None:
            loop.call_soon_threadsafe(_settle, future, result, error)

        self.enqueue(Job(source_id, len(events), settle, events))
        return await answer(future)

    def _wait_for_work(self) -> bool:
        """Block until something is queued; False once stopping with nothing left."""
        with self._wake:
            while not self._jobs and not self._stopping:
                self._wake.wait()
            return bool(self._jobs)

    def _take_group(self) -> list[Job]:
        """As many queued jobs as fit in one group (at least one)."""
        with self._wake:
            group: list[Job] = []
            size = 0
            while self._jobs and (not group or size + self._jobs[0].count
                                  <= self.group_events):
                job = self._jobs.popleft()
                group.append(job)
                size += job.count
            self._queued_events -= size
            self._writing_events = size
            return group

    def _run(self) -> None:
        while self._wait_for_work():
            group: list[Job] = []
            try:
                # The group is taken once the write slot is ours: what arrived while
                # another process held it goes into this commit too.
                with self._lock:
                    group = self._take_group()
                    self._write_group(group)
            except Exception:
                # The thread must outlive anything a group does to it (a lock file that
                # cannot be opened, a broken reply channel): fail the group and go on.
                log.exception("ingestion writer: a group failed outside its transaction")
                _fail(group, StorageUnavailable("could not store events; retry later"))
            with self._wake:
                self._writing_events = 0

    def _write_group(self, group: list[Job]) -> None:
        if not group:
            return
        for attempt in range(_RACE_RETRIES):
            try:
                results = self._commit(group)
            except _STORAGE_ERRORS as error:
                if _lost_a_race(error):
                    # Another process stored the same identity or message first, or the
                    # database broke a deadlock: try again, now seeing its rows.
                    log.warning("ingestion write lost a race (attempt %d): %s", attempt + 1,
                                _describe(error))
                    if attempt == _RACE_RETRIES - 1:
                        break
                    time.sleep(random.uniform(0.005, 0.05) * (attempt + 1))  # desynchronise
                    continue
                log.warning("ingestion storage failure: %s", error)
                _fail(group, StorageUnavailable("the database is unavailable; retry later"))
                return
            except Exception as error:
                log.exception("ingestion group failed")
                if len(group) == 1:
                    _fail(group, error)
                    return
                break
            for job, result in zip(group, results, strict=True):
                _settle_job(job, result, None)
            return
        for job in group:  # one at a time, so one bad request cannot sink the others
            if len(group) > 1:
                self._write_group([job])
            else:
                _fail([job], StorageUnavailable("could not store events; retry later"))

    def _commit(self, group: list[Job]) -> list[Recorded]:
        try:
            with session_scope(self.engine) as session:
                results = record_batches(
                    session=session, batches=[(job.source_id, job.events) for job in group],
                    default_region=self.default_region, exchange=self.exchange,
                    catalog=self.catalog)
        except BaseException:
            self.catalog.forget()
            raise
        self.catalog.keep()
        return results


def _fail(group: list[Job], error: BaseException) -> None:
    for job in group:
        _settle_job(job, None, error)


def _settle_job(job: Job, result: Recorded | None, error: BaseException | None) -> None:
    """Tell a job's requester; one that cannot be told must not keep the others waiting."""
    try:
        job.settle(result, error)
    except Exception:
        log.exception("could not answer an ingestion job")


def _describe(error: Exception) -> str:
    original = getattr(error, "orig", None)
    return f"{type(original or error).__name__}: {str(original or error).splitlines()[0][:200]}"


def _lost_a_race(error: Exception) -> bool:
    if isinstance(error, IntegrityError | CustomerMoved):
        return True
    return getattr(getattr(error, "orig", None), "sqlstate", None) in _RETRY_SQLSTATES


def _settle(future: asyncio.Future[Recorded], result: Recorded | None,
            error: BaseException | None) -> None:
    if future.done():
        return
    if error is not None:
        future.set_exception(error)
    else:
        assert result is not None
        future.set_result(result)
