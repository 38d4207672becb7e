"""Engines, sessions, the declarative base and its naming conventions, SQLite pragmas."""

from __future__ import annotations

import fcntl
import hashlib
import logging
import threading
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager, suppress
from functools import lru_cache
from pathlib import Path
from typing import Any

from sqlalchemy import ColumnElement, Connection, Engine, MetaData, create_engine, event, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError, IntegrityError, StatementError
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.orm import DeclarativeBase, QueryableAttribute, Session, sessionmaker
from sqlalchemy.pool import PoolProxiedConnection
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.functions import FunctionElement

from clientela.config import Settings, get_settings
from clientela.core.errors import Conflict

log = logging.getLogger(__name__)
NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


WRITE_OPTION = "clientela_writes"
WAL_BACKSTOP_PAGES = 10_000
_CATCH_UP_PAUSE = 0.005


def one_of(column: str, values: tuple[str, ...]) -> str:
    """The SQL of a CHECK that `column` holds one of `values`."""
    return f"{column} IN ({', '.join(repr(value) for value in values)})"


class unindexed(FunctionElement[Any]):
    """A column that SQLite must not pick an index for (it is written `+column`; other
    engines see the column). SQLite has no statistics unless ANALYZE ran, and then takes an
    equality on a low-selectivity column (`event = 'Product Viewed'`, `merged_into_id IS
    NULL`) over a customer id IN list: a scan of half a table per batch instead of a few
    hundred lookups."""

    inherit_cache = True
    name = "unindexed"

    def __init__(self, column: ColumnElement[Any] | QueryableAttribute[Any]) -> None:
        super().__init__(column)
        self.type = column.type


@compiles(unindexed)
def _column(element: unindexed, compiler: SQLCompiler, **kw: Any) -> str:
    return compiler.process(element.clauses, **kw)


@compiles(unindexed, "sqlite")
def _unary_plus(element: unindexed, compiler: SQLCompiler, **kw: Any) -> str:
    return "+" + compiler.process(element.clauses, **kw)


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)


def _sqlite_pragmas(busy_timeout_ms: int) -> Any:
    def on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Let SQLAlchemy's BEGIN open the transaction, so pragmas are not inside one.
        dbapi_connection.isolation_level = None
        # lower() as PostgreSQL has it, for every letter, not ASCII only: "SÃO" -> "são".
        dbapi_connection.create_function("lower", 1, _lower, deterministic=True)
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=FULL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute(f"PRAGMA busy_timeout={int(busy_timeout_ms)}")
        # 64 MB of page cache (the default is 2 MB): index pages of a growing event
        # store stay in memory instead of being read again for every insert.
        cursor.execute("PRAGMA cache_size=-65536")
        # Commits leave checkpoints to `WalCheckpointer`; this is only the backstop if it
        # falls behind (about 40 MB of WAL).
        cursor.execute(f"PRAGMA wal_autocheckpoint={WAL_BACKSTOP_PAGES}")
        cursor.close()

    return on_connect


def _lower(value: Any) -> Any:
    return value.lower() if isinstance(value, str) else value


def _sqlite_begin(conn: Any) -> None:
    # A writer takes the lock up front (IMMEDIATE): a deferred transaction that reads and
    # then writes fails at once if another writer committed in between. Readers stay
    # deferred so WAL lets them run beside the writer.
    writes = conn.get_execution_options().get(WRITE_OPTION, False)
    conn.exec_driver_sql("BEGIN IMMEDIATE" if writes else "BEGIN")


def build_engine(settings: Settings) -> Engine:
    """An engine for the configured database with the house pragmas and timeouts."""
    url = make_url(settings.sqlalchemy_url)
    if url.get_backend_name() == "sqlite":
        if url.database and url.database != ":memory:":
            Path(url.database).parent.mkdir(parents=True, exist_ok=True)
        # hide_parameters: errors are logged, and parameters hold personal data.
        # LIFO: the connection used last comes back first, with its page cache warm.
        engine = create_engine(url, connect_args={"check_same_thread": False},
                               hide_parameters=True, pool_use_lifo=True)
        event.listen(engine, "connect", _sqlite_pragmas(settings.db_busy_timeout_ms))
        event.listen(engine, "begin", _sqlite_begin)
        return engine
    # jit off: compiling a segment's query to machine code cost more than it saved
    # (hundreds of milliseconds on counts over a million customers).
    options = f"-c lock_timeout={settings.db_busy_timeout_ms} -c jit=off"
    return create_engine(url, pool_pre_ping=True, pool_size=10, hide_parameters=True,
                         connect_args={"options": options})


