"""The background worker (`clientela worker`, and the one `clientela serve` runs beside it)
runs the schedule: carts left alone become abandoned without anyone asking."""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import time
from datetime import timedelta
from pathlib import Path

import httpx
from sqlalchemy import select

from clientela.commerce.models import Cart
from clientela.config import Settings
from clientela.core.children import Supervised
from clientela.core.clock import utcnow
from clientela.db import build_engine, session_scope
from tests.helpers import basic
from tests.server import LiveServer, clientela_command, server_environment
from tests.test_writer_process import _children, _gone

WAIT_SECONDS = 30.0


def _cart_added(minutes_ago: int, user: str) -> dict:
    return {"type": "track", "userId": user, "event": "Product Added",
            "messageId": f"add-{user}",
            "timestamp": (utcnow() - timedelta(minutes=minutes_ago)).isoformat(),
            "properties": {"product_id": "P1", "price": 10, "cart_id": f"cart-{user}"}}


def _cart_states(settings: Settings) -> dict[str, str]:
    engine = build_engine(settings)
    with session_scope(engine, writes=False) as session:
        states = dict(session.execute(select(Cart.external_id, Cart.status)).tuples().all())
    engine.dispose()
    return states


def _wait_for(settings: Settings, expected: dict[str, str]) -> dict[str, str]:
    deadline = time.monotonic() + WAIT_SECONDS
    while (states := _cart_states(settings)) != expected and time.monotonic() < deadline:
        time.sleep(0.2)
    return states


def test_the_worker_abandons_idle_carts_and_stops_gracefully(settings, engine, client,
                                                             write_key, tmp_path):
    for minutes, user in ((120, "idle"), (5, "busy")):
        answer = client.post("/v1/track", json=_cart_added(minutes, user),
                             headers=basic(write_key))
        assert answer.status_code == 200, answer.text
    assert _cart_states(settings) == {"cart-idle": "open", "cart-busy": "open"}
    data_dir = tmp_path / "worker"
    env = server_environment(settings.database_url, data_dir)
    with (tmp_path / "worker.log").open("wb") as log:
        worker = subprocess.Popen([*clientela_command(), "worker"], env=env, stdout=log,
                                  stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    try:
        assert _wait_for(settings, {"cart-idle": "abandoned", "cart-busy": "open"}) == \
            {"cart-idle": "abandoned", "cart-busy": "open"}
    finally:
        worker.send_signal(signal.SIGTERM)
        returncode = worker.wait(timeout=30)
    output = (tmp_path / "worker.log").read_text()
    assert returncode == 0, output
    assert "commerce.abandon_idle_carts: 1" in output
    assert "Shutting down gracefully" in output
    assert (data_dir / "worker.db").is_file()  # the queue, beside the data


def test_serve_runs_the_worker_beside_itself_and_takes_it_down(settings, client, write_key,
                                                               tmp_path):
    # The schedule ticks each minute, and once as the worker starts: the cart is left
    # before the server starts, so that first tick finds it.
    answer = client.post("/v1/track", json=_cart_added(90, "late"), headers=basic(write_key))
    assert answer.status_code == 200, answer.text
    with LiveServer(database_url=settings.database_url, data_dir=tmp_path / "server") as server:
        workers = [pid for pid, command in _children(server.pid).items()
                   if " worker --parent-pid " in command]
        assert len(workers) == 1, _children(server.pid)
        assert _wait_for(settings, {"cart-late": "abandoned"}) == {"cart-late": "abandoned"}
        os.kill(server.pid, signal.SIGKILL)  # even a killed server takes its worker down
        assert _gone(workers[0], within=15.0)


def test_a_worker_can_be_left_to_other_hosts(settings, tmp_path):
    env = server_environment(settings.database_url, tmp_path / "server")
    env["CLIENTELA_EMBEDDED_WORKER"] = "false"
    server = LiveServer(database_url=settings.database_url, data_dir=tmp_path / "server")
    process = subprocess.Popen([*clientela_command(), "serve", "--port", str(server.port)],
                               env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline, healthy = time.monotonic() + 30, False
        while not healthy and time.monotonic() < deadline:
            try:
                healthy = httpx.get(f"{server.base_url}/health", timeout=2).status_code == 200
            except httpx.HTTPError:
                time.sleep(0.1)
        assert healthy
        children = _children(process.pid)
        assert not any("worker" in command and "ingest" not in command
                       for command in children.values()), children
    finally:
        process.terminate()
        process.wait(timeout=30)
    assert not Path(tmp_path / "server" / "worker.db").exists()


def test_a_crashing_child_is_restarted_with_growing_pauses(caplog):
    caplog.set_level(logging.ERROR, logger="clientela.core.children")
    child = Supervised("broken child", ["no-such-command"])  # exits at once with status 2
    child.start()
    try:
        time.sleep(8)
    finally:
        child.stop()
    restarts = [record for record in caplog.records if "restarting it" in record.message]
    # Pauses of 0.5, 1, 2 and 5 s between starts that each take about a second: 3 or 4
    # restarts in 8 s, where a fixed pause would give 5 or more.
    assert 2 <= len(restarts) <= 4, [record.message for record in restarts]


def test_a_child_asked_to_stop_is_not_restarted(settings, caplog):
    caplog.set_level(logging.WARNING, logger="clientela.core.children")
    child = Supervised("background worker", ["worker"],
                       env=server_environment(settings.database_url, settings.data_dir))
    child.start()
    try:
        process = child._process
        assert process is not None
        time.sleep(1.5)
        process.send_signal(signal.SIGTERM)  # as systemd stopping the whole service would
        # 0 once Huey handles the signal, -15 if it came before Huey was listening.
        status = process.wait(timeout=30)
        assert status in (0, -signal.SIGTERM)
        time.sleep(2)
        assert child._process is process
    finally:
        child.stop()
    assert any(f"was stopped (status {status}); not restarting it" in record.message
               for record in caplog.records)
