"""The demo store the analytic benchmarks (bench/segments.py, bench/rfm.py) run on, built
once per size and seed and cached, and its copy on a throwaway PostgreSQL server.

The SQLite store
----------------
`clientela demo --customers N --seed S` (the real command, in its own process, the venv's
Python) on a freshly migrated SQLite file (WAL, synchronous=FULL) in
`CACHE/demo-cN-sS.building/`; when it succeeds the folder is renamed `CACHE/demo-cN-sS/`,
so a half-built store is never reused (it is built again from scratch). It holds N
customers (names, genders, birthdays, cities; about 1.8 orders each over two years) and
N/2 anonymous visitors, and the last 14 days of tracked calls (about 5 per customer).
`demo.json` beside it records the command's wall time and summary line.

Then, once (`prepared.json` records it, with the seconds each step took):

- tags: a deterministic share of the live customers who signed up (those with an e-mail),
  drawn with NumPy from the seed, get "vip" (5 %), "b2b" (1 %) and "black-friday" (15 %),
  inserted in one bulk `INSERT INTO customer_tags (customer_id, tag, created_at)` through
  sqlite3 (the demo has no tags; `add_tags` one customer at a time would take hours);
- RFM: `clientela.analytics.service.compute_rfm(as_of=<the demo's anchor day>,
  now=<anchor>)`, the real service, so that every buyer has scores and a group.

"Now" for every benchmark on the store is the demo's anchor (the end of its generated
history, read back from the database), so windows such as "the last 7 days" mean the same
on every run however old the cache is.

The PostgreSQL copy
-------------------
`postgres_copy()` starts a throwaway server (tests/pg.py: fsync off, as the test suite
runs it, with memory as production would give it here: `PG_SETTINGS`), creates a
database, migrates it with the app's migrations (`upgrade`), and copies the tables the
benchmarks read (api_keys, products, customers, customer_tags, events, orders, order_items:
every column, every row) from the cached SQLite file with psycopg's `COPY ... FROM STDIN`,
foreign-key triggers off during the copy (`session_replication_role = replica`), then sets
the id sequences and runs `VACUUM ANALYZE` (the state autovacuum leaves a settled database
in). Identities, trait history, carts and refunds are not copied: no benchmark reads them.
"""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
from sqlalchemy import create_engine, select, text

from clientela.analytics.service import compute_rfm
from clientela.config import Settings
from clientela.core.types import db_time
from clientela.db import Base, build_engine, session_scope
from clientela.demo.loading import previous_anchor
from clientela.migrate import upgrade
from clientela.models import load_all
from clientela.team.models import ApiKey

REPO = Path(__file__).resolve().parents[1]
DEFAULT_CACHE = REPO / "var" / "bench-cache"
SECRET_KEY = "bench-secret-key-bench-secret-key"
CURRENCY = "BRL"
TAGS = (("vip", 0.05), ("b2b", 0.01), ("black-friday", 0.15))
PG_TABLES = ("api_keys", "products", "customers", "customer_tags", "events", "orders",
             "order_items")


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def settings_for(url: str, data_dir: Path) -> Settings:
    return Settings(database_url=url, data_dir=data_dir, secret_key=SECRET_KEY)


@dataclass(frozen=True)
class Store:
    path: Path  # the SQLite file
    customers: int
    seed: int
    anchor: datetime  # the demo's "now"
    rows: dict[str, int]  # rows of the main tables
    build: dict[str, Any] = field(default_factory=dict)  # how and how long it was built

    @property
    def url(self) -> str:
        return f"sqlite:///{self.path}"

    @property
    def settings(self) -> Settings:
        return settings_for(self.url, self.path.parent)