@lru_cache(maxsize=1)
def get_engine() -> Engine:
    """The process-wide engine for the current settings."""
    return build_engine(get_settings())


@lru_cache(maxsize=8)
def session_factory(engine: Engine, *, writes: bool = True) -> sessionmaker[Session]:
    """Sessions on `engine`; writing ones take SQLite's write lock when they begin."""
    bound = engine.execution_options(**{WRITE_OPTION: True}) if writes else engine
    return sessionmaker(bind=bound, expire_on_commit=False)


@contextmanager
def session_scope(engine: Engine | None = None, *, writes: bool = True) -> Iterator[Session]:
    """A session that commits when the block ends cleanly and rolls back otherwise."""
    session = session_factory(engine or get_engine(), writes=writes)()
    try:
        yield session
        session.commit()
    except BaseException:
        session.rollback()
        raise
    finally:
        session.close()


def flush_named(session: Session, what: str, name: str) -> None:
    """Flush a row with a unique name; a clash is a Conflict naming it ("name: a segment
    named 'x' exists", code `segment_exists`), and the session stays usable."""
    try:
        with session.begin_nested():
            session.flush()
    except IntegrityError:
        raise Conflict(f"name: a {what} named {name!r} exists", code=f"{what}_exists") from None


def driver_executemany(session: Session, sql: str, rows: list[tuple[Any, ...]]) -> None:
    """Run `sql` (written with ? placeholders) once per row, straight through the driver.

    For the few hot writes where SQLAlchemy's per-value processing costs more than the
    database's own work; the caller renders values (see `core.types.db_time`).
    """
    if not rows:
        return
    connection = session.connection()
    if connection.dialect.paramstyle != "qmark":
        sql = sql.replace("?", "%s")
    # The driver's own cursor, in the session's transaction: SQLAlchemy's execution context
    # for a statement costs about as much as SQLite's work for a few dozen rows.
    cursor = connection.connection.cursor()
    try:
        cursor.executemany(sql, rows)
    except connection.dialect.loaded_dbapi.Error as error:
        raise _driver_error(connection, sql, error) from error
    finally:
        cursor.close()


def _driver_error(connection: Connection, sql: str, error: Exception) -> StatementError:
    """The error as SQLAlchemy would raise it (IntegrityError, OperationalError, ...), without
    the parameters, which hold personal data."""
    dbapi = connection.dialect.loaded_dbapi
    return DBAPIError.instance(sql, None, error, dbapi.Error, hide_parameters=True,
                              dialect=connection.dialect)


class WriterLock:
    """Hands SQLite's single write slot from process to process without sleeping.

    SQLite makes a second writer poll with growing sleeps while the first holds the lock;
    with several server processes that turns into idle time. An OS file lock wakes the next
    writer the moment the current one commits. PostgreSQL needs none: this is a no-op there.
    """

    def __init__(self, engine: Engine) -> None:
        database = engine.url.database if engine.dialect.name == "sqlite" else None
        self.path = Path(f"{database}-writer.lock") if database and database != ":memory:" \
            else None
        self._file: Any = None

    def __enter__(self) -> WriterLock:
        if self.path is not None:
            if self._file is None:
                self._file = self.path.open("a+b")
            fcntl.flock(self._file.fileno(), fcntl.LOCK_EX)
        return self

    def __exit__(self, *_exc: object) -> None:
        if self._file is not None:
            fcntl.flock(self._file.fileno(), fcntl.LOCK_UN)

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None


class WalCheckpointer:
    """Copies the SQLite WAL back into the database file in the background.

    Left to commits, a checkpoint runs inside whichever commit crosses the threshold and
    makes that request wait for the copy and its fsync; here it runs beside the writers
    (PASSIVE never blocks them), and commits pay only for their own WAL frames.
    """

    def __init__(self, engine: Engine, *, interval: float = 1.0) -> None:
        self.engine = engine
        self.interval = interval
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        if self.engine.dialect.name != "sqlite" or (self._thread and self._thread.is_alive()):
            return
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name="wal-checkpointer", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)

    def _run(self) -> None:
        # A connection of its own for as long as it runs, not one from the pool: a pooled
        # connection it had used would come back to the writer with a page cache SQLite
        # throws away (another connection wrote since), so the writer would read its index
        # pages from disk again.
        connection, pause, last = None, self.interval, (0, 0)
        try:
            while not self._stop.wait(pause):
                try:
                    connection = connection or self.engine.raw_connection()
                    frames, copied = _passive_checkpoint(connection)
                except Exception:  # a busy or closing database: try again next time
                    log.debug("wal checkpoint skipped", exc_info=True)
                    if connection is not None:
                        with suppress(Exception):
                            connection.close()
                    connection, pause = None, self.interval
                    continue
                # While commits keep coming, go again almost at once: caught up between two
                # of them, the next one starts the WAL over instead of growing it until a
                # commit crosses the backstop and checkpoints in its place.
                pause = self.interval if (frames, copied) == last else _CATCH_UP_PAUSE
                last = (frames, copied)
        finally:
            if connection is not None:
                connection.close()


