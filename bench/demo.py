"""Demo shop load rate (`clientela demo --customers N`), next to a raw copy of what it stored.

What is measured
----------------
1. `clientela demo --customers N` (default 100,000), the real command in its own process
   (the venv's Python), on a freshly migrated SQLite file (WAL, synchronous=FULL): generating
   the shop with NumPy, recording every sign-up and tracked call through the ingestion
   service, the order history through the bulk order loader, consent, and abandoning the
   carts left alone. `customers_per_second` and `calls_per_second` are over the command's
   wall time; `rows_per_second` counts every row it left in the database.

2. The baseline, in the same run: every row of every table the demo filled, read back from
   its database before the clock starts, inserted into a second freshly migrated database
   straight through sqlite3's executemany with the app's pragmas, in one transaction with
   foreign keys checked at the commit. Before that, the load is verified: every call
   stored once, one order per purchase the generator makes for that seed and anchor, one
   user id per customer. It is the bare cost of storing the same rows durably
   with the same schema and indexes; `ratio_to_baseline` is how much of that rate the demo
   achieves while also generating, validating, resolving identities and computing profiles.

One JSON object goes to stdout, progress to stderr; exit status 1 when the command fails or
the copy differs.

    .venv/bin/python bench/demo.py [--customers N] [--seed S]
"""

from __future__ import annotations

import argparse
import json
import sqlite3
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from _store import SECRET_KEY, log, run_demo
from sqlalchemy import select

from clientela.config import Settings
from clientela.db import Base, build_engine, session_scope
from clientela.demo.loading import previous_anchor
from clientela.demo.store import generate
from clientela.migrate import upgrade
from clientela.models import load_all
from clientela.team.models import ApiKey


def migrated(folder: Path) -> Path:
    folder.mkdir()
    settings = Settings(database_url=f"sqlite:///{folder / 'clientela.db'}", data_dir=folder,
                        secret_key=SECRET_KEY)
    engine = build_engine(settings)
    upgrade(engine)
    engine.dispose()
    return folder / "clientela.db"


def table_rows(database: Path) -> dict[str, tuple[list[str], list[tuple[Any, ...]]]]:
    """Every table's columns and rows, parents before children."""
    load_all()
    connection = sqlite3.connect(database)
    found = {}
    for table in Base.metadata.sorted_tables:
        cursor = connection.execute(f"SELECT * FROM {table.name}")
        rows = cursor.fetchall()
        if rows:
            found[table.name] = ([column[0] for column in cursor.description], rows)
    connection.close()
    return found


def verify(database: Path, said: str, calls: int,
           tables: dict[str, tuple[list[str], list[tuple[Any, ...]]]],
           args: argparse.Namespace) -> str | None:
    """What is wrong with the load, if anything: every call new, one order per generated
    purchase, one user id per customer."""
    if f"{calls} calls ({calls} new, 0 already loaded)" not in said:
        return f"not every call was stored once: {said}"
    settings = Settings(database_url=f"sqlite:///{database}", data_dir=database.parent,
                        secret_key=SECRET_KEY)
    engine = build_engine(settings)
    with session_scope(engine, writes=False) as session:
        source_id = session.scalar(select(ApiKey.id).where(ApiKey.name == "demo"))
    anchor = previous_anchor(engine=engine, source_id=source_id) if source_id else None
    engine.dispose()
    if anchor is None:
        return "the demo's calls are missing"
    shop = generate(customers=args.customers, seed=args.seed, anchor=anchor)
    orders = len(tables.get("orders", ([], []))[1])
    if orders != len(shop.purchases):
        return f"{orders} orders stored for {len(shop.purchases)} generated purchases"
    user_ids = sum(1 for row in tables["identities"][1] if "user_id" in row)
    if user_ids != args.customers:
        return f"{user_ids} user ids for {args.customers} customers"
    return None


def baseline(database: Path, tables: dict[str, tuple[list[str], list[tuple[Any, ...]]]]
             ) -> float:
    connection = sqlite3.connect(database, isolation_level=None)
    for pragma in ("journal_mode=WAL", "synchronous=FULL", "foreign_keys=ON"):
        connection.execute(f"PRAGMA {pragma}")
    connection.execute("DELETE FROM alembic_version")  # not in the metadata: never copied
    started = time.perf_counter()
    connection.execute("BEGIN IMMEDIATE")
    connection.execute("PRAGMA defer_foreign_keys=ON")
    for name, (columns, rows) in tables.items():
        marks = ", ".join("?" * len(columns))
        connection.executemany(f"INSERT INTO {name} ({', '.join(columns)}) VALUES ({marks})",
                               rows)
    connection.execute("COMMIT")
    seconds = time.perf_counter() - started
    connection.close()
    return seconds


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--customers", type=int, default=100_000, help="Demo customers.")
    parser.add_argument("--seed", type=int, default=7, help="The demo's seed.")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="clientela-bench-") as temp:
        folder = Path(temp)
        database = migrated(folder / "demo")
        seconds, said = run_demo(database, args.customers, args.seed)
        log(f"{said}\nwall time {seconds:.1f}s")
        calls = int(said.split("past orders, ")[1].split(" calls")[0])
        tables = table_rows(database)
        problem = verify(database, said, calls, tables, args)
        if problem:
            log(f"verification failed: {problem}")
            return 1
        rows = sum(len(stored) for _columns, stored in tables.values())
        log("rows: " + ", ".join(f"{name} {len(table[1])}" for name, table in tables.items()))
        copy = migrated(folder / "baseline")
        baseline_seconds = baseline(copy, tables)
        copied = {name: len(table[1]) for name, table in table_rows(copy).items()}
        if copied != {name: len(table[1]) for name, table in tables.items()}:
            log(f"baseline copy differs: {copied}")
            return 1
        log(f"baseline: {rows} rows in {baseline_seconds:.1f}s")
    print(json.dumps({
        "benchmark": "demo",
        "database": "sqlite",
        "customers": args.customers,
        "calls": calls,
        "rows": rows,
        "customers_per_second": round(args.customers / seconds, 1),
        "calls_per_second": round(calls / seconds, 1),
        "rows_per_second": round(rows / seconds, 1),
        "baseline": {"what": "raw executemany copy of every stored row, one transaction",
                     "rows_per_second": round(rows / baseline_seconds, 1)},
        "ratio_to_baseline": round(baseline_seconds / seconds, 4),
    }), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