def demo_store(cache: Path, customers: int, seed: int) -> Store:
    """The prepared demo store of this size and seed, built (and cached) if need be."""
    folder = cache / f"demo-c{customers}-s{seed}"
    database = folder / "clientela.db"
    if not database.exists():
        building = folder.with_name(folder.name + ".building")
        if building.exists():
            log(f"removing an unfinished build in {building}")
            shutil.rmtree(building)
        building.mkdir(parents=True)
        log(f"building the demo store ({customers} customers, seed {seed}) in {building}: "
            f"about {customers / 900 / 60:.0f} min at 900 customers/s")
        seconds, said = run_demo(building / "clientela.db", customers, seed)
        (building / "demo.json").write_text(json.dumps(
            {"command": f"clientela demo --customers {customers} --seed {seed}",
             "seconds": round(seconds, 1), "said": said}, indent=1))
        building.rename(folder)
        log(f"demo store built in {seconds:.0f}s: {said}")
    _migrate(database)  # a cache built before the latest migrations catches up
    prepared = folder / "prepared.json"
    if not prepared.exists():
        _prepare(database, seed, prepared)
    build = {"cache": str(folder)}
    for name in ("demo.json", "prepared.json"):
        if (folder / name).exists():
            build[name.removesuffix(".json")] = json.loads((folder / name).read_text())
    anchor = datetime.fromisoformat(build["prepared"]["anchor"])
    return Store(path=database, customers=customers, seed=seed, anchor=anchor,
                 rows=table_rows(database), build=build)


def _migrate(database: Path) -> None:
    engine = build_engine(settings_for(f"sqlite:///{database}", database.parent))
    try:
        upgrade(engine)
    finally:
        engine.dispose()


def run_demo(database: Path, customers: int, seed: int) -> tuple[float, str]:
    """`clientela demo` into `database`, in its own process: (seconds, what it said)."""
    env = {**os.environ, "CLIENTELA_DATABASE_URL": f"sqlite:///{database}",
           "CLIENTELA_DATA_DIR": str(database.parent), "CLIENTELA_SECRET_KEY": SECRET_KEY}
    started = time.perf_counter()
    done = subprocess.run([str(Path(sys.executable).with_name("clientela")), "demo",
                           "--customers", str(customers), "--seed", str(seed)],
                          env=env, capture_output=True, text=True, check=False)
    seconds = time.perf_counter() - started
    if done.returncode != 0:
        raise SystemExit(f"demo failed: {done.stderr[-3000:]}")
    return seconds, done.stdout.strip().splitlines()[0]


def anchor_of(settings: Settings) -> datetime:
    """The demo's anchor: when its history ends (its calls were received then)."""
    engine = build_engine(settings)
    try:
        with session_scope(engine, writes=False) as session:
            source_id = session.scalar(select(ApiKey.id).where(ApiKey.name == "demo"))
        anchor = previous_anchor(engine=engine, source_id=source_id) if source_id else None
    finally:
        engine.dispose()
    if anchor is None:
        raise SystemExit("the cached store has no demo calls: delete it and run again")
    return anchor if anchor.tzinfo else anchor.replace(tzinfo=UTC)


def _prepare(database: Path, seed: int, prepared: Path) -> None:
    settings = settings_for(f"sqlite:///{database}", database.parent)
    anchor = anchor_of(settings)
    started = time.perf_counter()
    tagged = add_tags(database, seed, anchor)
    tag_seconds = time.perf_counter() - started
    log(f"tags added in {tag_seconds:.1f}s: {tagged}")
    engine = build_engine(settings)
    started = time.perf_counter()
    with session_scope(engine) as session:
        scored = compute_rfm(session=session, as_of=anchor.date(), now=anchor)
    rfm_seconds = time.perf_counter() - started
    engine.dispose()
    log(f"RFM computed in {rfm_seconds:.1f}s: {scored.customers} customers scored")
    prepared.write_text(json.dumps({
        "anchor": anchor.isoformat(), "tags": tagged, "tag_seconds": round(tag_seconds, 1),
        "rfm_customers": scored.customers, "rfm_as_of": anchor.date().isoformat(),
        "rfm_seconds": round(rfm_seconds, 1)}, indent=1))


def add_tags(database: Path, seed: int, anchor: datetime) -> dict[str, int]:
    """Tag a deterministic share of the live signed-up customers (see the docstring)."""
    connection = sqlite3.connect(database, isolation_level=None)
    for pragma in ("journal_mode=WAL", "synchronous=FULL", "foreign_keys=ON"):
        connection.execute(f"PRAGMA {pragma}")
    ids = np.array([row[0] for row in connection.execute(
        "SELECT id FROM customers WHERE merged_into_id IS NULL AND email IS NOT NULL "
        "ORDER BY id")], dtype=np.int64)
    rng = np.random.default_rng(seed)
    moment = db_time(anchor)
    rows: list[tuple[int, str, str | None]] = []
    counts = {}
    for tag, share in TAGS:
        chosen = np.sort(rng.choice(ids, size=round(share * len(ids)), replace=False))
        rows += [(int(cid), tag, moment) for cid in chosen]
        counts[tag] = len(chosen)
    connection.execute("BEGIN IMMEDIATE")
    connection.execute("DELETE FROM customer_tags")
    connection.executemany("INSERT INTO customer_tags (customer_id, tag, created_at) "
                           "VALUES (?, ?, ?)", rows)
    connection.execute("COMMIT")
    connection.close()
    return counts


