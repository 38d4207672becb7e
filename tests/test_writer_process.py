"""On SQLite, `clientela serve` writes every worker's events through one writer process."""

from __future__ import annotations

import os
import signal
import socket
import stat
import subprocess
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from clientela.api.app import create_app
from clientela.config import Settings
from clientela.db import build_engine, session_scope
from clientela.ingest import wire
from clientela.ingest.process import socket_path
from clientela.team import service as team
from clientela.tracking.models import Event
from tests.helpers import basic
from tests.server import LiveServer, clientela_command, server_environment

sqlite_only = pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)


def _write_key(settings: Settings) -> str:
    engine = build_engine(settings)
    with session_scope(engine) as session:
        key = team.create_key(session=session, kind="write").key
    engine.dispose()
    return key


def _stored(settings: Settings) -> list[str]:
    engine = build_engine(settings)
    with session_scope(engine, writes=False) as session:
        ids = list(session.scalars(select(Event.message_id).order_by(Event.message_id)))
    engine.dispose()
    return ids


def _calls(tag: str, n: int) -> list[dict]:
    return [{"type": "track", "anonymousId": f"{tag}-visitor", "event": "Viewed",
             "messageId": f"{tag}-{i:03d}"} for i in range(n)]


def _post(server: LiveServer, key: str, calls: list[dict]) -> httpx.Response:
    return httpx.post(f"{server.base_url}/v1/batch", json={"batch": calls},
                      headers=basic(key), timeout=30)


def _children(pid: int) -> dict[int, str]:
    """Child processes of `pid` and their command lines."""
    found = {}
    for task in Path(f"/proc/{pid}/task").iterdir():
        for child in (task / "children").read_text().split():
            found[int(child)] = Path(f"/proc/{child}/cmdline").read_bytes().replace(
                b"\0", b" ").decode()
    return found


def _gone(pid: int, within: float = 10.0) -> bool:
    """Whether process `pid` ends (or is left a zombie) within `within` seconds."""
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        try:
            state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        except FileNotFoundError:
            return True
        if state in ("Z", "X"):
            return True
        time.sleep(0.05)
    return False


def _writer_pid(server: LiveServer) -> int:
    writers = [pid for pid, command in _children(server.pid).items() if "ingest-writer" in command]
    assert len(writers) == 1, _children(server.pid)
    return writers[0]


@sqlite_only
def test_two_workers_share_one_writer_and_store_every_call_once(settings, tmp_path):
    key = _write_key(settings)
    with LiveServer(database_url=settings.database_url, data_dir=tmp_path / "server",
                    workers=2) as server:
        _writer_pid(server)
        path = tmp_path / "server" / "ingest.sock"
        assert stat.S_ISSOCK(path.stat().st_mode)
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
        with ThreadPoolExecutor(8) as pool:
            answers = list(pool.map(lambda n: _post(server, key, _calls(f"b{n:02d}", 25)),
                                    range(24)))
        assert [answer.status_code for answer in answers] == [200] * 24
        assert all(answer.json() == {"success": True, "rejected": []} for answer in answers)
        again = _post(server, key, _calls("b00", 25))  # a retried batch stores nothing twice
        assert again.status_code == 200
        writer = _writer_pid(server)
    assert _gone(writer)
    assert not path.exists()
    assert _stored(settings) == sorted(f"b{n:02d}-{i:03d}" for n in range(24) for i in range(25))


@sqlite_only
def test_a_killed_writer_is_restarted_and_a_retry_stores_once(settings, tmp_path):
    key = _write_key(settings)
    with LiveServer(database_url=settings.database_url, data_dir=tmp_path / "server") as server:
        assert _post(server, key, _calls("before", 3)).status_code == 200
        first = _writer_pid(server)
        os.kill(first, signal.SIGKILL)
        answers = []
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            answer = _post(server, key, _calls("after", 3))
            answers.append(answer.status_code)
            if answer.status_code == 200:
                break
            assert answer.status_code == 503, answer.text
            assert answer.headers["Retry-After"] == "5"
            assert answer.json()["code"] == "storage_unavailable"
            time.sleep(0.2)
        assert answers[-1] == 200, answers
        second = _writer_pid(server)
        assert second != first
        assert "the ingestion writer exited" in server.output()
    assert _gone(second)
    assert _stored(settings) == [*(f"after-{i:03d}" for i in range(3)),
                                 *(f"before-{i:03d}" for i in range(3))]


@sqlite_only
def test_a_malformed_frame_closes_only_its_own_connection(settings, tmp_path):
    key = _write_key(settings)
    with LiveServer(database_url=settings.database_url, data_dir=tmp_path / "server") as server:
        raw = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        raw.connect(str(tmp_path / "server" / "ingest.sock"))
        raw.sendall(wire.LENGTH.pack(wire.MAX_FRAME + 1))
        raw.settimeout(10)
        assert raw.recv(16) == b""  # the writer hung up on it
        raw.close()
        assert _post(server, key, _calls("fine", 2)).status_code == 200
        writer = _writer_pid(server)
    assert _gone(writer)  # stopping `serve` stops its writer
    assert _stored(settings) == ["fine-000", "fine-001"]


@sqlite_only
def test_a_second_serve_on_the_same_data_folder_refuses_to_start(settings, tmp_path):
    with LiveServer(database_url=settings.database_url, data_dir=tmp_path / "server") as server:
        other = LiveServer(database_url=settings.database_url, data_dir=tmp_path / "server")
        done = subprocess.run(
            [*clientela_command(), "serve", "--port", str(other.port)],
            env=server_environment(settings.database_url, tmp_path / "server"),
            capture_output=True, text=True, timeout=60, check=False)
        assert done.returncode == 2
        assert "error another ingestion writer is listening on" in done.stderr
        assert "Traceback" not in done.stderr
        assert _post(server, _write_key(settings), _calls("still", 1)).status_code == 200


@sqlite_only
def test_the_writer_does_not_outlive_a_killed_serve(settings, tmp_path):
    with LiveServer(database_url=settings.database_url, data_dir=tmp_path / "server") as server:
        writer = _writer_pid(server)
        os.kill(server.pid, signal.SIGKILL)
        assert _gone(writer)


@sqlite_only
def test_without_its_writer_ingestion_answers_503_and_stores_nothing(settings, tmp_path):
    key = _write_key(settings)
    missing = settings.model_copy(update={"ingest_socket": tmp_path / "nobody.sock"})
    with TestClient(create_app(missing)) as client:
        answer = client.post("/v1/batch", json={"batch": _calls("x", 2)}, headers=basic(key))
    assert answer.status_code == 503
    assert answer.headers["Retry-After"] == "5"
    assert answer.json() == {"code": "storage_unavailable",
                             "message": "the ingestion writer is unavailable; retry later"}
    assert _stored(settings) == []


def test_the_socket_moves_to_a_short_private_folder_when_the_data_folder_is_deep(tmp_path):
    shallow = Settings(env="test", secret_key="k", data_dir=tmp_path / "data")
    assert socket_path(shallow) == (tmp_path / "data" / "ingest.sock").resolve()
    deep = Settings(env="test", secret_key="k", data_dir=tmp_path / ("d" * 60) / ("e" * 60))
    path = socket_path(deep)
    assert len(str(path)) < 100
    assert path.name == "ingest.sock"
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    path.parent.rmdir()
