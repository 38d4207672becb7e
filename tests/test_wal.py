"""SQLite's WAL under the background checkpointer: the writer keeps its connection, and the
log is copied back and started over while commits keep coming."""

from __future__ import annotations

import time
from itertools import pairwise
from pathlib import Path

from sqlalchemy import text

from clientela.config import Settings
from clientela.db import WalCheckpointer, build_engine, session_scope

ROWS_PER_COMMIT = 200


def _engine(tmp_path: Path):
    settings = Settings(env="test", database_url=f"sqlite:///{tmp_path / 'wal.db'}",
                        data_dir=tmp_path, secret_key="test-secret-key")
    engine = build_engine(settings)
    with engine.begin() as connection:
        connection.exec_driver_sql("CREATE TABLE notes (id INTEGER PRIMARY KEY, body TEXT)")
    return engine


def _write(engine, commit: int) -> int:
    """One commit of rows; the id of the driver connection that made it."""
    with session_scope(engine) as session:
        session.execute(text("INSERT INTO notes (body) VALUES (:body)"),
                        [{"body": f"{commit}-{n}-" + "x" * 300} for n in range(ROWS_PER_COMMIT)])
        return id(session.connection().connection.driver_connection)


def _log(engine) -> tuple[int, int]:
    """(frames in the WAL, frames copied back) without copying any."""
    raw = engine.raw_connection()
    try:
        # A checkpoint that may not wait for anyone reports without blocking the writer.
        _busy, frames, copied = raw.driver_connection.execute(
            "PRAGMA wal_checkpoint(PASSIVE)").fetchone()
    finally:
        raw.close()
    return frames, copied


def test_writer_keeps_one_connection_beside_the_checkpointer(tmp_path):
    engine = _engine(tmp_path)
    checkpointer = WalCheckpointer(engine, interval=0.01)
    checkpointer.start()
    try:
        # Two connections in the pool, as after a moment of concurrent use.
        first, second = engine.connect(), engine.connect()
        first.close()
        second.close()
        used = []
        for commit in range(30):
            used.append(_write(engine, commit))
            time.sleep(0.005)  # let the checkpointer run between commits
    finally:
        checkpointer.stop()
        engine.dispose()
    # A connection another one wrote behind loses its page cache, so the writer keeps one
    # (it may change once, if its first commit came before the checkpointer took its own).
    changes = sum(1 for before, after in pairwise(used) if before != after)
    assert changes <= 1, used


def test_checkpointer_copies_the_log_back_while_commits_come(tmp_path):
    engine = _engine(tmp_path)
    wal = tmp_path / "wal.db-wal"
    checkpointer = WalCheckpointer(engine, interval=0.05)
    checkpointer.start()
    try:
        for commit in range(300):
            _write(engine, commit)
            time.sleep(0.003)  # requests arrive apart, as they do
        deadline = time.monotonic() + 10
        while (state := _log(engine))[1] < state[0] and time.monotonic() < deadline:
            time.sleep(0.05)
        frames, copied = state
        with engine.connect() as connection:
            rows = connection.exec_driver_sql("SELECT count(*) FROM notes").scalar()
        wal_bytes = wal.stat().st_size
    finally:
        checkpointer.stop()
        engine.dispose()
    assert copied == frames
    assert rows == 300 * ROWS_PER_COMMIT
    # 300 commits of ~70 KB each: without the WAL starting over it would exceed 20 MB.
    assert wal_bytes < 8 * 1024 * 1024
