"""A real `clientela serve` process for end-to-end tests, and the `live_server` fixture.

Test modules load the fixture with `pytest_plugins = ("tests.server",)`. It builds on the
`database_url` fixture of tests/conftest.py, so each test using it runs on SQLite and on
PostgreSQL; the server and the test process share that database.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from types import TracebackType

import httpx
import pytest

from tests.pg import free_port

STARTUP_SECONDS = 30.0
STOP_SECONDS = 10.0
SECRET_KEY = "test-secret-key"


def clientela_command() -> list[str]:
    """The installed `clientela` console script next to this Python, or its entry point."""
    script = Path(sys.executable).with_name("clientela")
    if script.is_file() and os.access(script, os.X_OK):
        return [str(script)]
    return [sys.executable, "-c", "from clientela.cli.main import app; app()"]


def server_environment(database_url: str, data_dir: Path) -> dict[str, str]:
    """This process's environment without CLIENTELA_* settings, plus the server's own."""
    env = {name: value for name, value in os.environ.items()
           if not name.startswith("CLIENTELA_")}
    env.update({
        "CLIENTELA_DATABASE_URL": database_url,
        "CLIENTELA_DATA_DIR": str(data_dir),
        "CLIENTELA_SECRET_KEY": SECRET_KEY,
        "CLIENTELA_ENV": "test",
        "PYTHONUNBUFFERED": "1",
    })
    return env


class LiveServer:
    """`clientela serve` on a free local port; use it as a context manager."""

    def __init__(self, *, database_url: str, data_dir: Path, workers: int = 1) -> None:
        self.database_url = database_url
        self.data_dir = data_dir
        self.workers = workers
        self.port = free_port()
        self.base_url = f"http://127.0.0.1:{self.port}"
        self.log_path = data_dir / "server.log"
        self._process: subprocess.Popen[bytes] | None = None

    def output(self) -> str:
        """Everything the server printed so far (stdout and stderr)."""
        if not self.log_path.exists():
            return ""
        return self.log_path.read_text(encoding="utf-8", errors="replace")

    def start(self) -> None:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        command = [*clientela_command(), "serve", "--host", "127.0.0.1", "--port", str(self.port),
                   "--workers", str(self.workers)]
        with self.log_path.open("wb") as log:
            # The child keeps its own copy of the descriptor; a file never fills up like a pipe.
            self._process = subprocess.Popen(
                command, env=server_environment(self.database_url, self.data_dir),
                stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        try:
            self._wait_until_healthy()
        except BaseException:
            self.stop()
            raise

    def _wait_until_healthy(self) -> None:
        assert self._process is not None
        deadline = time.monotonic() + STARTUP_SECONDS
        last_problem = "no answer yet"
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                pytest.fail(f"clientela serve exited with {self._process.returncode} before "
                            f"answering /health; its output:\n{self.output()}")
            try:
                response = httpx.get(f"{self.base_url}/health", timeout=1.0)
            except httpx.TransportError as error:
                last_problem = repr(error)
            else:
                if response.status_code == 200:
                    return
                last_problem = f"{response.status_code} {response.text}"
            time.sleep(0.05)
        pytest.fail(f"clientela serve did not answer GET /health with 200 within "
                    f"{STARTUP_SECONDS:.0f} s (last: {last_problem}); its output:\n"
                    f"{self.output()}")

    @property
    def pid(self) -> int:
        assert self._process is not None
        return self._process.pid

    def stop(self) -> None:
        """SIGTERM, then SIGKILL if it has not exited within STOP_SECONDS."""
        process, self._process = self._process, None
        if process is None or process.poll() is not None:
            return
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=STOP_SECONDS)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=STOP_SECONDS)

    def __enter__(self) -> LiveServer:
        self.start()
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None,
                 traceback: TracebackType | None) -> None:
        self.stop()


@pytest.fixture
def live_server(database_url: str, tmp_path: Path) -> Iterator[LiveServer]:
    """A running `clientela serve` on the test database (SQLite file or PostgreSQL)."""
    with LiveServer(database_url=database_url, data_dir=tmp_path / "server") as server:
        yield server
