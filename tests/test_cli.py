"""The command-line contract later checks rely on."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
from sqlalchemy import func, select

from clientela.config import Settings
from clientela.db import build_engine, session_scope
from clientela.team import service as team
from clientela.team.models import ApiKey, User
from clientela.tracking.models import Event


def _run(settings: Settings, *args: str, env: dict[str, str] | None = None
         ) -> subprocess.CompletedProcess[str]:
    environment = {**os.environ, "CLIENTELA_DATABASE_URL": settings.sqlalchemy_url,
                   "CLIENTELA_DATA_DIR": str(settings.data_dir),
                   "CLIENTELA_SECRET_KEY": settings.secret_key, **(env or {})}
    return subprocess.run([sys.executable, "-c", "from clientela.cli.main import app; app()",
                           *args], capture_output=True, text=True, env=environment, timeout=60)


def test_keys_create_prints_the_key_alone_on_the_last_line(settings, engine):
    done = _run(settings, "keys", "create", "--kind", "write", "--name", "loja")
    assert done.returncode == 0, done.stderr
    key = done.stdout.strip().splitlines()[-1]
    assert key.startswith("cw_") and " " not in key
    with session_scope(engine, writes=False) as session:
        row = session.scalars(select(ApiKey)).one()
        assert (row.kind, row.name) == ("write", "loja")
        assert row.key_hash == team.hash_key(key) != key  # stored hashed
        assert team.find_key(session=session, key=key, kind="write") is not None
        assert team.find_key(session=session, key=key, kind="secret") is None


def test_keys_create_refuses_an_unknown_kind(settings):
    done = _run(settings, "keys", "create", "--kind", "admin")
    assert done.returncode == 2
    assert "invalid_kind: kind: must be one of write, secret" in done.stderr


def test_users_create(settings, engine):
    done = _run(settings, "users", "create", "--email", "Dona@Loja.com.br", "--password",
                "s3cret-pass", "--role", "owner")
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "created owner dona@loja.com.br"
    with session_scope(engine) as session:
        user = session.scalars(select(User)).one()
        assert user.password_hash.startswith("scrypt$")
        assert team.authenticate(session=session, email="dona@loja.com.br",
                                 password="s3cret-pass") is not None
        assert team.authenticate(session=session, email="dona@loja.com.br",
                                 password="wrong-pass") is None
    again = _run(settings, "users", "create", "--email", "dona@loja.com.br", "--password",
                 "another-pass")
    assert again.returncode == 2
    assert "user_exists" in again.stderr
    short = _run(settings, "users", "create", "--email", "x@loja.com.br", "--password", "short")
    assert "weak_password: password: must be at least 8 characters" in short.stderr


def test_migrate_creates_a_fresh_sqlite_file(tmp_path):
    settings = Settings(env="test", data_dir=tmp_path / "fresh", secret_key="k")
    done = _run(settings, "migrate")
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "fresh" / "clientela.db").exists()
    engine = build_engine(settings)
    with engine.connect() as connection:
        assert connection.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
        assert connection.exec_driver_sql("PRAGMA synchronous").scalar() == 2  # FULL
        assert connection.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
    engine.dispose()


def test_default_secret_key_is_refused_outside_development(tmp_path):
    for env in ("production", "test"):
        with pytest.raises(ValueError, match="CLIENTELA_SECRET_KEY must be set"):
            Settings(env=env, data_dir=tmp_path)
    assert Settings(env="production", secret_key="a-real-secret").env == "production"
    assert Settings(env="development").secret_key  # the default is fine on a laptop


def test_demo_loads_a_shop_and_loads_nothing_twice(settings, engine):
    first = _run(settings, "demo", "--customers", "60", "--seed", "3")
    assert first.returncode == 0, first.stderr
    calls = int(first.stdout.split("past orders, ")[1].split(" calls")[0])
    assert f"{calls} calls ({calls} new, 0 already loaded)" in first.stdout
    assert "Sign in at http://127.0.0.1:8000 as owner@clientela.demo with password " \
           "clientela-demo" in first.stdout
    again = _run(settings, "demo", "--customers", "60", "--seed", "3")
    assert f"{calls} calls (0 new, {calls} already loaded), 0 carts abandoned" in again.stdout
    with session_scope(engine, writes=False) as session:
        assert session.scalar(select(func.count()).select_from(Event)) == calls
        assert team.find_user(session=session, email="owner@clientela.demo") is not None
    refused = _run(settings, "demo", "--customers", "0")
    assert refused.returncode == 2 and "--customers" in refused.stderr


def test_carts_abandon_marks_carts_left_alone(settings, engine, client, write_key):
    client.post("/v1/track", json={"writeKey": write_key, "userId": "u1", "event": "Product Added",
                                   "timestamp": "2026-01-01T10:00:00Z",
                                   "properties": {"sku": "S1", "price": 5}})
    done = _run(settings, "carts", "abandon", env={"CLIENTELA_CART_ABANDON_MINUTES": "30"})
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip().startswith("1 carts abandoned")
    assert _run(settings, "carts", "abandon").stdout.startswith("0 carts abandoned")
