"""RFM scoring at scale (`clientela.analytics.service.compute_rfm`) next to the usual pandas
version (`groupby` + `pd.qcut` on ranks), on the same purchase log.

What is measured
----------------
1. The store: the demo shop at `--customers` customers (default 1,000,000; seed `--seed`),
   built once by `clientela demo` and cached under `--cache` (default var/bench-cache):
   see bench/_store.py. Its orders are about 1.8 per customer over two years; the buyers
   (about 80 % of the customers) are the ones scored. RFM is computed as of the demo's
   anchor day (the end of its history), so every run scores the same purchases.

2. Ours, on the cached SQLite file (the app's engine: WAL, synchronous=FULL):
   - `compute_seconds`: `compute_rfm(session=..., as_of=<anchor day>, now=<anchor>)`, the
     real service in a writing session, commit included: reading the purchase log
     (`commerce.queries.purchase_log`), scoring in NumPy, and storing every buyer's three
     scores and group (and clearing anyone else's). The same scores are written on every
     run, so the store is left as it was.
   - `read_seconds`: `purchase_log(...)` alone (the orders read into arrays);
   - `score_seconds`: the arrays step alone, from the purchase log to every buyer's scores
     and group: the same two calls as `compute_rfm`, `analytics.rfm.buyers` (per-customer
     last day, count and sum, counted in arrays indexed by customer id) and
     `analytics.rfm.score` (checked to give exactly the scores `compute_rfm` stored).
   With `--postgresql`, `compute_seconds` and `read_seconds` also on a PostgreSQL copy of
   the customers and orders (tests/pg.py's throwaway server; see bench/_store.py).

3. The baseline, in the same run: the tutorial pandas RFM on the same purchases.
   - `read_seconds`: `pd.read_sql_query` of the same SQL through the same driver, days
     parsed with `pd.to_datetime`;
   - `score_seconds`: on that DataFrame (read before the clock): `groupby("customer_id")
     .agg(last day, count, sum)`, recency in days, then `pd.qcut(x.rank(method="first"),
     5, labels=...)` for each of R, F and M, and the group looked up in the same R×F grid
     with NumPy (vectorised; the tutorials' regex `replace` is far slower, so the ratio
     errs low). It stores nothing.
   `ratio_scoring` is pandas' score_seconds / ours (the goal: at least 5);
   `ratio_read_and_score` compares read + score on each side; `ratio_compute` is pandas'
   read + score over our whole compute, which also writes every buyer's scores.

Every step runs `--repeat` times (default 3), the best time kept. Checks (exit status 1 if
one fails): both score exactly the same customers; `compute_rfm` stored exactly the scores
and groups of the arrays step; and where the two methods must agree they do: pandas'
`rank(method="first")` splits equal values across quintiles where ours keeps them together,
so each of R, F and M is compared on the customers whose whole tie group falls inside one
of pandas' quintiles, away from its edges (`compared` gives how many). One JSON object goes
to stdout, progress to stderr.

    .venv/bin/python bench/rfm.py [--customers N] [--seed S] [--cache DIR] [--repeat K]
        [--postgresql]
"""

from __future__ import annotations

import argparse
import json
import sqlite3
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from datetime import time as clock
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from _store import (
    DEFAULT_CACHE,
    Store,
    demo_store,
    log,
    postgres_copy,
    settings_for,
)
from numpy.typing import NDArray
from sqlalchemy import Engine, create_engine, text

from clientela.analytics import rfm
from clientela.analytics.service import compute_rfm
from clientela.commerce.queries import PurchaseLog, purchase_log
from clientela.core.types import db_time
from clientela.db import build_engine, session_scope

GOAL_RATIO = 5.0
PURCHASES = ("SELECT customer_id, {day} AS day, coalesce(net_store_cents, 0) AS value "
             "FROM orders WHERE status NOT IN ('cancelled', 'refunded') AND placed_at < {mark}")
GRID = np.asarray(rfm.GRID)