def _passive_checkpoint(connection: PoolProxiedConnection) -> tuple[int, int]:
    """(frames in the WAL, frames copied back) after a checkpoint that waits for no one."""
    cursor = connection.cursor()
    try:
        cursor.execute("PRAGMA wal_checkpoint(PASSIVE)")
        _busy, frames, copied = cursor.fetchone() or (0, 0, 0)
    finally:
        cursor.close()
    return int(frames), int(copied)


def next_ids(session: Session, table: str, count: int) -> list[int]:
    """`count` unused ids of `table` (an id primary key), in increasing order, for inserts
    through the driver that must know their ids without RETURNING."""
    connection = session.connection()
    if connection.dialect.name == "postgresql":
        return [int(row_id) for (row_id,) in connection.exec_driver_sql(
            f"SELECT nextval(pg_get_serial_sequence('{table}', 'id')) "
            "FROM generate_series(1, %(count)s) ORDER BY 1", {"count": count})]
    # SQLite: writes run under BEGIN IMMEDIATE, so no one else can take these ids before
    # the commit (the same rule SQLite's own rowid allocation follows).
    top = connection.exec_driver_sql(f"SELECT coalesce(max(id), 0) FROM {table}").scalar()
    return list(range(int(top or 0) + 1, int(top or 0) + 1 + count))


def driver_query(session: Session, sql: str, params: Sequence[Any]) -> list[Any]:
    """Rows of `sql` (with ? placeholders) straight from the driver; see `driver_executemany`.

    `{marks}` in `sql` becomes one placeholder per remaining parameter, for IN lists.
    """
    connection = session.connection()
    if "{marks}" in sql:
        fixed = sql.count("?")
        sql = sql.replace("{marks}", ", ".join("?" * (len(params) - fixed)))
    if connection.dialect.paramstyle != "qmark":
        sql = sql.replace("?", "%s")
    # The driver's own cursor, in the session's transaction: plain tuples, not Row objects
    # (making a Row costs more than reading it, on reads of millions of rows).
    cursor = connection.connection.cursor()
    try:
        cursor.execute(sql, tuple(params))
        return list(cursor.fetchall())
    except connection.dialect.loaded_dbapi.Error as error:
        raise _driver_error(connection, sql, error) from error
    finally:
        cursor.close()


def lock_name(session: Session, name: str, *, shared: bool = False) -> None:
    """Hold `name` until the transaction ends: another transaction that asks for it waits for
    this one's commit or rollback (two shared holders do not wait for each other). For what
    has no row to lock yet, such as a thing about to be created. PostgreSQL: a transaction
    advisory lock (one slot of the server's lock table: take a few, not one per row).
    SQLite: nothing to do, a writer holds the one write lock from BEGIN IMMEDIATE on."""
    connection = session.connection()
    if connection.dialect.name != "postgresql":
        return
    function = "pg_advisory_xact_lock_shared" if shared else "pg_advisory_xact_lock"
    connection.execute(text(f"SELECT {function}(:number)"), {"number": _lock_number(name)})


def _lock_number(name: str) -> int:
    """The advisory lock key of a name: the same in every process (unlike `hash`)."""
    digest = hashlib.blake2b(name.encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big", signed=True)


IN_LIST_SIZE = 500


def driver_query_in(session: Session, sql: str, values: Iterable[Any],
                    before: Sequence[Any] = ()) -> list[Any]:
    """`driver_query` for an IN list of any length: the distinct `values`, in order, are
    asked IN_LIST_SIZE at a time; `before` are the parameters that precede the list."""
    ordered = sorted(set(values))
    rows: list[Any] = []
    for start in range(0, len(ordered), IN_LIST_SIZE):
        rows += driver_query(session, sql, [*before, *ordered[start:start + IN_LIST_SIZE]])
    return rows


def ping(engine: Engine) -> None:
    """Raise if the database does not answer."""
    with engine.connect() as connection:
        connection.execute(text("SELECT 1"))
