"""Fixtures: every database test runs on a real SQLite file and a real PostgreSQL server."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, create_engine, text

from clientela.api.app import create_app
from clientela.config import Settings
from clientela.db import Base, build_engine, session_scope
from clientela.migrate import upgrade
from clientela.models import load_all
from clientela.team import service as team
from tests.mail import Received, smtp_server
from tests.pg import PostgresServer

DATABASES = [name.strip() for name in
             os.environ.get("CLIENTELA_TEST_DATABASES", "sqlite,postgresql").split(",")
             if name.strip()]
load_all()


@pytest.fixture(scope="session")
def postgres() -> Iterator[PostgresServer]:
    server = PostgresServer.start()
    try:
        engine = create_engine(server.admin_url, isolation_level="AUTOCOMMIT")
        with engine.connect() as connection:
            connection.execute(text("CREATE DATABASE clientela_test"))
        engine.dispose()
        migrated = build_engine(_settings(server.url("clientela_test"), Path("/tmp")))
        upgrade(migrated)
        migrated.dispose()
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("template") / "clientela.db"
    engine = build_engine(_settings(f"sqlite:///{path}", path.parent))
    upgrade(engine)
    with engine.connect() as connection:
        connection.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
    engine.dispose()
    return path


def _settings(url: str, data_dir: Path, **overrides: object) -> Settings:
    values: dict[str, object] = {"env": "test", "database_url": url, "data_dir": data_dir,
                                 "secret_key": "test-secret-key", "db_busy_timeout_ms": 3000}
    values.update(overrides)
    return Settings(**values)  # type: ignore[arg-type]


def _truncate_all(engine: Engine) -> None:
    names = ", ".join(table.name for table in Base.metadata.sorted_tables)
    with engine.begin() as connection:
        connection.execute(text(f"TRUNCATE {names} RESTART IDENTITY CASCADE"))


@pytest.fixture(params=DATABASES)
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A migrated, empty database: a fresh SQLite file, or the PostgreSQL test database."""
    if request.param == "sqlite":
        target = tmp_path / "clientela.db"
        shutil.copy(request.getfixturevalue("sqlite_template"), target)
        return f"sqlite:///{target}"
    server: PostgresServer = request.getfixturevalue("postgres")
    url = server.url("clientela_test")
    engine = create_engine(url)
    _truncate_all(engine)
    engine.dispose()
    return url


@pytest.fixture
def settings(database_url: str, tmp_path: Path) -> Settings:
    return _settings(database_url, tmp_path)


@pytest.fixture
def engine(settings: Settings) -> Iterator[Engine]:
    engine = build_engine(settings)
    yield engine
    engine.dispose()


@pytest.fixture
def client(settings: Settings, engine: Engine) -> Iterator[TestClient]:
    with TestClient(create_app(settings, engine)) as test_client:
        yield test_client


@pytest.fixture
def write_key(engine: Engine) -> str:
    with session_scope(engine) as session:
        return team.create_key(session=session, kind="write", name="test store").key


@pytest.fixture
def secret_key(engine: Engine) -> str:
    with session_scope(engine) as session:
        return team.create_key(session=session, kind="secret", name="test api").key


@pytest.fixture
def api(client: TestClient, secret_key: str) -> TestClient:
    """The test client with the secret key sent on every request."""
    client.headers["Authorization"] = f"Bearer {secret_key}"
    return client


@pytest.fixture
def smtp() -> Iterator[tuple[int, Received]]:
    with smtp_server() as server:
        yield server


@pytest.fixture
def mail_settings(settings: Settings, smtp: tuple[int, Received]) -> Settings:
    return settings.model_copy(update={
        "smtp_host": "127.0.0.1", "smtp_port": smtp[0], "smtp_tls": "none",
        "public_url": "https://crm.loja.example", "mail_from": "Loja Teste <news@loja.example>",
        "shop_name": "Loja Teste", "marketing_cap_per_week": 3})


@pytest.fixture
def mail_api(mail_settings: Settings, engine: Engine, secret_key: str) -> Iterator[TestClient]:
    with TestClient(create_app(mail_settings, engine)) as client:
        client.headers["Authorization"] = f"Bearer {secret_key}"
        yield client