@dataclass(frozen=True)
class Scored:
    """Scores of each customer, in customer id order."""

    customer: NDArray[np.int64]
    recency: NDArray[np.int64]
    frequency: NDArray[np.int64]
    monetary: NDArray[np.int64]
    group: NDArray[Any]
    # The values scored (days since the last purchase, purchases, spend), for the checks.
    days: NDArray[np.int64]
    purchases: NDArray[np.int64]
    spend: NDArray[np.int64]


def timed(work: Callable[[], Any], repeat: int) -> tuple[Any, float]:
    """What `work` returns (its last run) and its best wall time over `repeat` runs."""
    best, result = float("inf"), None
    for _ in range(repeat):
        started = time.perf_counter()
        result = work()
        best = min(best, time.perf_counter() - started)
    return result, best


def until_of(as_of: date) -> datetime:
    return datetime.combine(as_of + timedelta(days=1), clock(), tzinfo=UTC)


# --- ours -----------------------------------------------------------------------------------


def our_compute(engine: Engine, as_of: date, now: datetime) -> int:
    with session_scope(engine) as session:
        return compute_rfm(session=session, as_of=as_of, now=now).customers


def our_read(engine: Engine, as_of: date) -> PurchaseLog:
    with session_scope(engine, writes=False) as session:
        return purchase_log(session=session, until=until_of(as_of))


def our_score(log: PurchaseLog, as_of: date) -> Scored:
    """The arrays step of `compute_rfm`: per-customer recency, frequency and spend
    (`rfm.buyers`), then `rfm.score`."""
    bought = rfm.buyers(log.customer, log.day, log.value, np.datetime64(as_of, "D"))
    scored = rfm.score(bought.days_since_last, bought.purchases, bought.spend)
    return Scored(bought.customer, scored.recency, scored.frequency, scored.monetary,
                  scored.group_names, bought.days_since_last, bought.purchases, bought.spend)


def stored_scores(database: Path) -> pd.DataFrame:
    connection = sqlite3.connect(f"file:{database}?mode=ro", uri=True)
    try:
        return pd.read_sql_query(
            "SELECT id, rfm_recency, rfm_frequency, rfm_monetary, rfm_group FROM customers "
            "WHERE rfm_group IS NOT NULL ORDER BY id", connection)
    finally:
        connection.close()


# --- pandas ---------------------------------------------------------------------------------


def pandas_read(connection: Any, as_of: date, sqlite: bool) -> pd.DataFrame:
    """The purchase log as a DataFrame: sqlite3 on SQLite, a SQLAlchemy connection (psycopg)
    on PostgreSQL."""
    sql = PURCHASES.format(day="substr(placed_at, 1, 10)" if sqlite
                           else "to_char(placed_at, 'YYYY-MM-DD')",
                           mark="?" if sqlite else ":until")
    until = db_time(until_of(as_of))
    frame = pd.read_sql_query(sql if sqlite else text(sql), connection,
                              params=(until,) if sqlite else {"until": until})
    frame["day"] = pd.to_datetime(frame["day"], format="%Y-%m-%d")
    return frame


def pandas_score(purchases: pd.DataFrame, as_of: date) -> pd.DataFrame:
    """The tutorial RFM: aggregate per customer, then quintiles of the ranks."""
    table = purchases.groupby("customer_id").agg(last=("day", "max"),
                                                 frequency=("day", "size"),
                                                 monetary=("value", "sum"))
    table["recency"] = (pd.Timestamp(as_of) - table["last"]).dt.days
    table["R"] = pd.qcut(table["recency"].rank(method="first"), 5,
                         labels=[5, 4, 3, 2, 1]).astype(np.int64)
    table["F"] = pd.qcut(table["frequency"].rank(method="first"), 5,
                         labels=[1, 2, 3, 4, 5]).astype(np.int64)
    table["M"] = pd.qcut(table["monetary"].rank(method="first"), 5,
                         labels=[1, 2, 3, 4, 5]).astype(np.int64)
    table["group"] = GRID[table["R"].to_numpy() - 1, table["F"].to_numpy() - 1]
    return table


# --- checks ---------------------------------------------------------------------------------


