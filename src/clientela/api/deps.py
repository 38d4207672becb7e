"""Dependencies shared by the routes: settings, sessions, API keys."""

from __future__ import annotations

import base64
import time
from collections.abc import Iterator
from typing import Annotated

from fastapi import Depends, Path, Query, Request
from sqlalchemy import Engine
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool

from clientela.config import Settings
from clientela.core.errors import Unauthorized
from clientela.customers.schemas import MAX_ID
from clientela.db import session_factory
from clientela.team import service as team

_KEY_CACHE_SECONDS = 30.0
_KEY_CACHE_SIZE = 10_000


def get_settings_dep(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


def _session(engine: Engine, *, writes: bool) -> Iterator[Session]:
    session = session_factory(engine, writes=writes)()
    try:
        yield session
    finally:
        session.close()


def get_session(request: Request) -> Iterator[Session]:
    """A writing session; the route commits."""
    yield from _session(request.app.state.engine, writes=True)


def get_read_session(request: Request) -> Iterator[Session]:
    yield from _session(request.app.state.engine, writes=False)


SettingsDep = Annotated[Settings, Depends(get_settings_dep)]
SessionDep = Annotated[Session, Depends(get_session)]
ReadSessionDep = Annotated[Session, Depends(get_read_session)]


class KeyCache:
    """Recently checked keys, so a busy ingestion endpoint does not query for each request.
    A revoked key stops working within `_KEY_CACHE_SECONDS`."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self._known: dict[tuple[str, str], tuple[int, float]] = {}

    async def lookup(self, key: str, kind: str) -> int | None:
        """The key's id, or None; a miss asks the database off the event loop."""
        hit = self._known.get((kind, key))
        now = time.monotonic()
        if hit is not None and now - hit[1] < _KEY_CACHE_SECONDS:
            return hit[0]
        key_id = await run_in_threadpool(self._find, key, kind)
        if key_id is not None:
            if len(self._known) >= _KEY_CACHE_SIZE:
                self._known.clear()
            self._known[(kind, key)] = (key_id, now)
        return key_id

    def _find(self, key: str, kind: str) -> int | None:
        with session_factory(self.engine, writes=False)() as session:
            row = team.find_key(session=session, key=key, kind=kind)
            return None if row is None else row.id


def basic_user(request: Request) -> str | None:
    """The user part of an HTTP Basic `Authorization` header."""
    header = request.headers.get("authorization", "")
    scheme, _, value = header.partition(" ")
    if scheme.lower() != "basic" or not value:
        return None
    try:
        decoded = base64.b64decode(value.strip(), validate=True).decode()
    except (ValueError, UnicodeDecodeError):
        return None
    return decoded.partition(":")[0] or None


async def require_secret_key(request: Request) -> int:
    """The id of the secret key in `Authorization: Bearer KEY`; 401 otherwise."""
    header = request.headers.get("authorization", "")
    scheme, _, key = header.partition(" ")
    if scheme.lower() != "bearer" or not key.strip():
        raise Unauthorized("Authorization: send a secret key as 'Bearer KEY'",
                           code="missing_key")
    cache: KeyCache = request.app.state.key_cache
    key_id = await cache.lookup(key.strip(), "secret")
    if key_id is None:
        raise Unauthorized("Authorization: the secret key is not valid", code="invalid_key")
    return key_id


SecretKeyDep = Annotated[int, Depends(require_secret_key)]


# Parameters every listing shares. Ids fit the database's 64-bit integers; query text has
# no NUL characters, which no database stores.
Limit = Annotated[int, Query(ge=1, le=200)]
RowId = Annotated[int, Path(ge=1, le=MAX_ID)]
QueryText = Annotated[str | None, Query(max_length=320, pattern=r"^[^\x00]*$")]
