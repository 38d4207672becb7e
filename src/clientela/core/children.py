"""Child processes `clientela serve` keeps running beside its HTTP workers (the ingestion
writer, the background worker): started, restarted with back-off when they crash, stopped.

Children run in their own session, so a Ctrl-C in the terminal reaches `serve` only, which
then stops them in order. A child that exits cleanly or on SIGTERM/SIGINT was asked to stop
(by `serve`, an administrator or systemd) and is not restarted; one that crashes or is
killed is. Each child is told its parent's pid and exits when that process is gone.
"""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable

log = logging.getLogger(__name__)
_RESTART_PAUSES = (0.5, 1.0, 2.0, 5.0, 10.0, 30.0)
_STABLE_SECONDS = 10.0  # a child that lived this long before dying starts the back-off over
_PARENT_POLL = 1.0
_ASKED_TO_STOP = (0, -signal.SIGTERM, -signal.SIGINT)


class Supervised:
    """`clientela ARGS...` in a child process, restarted if it dies (pausing longer after
    each failed start, so a child that cannot start is not spun)."""

    def __init__(self, name: str, args: list[str], *, ready: Callable[[], bool] | None = None,
                 env: dict[str, str] | None = None, startup_seconds: float = 30.0,
                 stop_seconds: float = 10.0) -> None:
        self.name, self.args, self.ready, self.env = name, args, ready, env
        self.startup_seconds, self.stop_seconds = startup_seconds, stop_seconds
        self._process: subprocess.Popen[bytes] | None = None
        self._started_at = 0.0
        self._stopping = threading.Event()
        self._spawning = threading.Lock()  # `stop` never races a restart
        self._watcher: threading.Thread | None = None

    def start(self) -> None:
        """Start the child and wait until it is `ready`."""
        with self._spawning:
            self._spawn()
        self._watcher = threading.Thread(target=self._watch, name=f"{self.name}-watch",
                                         daemon=True)
        self._watcher.start()

    def stop(self) -> None:
        """SIGTERM, and SIGKILL if the child has not exited within `stop_seconds`."""
        self._stopping.set()
        with self._spawning:
            process = self._process
            if process is None or process.poll() is not None:
                return
            process.terminate()
            try:
                process.wait(timeout=self.stop_seconds)
            except subprocess.TimeoutExpired:
                log.error("the %s did not stop in %ss; killing it", self.name,
                          self.stop_seconds)
                process.kill()
                process.wait()

    def _spawn(self) -> None:
        command = [sys.executable, "-m", "clientela", *self.args,
                   "--parent-pid", str(os.getpid())]
        process = self._process = subprocess.Popen(command, env=self.env,
                                                   stdin=subprocess.DEVNULL,
                                                   start_new_session=True)
        self._started_at = time.monotonic()
        deadline = time.monotonic() + self.startup_seconds
        while self.ready is not None and not self.ready():
            if process.poll() is not None:
                raise RuntimeError(f"the {self.name} exited with status {process.returncode} "
                                   "while starting")
            if time.monotonic() > deadline:
                process.kill()
                process.wait()
                raise RuntimeError(f"the {self.name} was not ready within "
                                   f"{self.startup_seconds}s")
            time.sleep(0.05)

    def _watch(self) -> None:
        failures = 0
        while not self._stopping.wait(_RESTART_PAUSES[min(failures, len(_RESTART_PAUSES) - 1)]):
            with self._spawning:
                process = self._process
                if self._stopping.is_set() or process is None or process.poll() is None:
                    continue
                if process.returncode in _ASKED_TO_STOP:
                    log.warning("the %s was stopped (status %s); not restarting it",
                                self.name, process.returncode)
                    return
                lived = time.monotonic() - self._started_at
                failures = failures + 1 if lived < _STABLE_SECONDS else 0
                log.error("the %s exited with status %s; restarting it", self.name,
                          process.returncode)
                try:
                    self._spawn()
                except RuntimeError as error:
                    failures += 1
                    log.error("%s", error)


def parent_alive(parent: int | None) -> bool:
    """Whether the process that started this one (`--parent-pid`) is still its parent;
    always true for a process started by hand (no parent given)."""
    return parent is None or os.getppid() == parent


def on_parent_exit(parent: int | None, action: Callable[[], None]) -> None:
    """Call `action` (from a daemon thread) once the parent is gone (at once if it already
    is: it may have died while this process was starting)."""
    if parent is None:
        return

    def watch() -> None:
        while parent_alive(parent):
            time.sleep(_PARENT_POLL)
        action()

    threading.Thread(target=watch, name="parent-watch", daemon=True).start()