def agreement(values: NDArray[Any], ours: NDArray[np.int64], theirs: NDArray[np.int64]
              ) -> dict[str, int]:
    """Ours against pandas' scores where they must agree: on customers whose tie group of
    `values` (ranked ascending, as pandas ranks them) lies inside one quintile, more than one
    place from each edge."""
    ordered = np.sort(values, kind="stable")
    low = np.searchsorted(ordered, values, side="left") + 1  # first rank of the tie group
    high = np.searchsorted(ordered, values, side="right")  # last rank
    edges = len(values) * np.arange(1, 5) / 5
    touches = ((low[:, None] - 1 <= edges) & (edges <= high[:, None] + 1)).any(axis=1)
    compared = ~touches
    return {"compared": int(compared.sum()),
            "differ": int((compared & (ours != theirs)).sum())}


def verify(ours: Scored, theirs: pd.DataFrame, stored: pd.DataFrame) -> tuple[dict[str, Any],
                                                                             list[str]]:
    problems = []
    if not np.array_equal(ours.customer, theirs.index.to_numpy()):
        problems.append(f"pandas scored {len(theirs)} customers, ours {len(ours.customer)}, "
                        "not the same ones")
        return {}, problems
    if not (np.array_equal(stored["id"].to_numpy(), ours.customer)
            and np.array_equal(stored["rfm_recency"].to_numpy(), ours.recency)
            and np.array_equal(stored["rfm_frequency"].to_numpy(), ours.frequency)
            and np.array_equal(stored["rfm_monetary"].to_numpy(), ours.monetary)
            and np.array_equal(stored["rfm_group"].to_numpy().astype(str),
                               ours.group.astype(str))):
        problems.append("compute_rfm stored other scores than the arrays step gives")
    if not (np.array_equal(theirs["recency"].to_numpy(), ours.days)
            and np.array_equal(theirs["frequency"].to_numpy(), ours.purchases)
            and np.array_equal(theirs["monetary"].to_numpy(), ours.spend)):
        problems.append("pandas aggregated other recency, frequency or spend values")
    checks = {
        "customers": len(ours.customer),
        "recency": agreement(ours.days, ours.recency, theirs["R"].to_numpy()),
        "frequency": agreement(ours.purchases, ours.frequency, theirs["F"].to_numpy()),
        "monetary": agreement(ours.spend, ours.monetary, theirs["M"].to_numpy()),
    }
    for name in ("recency", "frequency", "monetary"):
        if checks[name]["differ"]:
            problems.append(f"{name}: {checks[name]['differ']} of {checks[name]['compared']} "
                            "customers scored differently where the methods agree")
    same_group = ours.group.astype(str) == theirs["group"].to_numpy().astype(str)
    checks["same_group_share"] = round(float(same_group.mean()), 4)
    return checks, problems


# --- runs -----------------------------------------------------------------------------------


def run_sqlite(store: Store, repeat: int) -> tuple[dict[str, Any], Scored, pd.DataFrame,
                                                   pd.DataFrame]:
    as_of, now = store.anchor.date(), store.anchor
    engine = build_engine(store.settings)
    try:
        scored_count, compute_seconds = timed(lambda: our_compute(engine, as_of, now), repeat)
        log(f"ours: compute_rfm scored {scored_count} customers in {compute_seconds:.2f}s")
        purchases, read_seconds = timed(lambda: our_read(engine, as_of), repeat)
        log(f"ours: purchase log of {len(purchases.customer)} orders read in "
            f"{read_seconds:.2f}s")
        ours, score_seconds = timed(lambda: our_score(purchases, as_of), repeat)
        log(f"ours: scored in {score_seconds:.3f}s")
    finally:
        engine.dispose()
    connection = sqlite3.connect(f"file:{store.path}?mode=ro", uri=True)
    try:
        frame, pandas_read_seconds = timed(lambda: pandas_read(connection, as_of, True),
                                           repeat)
    finally:
        connection.close()
    log(f"pandas: read in {pandas_read_seconds:.2f}s")
    theirs, pandas_score_seconds = timed(lambda: pandas_score(frame, as_of), repeat)
    log(f"pandas: scored in {pandas_score_seconds:.3f}s")
    figures = {
        "orders_read": len(purchases.customer),
        "ours": {"compute_seconds": round(compute_seconds, 3),
                 "read_seconds": round(read_seconds, 3),
                 "score_seconds": round(score_seconds, 4)},
        "pandas": {"read_seconds": round(pandas_read_seconds, 3),
                   "score_seconds": round(pandas_score_seconds, 4)},
        "ratio_scoring": round(pandas_score_seconds / score_seconds, 2),
        "ratio_read_and_score": round((pandas_read_seconds + pandas_score_seconds)
                                      / (read_seconds + score_seconds), 2),
        "ratio_compute": round((pandas_read_seconds + pandas_score_seconds)
                               / compute_seconds, 2),
    }
    return figures, ours, theirs, stored_scores(store.path)


