"""The ingestion writer process: one writer for every HTTP worker of a SQLite database.

SQLite has one write slot. With a writer thread in each HTTP worker, each commit holds only
that worker's requests and the writer shares its process's interpreter with the HTTP work.
Here every worker sends its validated calls over a Unix socket to this one process, whose
writer thread commits everything waiting at once; the workers parse the next requests
meanwhile, on the other core. Each connection's thread decodes its requests as they arrive,
while the writer thread is inside SQLite, so the writer only writes.

`WriterProcess` (used by `clientela serve`) starts, watches and stops it.
"""

from __future__ import annotations

import logging
import os
import signal
import socket
import struct
import tempfile
import threading
from contextlib import suppress
from functools import partial
from pathlib import Path
from types import FrameType

from clientela.config import Settings
from clientela.core.children import Supervised, parent_alive
from clientela.core.errors import ClientelaError
from clientela.db import WalCheckpointer, build_engine
from clientela.ingest import wire
from clientela.ingest.writer import STOP_WITHIN, IngestWriter, Job
from clientela.tracking.service import Recorded

log = logging.getLogger(__name__)
_STARTUP_SECONDS = 30.0
_STOP_SECONDS = STOP_WITHIN + 10.0
_ACCEPT_POLL = 0.2
_SEND_SECONDS = 5.0
_PRIVATE_PREFIX = "clientela-ingest-"


def socket_path(settings: Settings) -> Path:
    """Where the writer listens: `ingest.sock` in the data folder, or in a private
    temporary folder when that path is too long for a Unix socket (108 bytes)."""
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    path = (settings.data_dir / "ingest.sock").resolve()
    if len(os.fsencode(path)) < 100:
        return path
    return Path(tempfile.mkdtemp(prefix=_PRIVATE_PREFIX)) / "ingest.sock"


def run(settings: Settings, path: Path, parent: int | None = None) -> None:
    """Serve the socket until SIGTERM or SIGINT, then finish what is queued."""
    engine = build_engine(settings)
    writer = IngestWriter(engine=engine, default_region=settings.default_country,
                          exchange=settings.exchange,
                          queue_limit=settings.ingest_queue_limit,
                          group_events=settings.ingest_group_events)
    checkpointer = WalCheckpointer(engine)
    stopping = threading.Event()

    def stop(_signal: int, _frame: FrameType | None) -> None:
        stopping.set()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    listener = _listen(path)
    identity = path.stat().st_ino
    writer.start()
    checkpointer.start()
    try:
        while not stopping.is_set() and parent_alive(parent):  # `serve` is still there
            try:
                connection, _address = listener.accept()
            except TimeoutError:
                continue
            threading.Thread(target=_serve_connection, args=(connection, writer),
                             name="ingest-connection", daemon=True).start()
    finally:
        listener.close()
        with suppress(FileNotFoundError):
            if path.stat().st_ino == identity:  # not a newer writer's socket
                path.unlink()
        writer.stop()  # answers every job already queued
        checkpointer.stop()
        engine.dispose()


def _listen(path: Path) -> socket.socket:
    if _accepts(path):
        raise RuntimeError(f"another ingestion writer is listening on {path}: is another "
                           "`clientela serve` using this data folder?")
    with suppress(FileNotFoundError):
        path.unlink()  # left behind by a writer that was killed
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    old_mask = os.umask(0o177)  # the socket is the owner's alone from the start
    try:
        listener.bind(str(path))
    finally:
        os.umask(old_mask)
    listener.listen(64)
    listener.settimeout(_ACCEPT_POLL)
    return listener


def _serve_connection(connection: socket.socket, writer: IngestWriter) -> None:
    """Queue each request frame as a job; its reply goes back on the same connection."""
    # A worker that stops reading must not hold up the writer thread (which answers while
    # it holds the write slot): a reply that cannot be sent in time ends the connection.
    connection.setsockopt(socket.SOL_SOCKET, socket.SO_SNDTIMEO,
                          struct.pack("ll", int(_SEND_SECONDS), 0))
    sending = threading.Lock()
    reply = partial(_reply, connection, sending)
    try:
        while (body := _read_frame(connection)) is not None:
            job_id, source_id, count, payload = wire.decode_request(body)
            try:
                # Decoded here, not by the writer thread: this runs while the writer waits
                # on SQLite (which lets go of the GIL), off the path every commit waits on.
                events = wire.decode_events(payload)
            except Exception as error:
                log.exception("could not decode an ingestion request")
                reply(job_id, None, error)
                continue
            try:
                writer.enqueue(Job(source_id, count, partial(reply, job_id), events))
            except ClientelaError as error:
                reply(job_id, None, error)
    except (OSError, ValueError, struct.error) as error:
        log.warning("ingestion connection closed: %s", error)
    finally:
        # The worker sends nothing more and expects no answers once it closes its side.
        with sending:
            connection.close()


def _read_frame(connection: socket.socket) -> bytes | None:
    """One frame's body, or None at a clean end of the stream."""
    header = _read_exactly(connection, wire.LENGTH.size, allow_end=True)
    if header is None:
        return None
    (length,) = wire.LENGTH.unpack(header)
    if length > wire.MAX_FRAME:
        raise ValueError(f"frame of {length} bytes is larger than {wire.MAX_FRAME}")
    body = _read_exactly(connection, length, allow_end=False)
    assert body is not None
    return body


def _read_exactly(connection: socket.socket, size: int, *, allow_end: bool) -> bytes | None:
    chunks, received = [], 0
    while received < size:
        chunk = connection.recv(min(size - received, 1 << 20))
        if not chunk:
            if allow_end and received == 0:
                return None
            raise ValueError("connection closed in the middle of a frame")
        chunks.append(chunk)
        received += len(chunk)
    return b"".join(chunks)


def _reply(connection: socket.socket, sending: threading.Lock, job_id: int,
           result: Recorded | None, error: BaseException | None) -> None:
    frame = wire.encode_reply(job_id, result, error)
    try:
        with sending:
            connection.sendall(frame)
    except OSError:
        # The worker went away; what was committed stays committed, and its client's
        # retry is recognised by messageId.
        log.warning("could not answer ingestion job %d: its worker is gone", job_id)


class WriterProcess(Supervised):
    """Runs `clientela ingest-writer` beside the HTTP workers and restarts it if it dies."""

    def __init__(self, path: Path, env: dict[str, str] | None = None) -> None:
        super().__init__("ingestion writer", ["ingest-writer", "--socket", str(path)],
                         ready=partial(_accepts, path), env=env,
                         startup_seconds=_STARTUP_SECONDS, stop_seconds=_STOP_SECONDS)
        self.path = path

    def start(self) -> None:
        """Start the writer and wait until it accepts connections."""
        if _accepts(self.path):
            raise RuntimeError(f"another ingestion writer is listening on {self.path}: is "
                               "another `clientela serve` using this data folder?")
        super().start()

    def stop(self) -> None:
        """Ask the writer to finish what is queued and exit; kill it if it will not."""
        super().stop()
        if self.path.parent.name.startswith(_PRIVATE_PREFIX):
            with suppress(OSError):
                self.path.parent.rmdir()


def _accepts(path: Path) -> bool:
    probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        probe.connect(str(path))
    except OSError:
        return False
    finally:
        probe.close()
    return True
