"""A throwaway PostgreSQL server for the test run, started as an unprivileged user."""

from __future__ import annotations

import glob
import os
import shutil
import socket
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _pg_bin(name: str) -> str:
    found = shutil.which(name) or next(iter(sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"),
                                                   reverse=True)), None)
    if found is None:
        raise RuntimeError(f"{name} not found: install Debian's postgresql (make test does)")
    return found


def _as_server_user(command: list[str]) -> list[str]:
    # PostgreSQL refuses to run as root; run it as `nobody` when we are root.
    return ["runuser", "-u", "nobody", "--", *command] if os.geteuid() == 0 else command


@dataclass
class PostgresServer:
    directory: Path
    port: int

    @property
    def admin_url(self) -> str:
        return f"postgresql+psycopg://clientela@127.0.0.1:{self.port}/postgres"

    def url(self, database: str) -> str:
        return f"postgresql+psycopg://clientela@127.0.0.1:{self.port}/{database}"

    @classmethod
    def start(cls, settings: dict[str, str] | None = None) -> PostgresServer:
        """A new server; `settings` are extra `postgresql.conf` parameters."""
        directory = Path(tempfile.mkdtemp(prefix="clientela-pg-"))
        if os.geteuid() == 0:
            shutil.chown(directory, "nobody", "nogroup")
        data = directory / "data"
        subprocess.run(_as_server_user([_pg_bin("initdb"), "-D", str(data), "-U", "clientela",
                                        "-A", "trust", "--no-sync", "-E", "UTF8"]),
                       check=True, capture_output=True)
        port = free_port()
        options = (f"-p {port} -k {directory} -c listen_addresses=127.0.0.1 -c fsync=off "
                   "-c synchronous_commit=off -c full_page_writes=off -c max_connections=200"
                   + "".join(f" -c {name}={value}" for name, value in (settings or {}).items()))
        subprocess.run(_as_server_user([_pg_bin("pg_ctl"), "-D", str(data), "-l",
                                        str(directory / "log"), "-o", options, "-w", "start"]),
                       check=True, capture_output=True)
        return cls(directory=directory, port=port)

    def stop(self) -> None:
        subprocess.run(_as_server_user([_pg_bin("pg_ctl"), "-D", str(self.directory / "data"),
                                        "-m", "immediate", "stop"]), capture_output=True)
        shutil.rmtree(self.directory, ignore_errors=True)