def run_postgresql(store: Store, repeat: int) -> dict[str, Any]:
    as_of, now = store.anchor.date(), store.anchor
    with postgres_copy(store, ("customers", "orders")) as (url, copied):
        engine = build_engine(settings_for(url, store.path.parent))
        try:
            scored_count, compute_seconds = timed(lambda: our_compute(engine, as_of, now),
                                                  repeat)
            log(f"postgresql ours: compute_rfm scored {scored_count} in "
                f"{compute_seconds:.2f}s")
            purchases, read_seconds = timed(lambda: our_read(engine, as_of), repeat)
        finally:
            engine.dispose()
        plain = create_engine(url)
        try:
            with plain.connect() as connection:
                frame, pandas_read_seconds = timed(
                    lambda: pandas_read(connection, as_of, False), repeat)
        finally:
            plain.dispose()
    log(f"postgresql: ours read in {read_seconds:.2f}s, pandas in {pandas_read_seconds:.2f}s")
    if len(frame) != len(purchases.customer):
        raise SystemExit(f"postgresql: pandas read {len(frame)} orders, ours "
                         f"{len(purchases.customer)}")
    return {"copy": copied, "customers_scored": scored_count,
            "ours": {"compute_seconds": round(compute_seconds, 3),
                     "read_seconds": round(read_seconds, 3)},
            "pandas": {"read_seconds": round(pandas_read_seconds, 3)}}


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--customers", type=int, default=1_000_000, help="Demo customers.")
    parser.add_argument("--seed", type=int, default=7, help="The demo's seed.")
    parser.add_argument("--cache", type=Path, default=DEFAULT_CACHE,
                        help="Folder of cached demo stores (built when missing).")
    parser.add_argument("--repeat", type=int, default=3, help="Timed runs of each step.")
    parser.add_argument("--postgresql", action="store_true",
                        help="Also time compute_rfm and both reads on PostgreSQL.")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    store = demo_store(args.cache.resolve(), args.customers, args.seed)
    log(f"store: {store.rows}, as of {store.anchor.date()}")
    figures, ours, theirs, stored = run_sqlite(store, args.repeat)
    checks, problems = verify(ours, theirs, stored)
    postgresql = run_postgresql(store, args.repeat) if args.postgresql else None
    if postgresql and postgresql["customers_scored"] != len(ours.customer):
        problems.append(f"postgresql: {postgresql['customers_scored']} customers scored, "
                        f"{len(ours.customer)} on SQLite")
    for problem in problems:
        log(f"verification failed: {problem}")
    print(json.dumps({
        "benchmark": "rfm",
        "database": "sqlite",
        "customers": store.customers,
        "seed": store.seed,
        "as_of": store.anchor.date().isoformat(),
        "rows": store.rows,
        "store": store.build,
        "customers_scored": len(ours.customer),
        "repeat": args.repeat,
        **figures,
        "baseline": {"what": "pandas groupby + qcut on rank(method='first'), group from the "
                             "same grid; read with pd.read_sql_query; stores nothing",
                     "pandas": pd.__version__},
        "goal": f"ratio_scoring at least {GOAL_RATIO:g}",
        "goal_met": figures["ratio_scoring"] >= GOAL_RATIO,
        "checks": checks,
        "postgresql": postgresql,
        "verified": not problems,
    }, default=str), flush=True)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
