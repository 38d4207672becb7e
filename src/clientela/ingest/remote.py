"""An HTTP worker's side of the ingestion socket: `submit` like the in-process writer's."""

from __future__ import annotations

import asyncio
import itertools
import logging
from contextlib import suppress
from pathlib import Path

from clientela.core.errors import InvalidInput, StorageUnavailable
from clientela.ingest import wire
from clientela.ingest.writer import answer
from clientela.tracking.service import Recorded
from clientela.tracking.store import PendingEvent

log = logging.getLogger(__name__)


def _unavailable() -> StorageUnavailable:
    return StorageUnavailable("the ingestion writer is unavailable; retry later")


class RemoteWriter:
    """Sends each request's calls to the writer process and waits for its answer.

    One connection per worker process, opened on first use and again after it breaks;
    answers are matched to requests by job id. Requests whose connection breaks before
    the answer get a 503: their calls may have been committed, and the client's retry is
    recognised by messageId.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self._ids = itertools.count(1)
        self._pending: dict[int, asyncio.Future[Recorded]] = {}
        self._stream: asyncio.StreamWriter | None = None
        self._reader_task: asyncio.Task[None] | None = None
        self._connecting: asyncio.Lock | None = None

    def start(self) -> None:
        """Nothing to do: the connection opens with the first request."""

    def stop(self) -> None:
        if self._reader_task is not None:
            self._reader_task.cancel()
        if self._stream is not None:
            self._stream.close()
        self._stream, self._reader_task, self._connecting = None, None, None
        self._fail_pending()

    async def submit(self, source_id: int, events: list[PendingEvent]) -> Recorded:
        job_id = next(self._ids)
        frame = wire.encode_request(job_id, source_id, events)
        if len(frame) > wire.MAX_FRAME:  # the batch limits keep real requests far below
            raise InvalidInput(f"body: larger than {wire.MAX_FRAME} bytes once stored",
                               code="payload_too_large")
        stream = await self._connected()
        future: asyncio.Future[Recorded] = asyncio.get_running_loop().create_future()
        self._pending[job_id] = future
        try:
            stream.write(frame)
            await stream.drain()
            return await answer(future)
        except (OSError, ConnectionError):
            self._drop(stream)
            raise _unavailable() from None
        finally:
            self._pending.pop(job_id, None)

    async def _connected(self) -> asyncio.StreamWriter:
        if self._connecting is None:
            self._connecting = asyncio.Lock()
        async with self._connecting:
            if self._stream is None or self._stream.is_closing():
                try:
                    reader, stream = await asyncio.open_unix_connection(str(self.path))
                except OSError as error:
                    log.warning("cannot reach the ingestion writer at %s: %s", self.path, error)
                    raise _unavailable() from None
                self._stream = stream
                self._reader_task = asyncio.create_task(self._read_replies(reader, stream))
            return self._stream

    async def _read_replies(self, reader: asyncio.StreamReader,
                            stream: asyncio.StreamWriter) -> None:
        try:
            while True:
                (length,) = wire.LENGTH.unpack(await reader.readexactly(wire.LENGTH.size))
                job_id, outcome = wire.decode_reply(await reader.readexactly(length))
                future = self._pending.get(job_id)
                if future is None or future.done():
                    continue
                if isinstance(outcome, BaseException):
                    future.set_exception(outcome)
                else:
                    future.set_result(outcome)
        except (asyncio.IncompleteReadError, OSError, ConnectionError) as error:
            log.warning("lost the ingestion writer connection: %s", error)
        finally:
            self._drop(stream)

    def _drop(self, stream: asyncio.StreamWriter) -> None:
        """Forget a broken connection and fail the requests still waiting on it."""
        if self._stream is stream:
            self._stream = None
            with suppress(Exception):
                stream.close()
            self._fail_pending()

    def _fail_pending(self) -> None:
        for future in self._pending.values():
            if not future.done():
                future.set_exception(_unavailable())
        self._pending.clear()
