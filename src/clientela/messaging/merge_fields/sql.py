"""Running the merge fields' statements: built once, run on the session's connection, with
IN lists no longer than the databases accept."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any

from sqlalchemy import Result
from sqlalchemy.orm import Session
from sqlalchemy.sql import Executable

from clientela.db import IN_LIST_SIZE


def run(session: Session, query: Executable, **params: Any) -> Result[Any]:
    """Rows of a statement built once, by SQLAlchemy Core on the session's connection:
    building a statement cost more than running it (400 µs against 50 µs; the ORM
    session's execute, 180 µs)."""
    return session.connection().execute(query, params)


def in_lists(values: Iterable[Any]) -> Iterator[list[Any]]:
    """The distinct `values`, in order, IN_LIST_SIZE at a time (SQLite's parameter limit)."""
    ordered = sorted(set(values))
    for start in range(0, len(ordered), IN_LIST_SIZE):
        yield ordered[start:start + IN_LIST_SIZE]