def table_rows(database: Path, tables: Sequence[str] = (
        "customers", "events", "orders", "order_items", "customer_tags")) -> dict[str, int]:
    connection = sqlite3.connect(f"file:{database}?mode=ro", uri=True)
    try:
        return {name: connection.execute(f"SELECT count(*) FROM {name}").fetchone()[0]
                for name in tables}
    finally:
        connection.close()


# Memory as a production server on this machine (24 GiB) would be given: the usual quarter
# of RAM for shared buffers, and the planner told the OS caches most of the rest.
PG_SETTINGS = {"shared_buffers": "4GB", "effective_cache_size": "12GB"}


@contextmanager
def postgres_copy(store: Store, tables: Sequence[str] = PG_TABLES
                  ) -> Iterator[tuple[str, dict[str, Any]]]:
    """(SQLAlchemy URL of a PostgreSQL database holding a copy of the store's tables, what
    the copy took); the server is stopped and removed afterwards."""
    if str(REPO) not in sys.path:
        sys.path.insert(0, str(REPO))
    import psycopg
    from tests.pg import PostgresServer

    started = time.perf_counter()
    server = PostgresServer.start(PG_SETTINGS)
    log(f"PostgreSQL started on port {server.port}")
    try:
        admin = create_engine(server.admin_url, isolation_level="AUTOCOMMIT")
        with admin.connect() as connection:
            connection.execute(text("CREATE DATABASE clientela_bench"))
            version = connection.execute(text("SHOW server_version")).scalar()
        admin.dispose()
        url = server.url("clientela_bench")
        engine = build_engine(settings_for(url, store.path.parent))
        upgrade(engine)
        engine.dispose()
        migrated = time.perf_counter()
        copied = _copy_tables(store.path, f"host=127.0.0.1 port={server.port} user=clientela "
                              "dbname=clientela_bench", tables, psycopg)
        copy_seconds = time.perf_counter() - migrated
        analyzed = time.perf_counter()
        with psycopg.connect(f"host=127.0.0.1 port={server.port} user=clientela "
                             "dbname=clientela_bench", autocommit=True) as connection:
            connection.execute("VACUUM ANALYZE")
        done = {"server_version": version, "tables": copied,
                "copy_seconds": round(copy_seconds, 1),
                "vacuum_analyze_seconds": round(time.perf_counter() - analyzed, 1),
                "total_seconds": round(time.perf_counter() - started, 1)}
        log(f"PostgreSQL copy: {done}")
        yield url, done
    finally:
        server.stop()
        log("PostgreSQL stopped")


def _copy_tables(database: Path, conninfo: str, tables: Sequence[str], psycopg: Any
                 ) -> dict[str, int]:
    load_all()
    order = [table.name for table in Base.metadata.sorted_tables if table.name in tables]
    source = sqlite3.connect(f"file:{database}?mode=ro", uri=True)
    copied = {}
    with psycopg.connect(conninfo) as target:
        target.execute("SET session_replication_role = replica")  # no FK triggers
        for name in order:
            started = time.perf_counter()
            cursor = source.execute(f"SELECT * FROM {name}")
            columns = [column[0] for column in cursor.description]
            rows = 0
            with target.cursor() as out, out.copy(
                    f"COPY {name} ({', '.join(columns)}) FROM STDIN") as copy:
                while batch := cursor.fetchmany(10_000):
                    for row in batch:
                        copy.write_row(row)
                    rows += len(batch)
            if "id" in columns:
                target.execute(f"SELECT setval(pg_get_serial_sequence('{name}', 'id'), "
                               f"(SELECT coalesce(max(id), 0) + 1 FROM {name}), false)")
            target.commit()
            copied[name] = rows
            log(f"  copied {name}: {rows} rows in {time.perf_counter() - started:.1f}s")
    source.close()
    return copied
