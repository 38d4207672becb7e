"""Segment counts at scale on SQLite and PostgreSQL, next to DuckDB and pandas on the same data.

What is measured
----------------
1. The store: the demo shop at `--customers` customers (default 1,000,000; seed `--seed`),
   built once by `clientela demo` and cached under `--cache` (default var/bench-cache), with
   5 % of the signed-up customers tagged "vip" (plus "b2b" 1 % and "black-friday" 15 %, one
   bulk insert) and RFM computed by `compute_rfm`: see bench/_store.py, which says exactly
   how. The demo holds N customers, N/2 anonymous visitors (customers too, without orders)
   and its last 14 days of tracked calls, about 5 events per customer (about 5M at 1M
   customers: the demo's own volume, not 10M); the JSON gives the row counts. "Now" is the
   demo's anchor (the end of its history), so the windows mean the same on every run.

2. Six segments, as a marketer would write them (the rules are in the JSON):
   demographic  women in the state of São Paulo aged 25 to 40 (birthday between two dates);
   action       viewed a product of category "Calçados > Tênis" at least twice in the last
                7 days (an event property compared in JSON);
   behaviour    at least 3 orders and more than R$ 500 of revenue;
   rfm          RFM group Champions;
   tag          tagged vip;
   nested       any(all(RFM group At risk or Can't lose them, subscribed to e-mail,
                not(viewed a product in the last 14 days)), all(vip, more than 60 days
                since the last order)).

3. Ours: `clientela.segments.service.count(session=..., rule=..., now=anchor,
   currency="BRL")`, the real service (parse, compile, one COUNT over the compiled SQL) in a
   reading session, on the cached SQLite file (the app's engine: WAL, 64 MB page cache) and
   on PostgreSQL: a throwaway server (tests/pg.py, fsync off, shared_buffers 4GB: see
   bench/_store.py's PG_SETTINGS) with a
   database migrated by the app and the tables the segments read (api_keys, customers,
   customer_tags, events) copied from the same SQLite file with COPY, then VACUUM ANALYZE
   (see bench/_store.py). Each count runs once to warm up (so that the pages it reads are
   in the cache, as in a running shop), then `--repeat` times (default 3); `seconds` is
   the best.

4. The baselines, in the same run, on the same rows, with the same protocol (one warm-up,
   best of `--repeat`), timing the query only:
   - DuckDB (in-process analytic engine, all cores, as the limit): a DuckDB copy of the
     columns the segments read (customers, customer_tags, and events as (customer_id, event,
     timestamp, category) with the property already extracted from the JSON), made from the
     pandas frames below before any clock starts (DuckDB's sqlite extension cannot be
     downloaded here), queried with the same conditions written by hand in SQL;
   - pandas: the same columns read from the SQLite file into DataFrames before the clock
     (text columns as `category` dtype, times as datetime64), each segment a boolean-mask
     filter plus `groupby`/`isin` for the events and tags.
   Both get the event property as a ready column while ours reads it out of JSON at query
   time, so their figures err in their favour.

All four must give the same count for every segment: exit status 1 otherwise. A count of
ours that runs past `--warm-up-timeout` seconds (the warm-up, default 300) or `--timeout`
(a timed run, default 60) is stopped, reported as timed out with its plan, and left out of
that check. The JSON gives, per segment, the count, the seconds of each, `ratio_to_duckdb`
and `ratio_to_pandas` (their seconds / ours: above 1 means ours is faster) for SQLite and
PostgreSQL, and whether ours is under the 1 s goal. For a segment over 1 s the query plan
(EXPLAIN QUERY PLAN on SQLite, EXPLAIN (ANALYZE, BUFFERS) on PostgreSQL, plain EXPLAIN
when it timed out) goes to stderr and into the JSON. One JSON object goes to stdout,
progress to stderr.

    .venv/bin/python bench/segments.py [--customers N] [--seed S] [--cache DIR]
        [--repeat K] [--timeout S] [--warm-up-timeout S] [--no-postgresql]
"""

from __future__ import annotations

import argparse
import json
import sqlite3
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

import duckdb
import pandas as pd
from _store import (
    CURRENCY,
    DEFAULT_CACHE,
    Store,
    demo_store,
    log,
    postgres_copy,
    settings_for,
)
from sqlalchemy import Engine, event, func, select, text
from sqlalchemy.exc import OperationalError

from clientela.db import build_engine, session_scope
from clientela.segments import service

GOAL_SECONDS = 1.0
PG_TABLES = ("api_keys", "customers", "customer_tags", "events")  # what the segments read
CATEGORY = "Calçados > Tênis"


@dataclass(frozen=True)
class Moments:
    """The dates and times the rules name, from the store's anchor (naive UTC for the
    baselines)."""

    now: datetime
    born_from: date  # aged 25 to 40 at `now`: born from this day ...
    born_to: date  # ... to this one, both included
    since_7: datetime
    since_14: datetime
    quiet_before: datetime  # more than 60 whole days since the last order: at or before

    @classmethod
    def at(cls, now: datetime) -> Moments:
        today = now.date()
        naive = now.replace(tzinfo=None)
        return cls(now=now, born_from=_years_before(today, 41) + timedelta(days=1),
                   born_to=_years_before(today, 25), since_7=naive - timedelta(days=7),
                   since_14=naive - timedelta(days=14),
                   quiet_before=naive - timedelta(days=61))


def _years_before(day: date, years: int) -> date:
    try:
        return day.replace(year=day.year - years)
    except ValueError:  # 29 February
        return day.replace(year=day.year - years, day=28)


@dataclass
class Frames:
    customers: pd.DataFrame
    tags: pd.DataFrame
    events: pd.DataFrame


@dataclass(frozen=True)
class Segment:
    name: str
    rule: Callable[[Moments], dict[str, Any]]
    duckdb: Callable[[Moments], tuple[str, list[Any]]]
    pandas: Callable[[Frames, Moments], int]


def _live(c: pd.DataFrame) -> pd.Series:
    return c.merged_into_id.isna()


def _vip(f: Frames) -> pd.Series:
    return f.tags.customer_id[f.tags.tag.str.lower() == "vip"]


def _pandas_demographic(f: Frames, m: Moments) -> int:
    c = f.customers
    return int((_live(c) & (c.gender == "female") & (c.region == "SP")
                & c.birthday.between(pd.Timestamp(m.born_from), pd.Timestamp(m.born_to))).sum())


def _pandas_action(f: Frames, m: Moments) -> int:
    c, e = f.customers, f.events
    seen = e[(e.event == "Product Viewed") & (e.timestamp >= m.since_7)
             & (e.category == CATEGORY)]
    times = seen.groupby("customer_id").size()
    return int((_live(c) & c.id.isin(times.index[times >= 2])).sum())


def _pandas_behaviour(f: Frames, m: Moments) -> int:
    c = f.customers
    return int((_live(c) & (c.orders_count >= 3) & (c.revenue_cents > 50_000)).sum())


def _pandas_rfm(f: Frames, m: Moments) -> int:
    c = f.customers
    return int((_live(c) & (c.rfm_group == "Champions")).sum())


def _pandas_tag(f: Frames, m: Moments) -> int:
    c = f.customers
    return int((_live(c) & c.id.isin(_vip(f))).sum())


def _pandas_nested(f: Frames, m: Moments) -> int:
    c, e = f.customers, f.events
    viewed = e.customer_id[(e.event == "Product Viewed") & (e.timestamp >= m.since_14)]
    win_back = (c.rfm_group.isin(["At risk", "Can't lose them"])
                & (c.email_marketing == "subscribed") & ~c.id.isin(viewed.unique()))
    quiet_vip = c.id.isin(_vip(f)) & (c.last_order_at <= m.quiet_before)
    return int((_live(c) & (win_back | quiet_vip)).sum())


_LIVE = "SELECT count(*) FROM customers WHERE merged_into_id IS NULL AND "
_VIP = "id IN (SELECT customer_id FROM customer_tags WHERE lower(tag) = 'vip')"

SEGMENTS = (
    Segment(
        "demographic",
        lambda m: {"all": [
            {"field": "gender", "op": "eq", "value": "female"},
            {"field": "region", "op": "eq", "value": "SP"},
            {"field": "birthday", "op": "between",
             "value": [m.born_from.isoformat(), m.born_to.isoformat()]}]},
        lambda m: (_LIVE + "gender = 'female' AND region = 'SP' "
                   "AND birthday BETWEEN ? AND ?", [m.born_from, m.born_to]),
        _pandas_demographic),
    Segment(
        "action",
        lambda m: {"event": "Product Viewed",
                   "where": [{"field": "category", "op": "eq", "value": CATEGORY}],
                   "count": {"op": "gte", "value": 2}, "within_days": 7},
        lambda m: (_LIVE + "id IN (SELECT customer_id FROM events WHERE "
                   "event = 'Product Viewed' AND timestamp >= ? AND category = ? "
                   "GROUP BY customer_id HAVING count(*) >= 2)", [m.since_7, CATEGORY]),
        _pandas_action),
    Segment(
        "behaviour",
        lambda m: {"all": [{"field": "orders_count", "op": "gte", "value": 3},
                           {"field": "revenue", "op": "gt", "value": 500}]},
        lambda m: (_LIVE + "orders_count >= 3 AND revenue_cents > 50000", []),
        _pandas_behaviour),
    Segment(
        "rfm",
        lambda m: {"rfm_group": "Champions"},
        lambda m: (_LIVE + "rfm_group = 'Champions'", []),
        _pandas_rfm),
    Segment(
        "tag",
        lambda m: {"tag": "vip"},
        lambda m: (_LIVE + _VIP, []),
        _pandas_tag),
    Segment(
        "nested",
        lambda m: {"any": [
            {"all": [{"field": "rfm_group", "op": "in", "value": ["At risk", "Can't lose them"]},
                     {"field": "email_marketing", "op": "eq", "value": "subscribed"},
                     {"not": {"event": "Product Viewed", "within_days": 14}}]},
            {"all": [{"tag": "vip"},
                     {"field": "days_since_last_order", "op": "gt", "value": 60}]}]},
        lambda m: (_LIVE + "((rfm_group IN ('At risk', 'Can''t lose them') "
                   "AND email_marketing = 'subscribed' AND id NOT IN (SELECT customer_id "
                   "FROM events WHERE event = 'Product Viewed' AND timestamp >= ?)) OR ("
                   + _VIP + " AND last_order_at <= ?))", [m.since_14, m.quiet_before]),
        _pandas_nested),
)


def timed(work: Callable[[], int], repeat: int, before: Callable[[bool], None] = lambda _: None
          ) -> tuple[int, float]:
    """The count `work` gives (the same every time) and its best wall time over `repeat`
    runs after one warm-up; `before(warm_up)` runs, untimed, before each."""
    before(True)
    found = work()
    best = float("inf")
    for _ in range(repeat):
        before(False)
        started = time.perf_counter()
        again = work()
        best = min(best, time.perf_counter() - started)
        if again != found:
            raise SystemExit(f"the count changed between runs: {found} then {again}")
    return found, best


class Deadline:
    """Stops a query that runs too long: PostgreSQL's statement_timeout, and on SQLite a
    progress handler that interrupts the statement."""

    def __init__(self, engine: Engine) -> None:
        self.sqlite = engine.dialect.name == "sqlite"
        self.seconds, self.until = 0.0, float("inf")
        if self.sqlite:
            event.listen(engine, "connect", lambda connection, _record: connection
                         .set_progress_handler(self._late, 10_000))

    def _late(self) -> int:
        return 1 if time.perf_counter() > self.until else 0

    def start(self, session: Any, seconds: float) -> None:
        """Stop the session's next query after `seconds`."""
        if not self.sqlite:
            session.execute(text(f"SET statement_timeout = {int(seconds * 1000)}"))
        self.seconds, self.until = seconds, time.perf_counter() + seconds

    def stop(self, session: Any) -> None:
        if not self.sqlite:
            session.execute(text("SET statement_timeout = 0"))
        self.until = float("inf")


def ours(url: str, store: Store, moments: Moments, repeat: int, limits: tuple[float, float],
         label: str) -> dict[str, dict[str, Any]]:
    """Each segment's count and best seconds through the service, and the plan of those
    over the goal; a count that takes longer than its limit (`limits`: the warm-up's, the
    timed runs') is stopped and not repeated."""
    engine = build_engine(settings_for(url, store.path.parent))
    deadline = Deadline(engine)
    results: dict[str, dict[str, Any]] = {}
    try:
        with session_scope(engine, writes=False) as session:
            for segment in SEGMENTS:
                rule = segment.rule(moments)

                def count(rule: dict[str, Any] = rule) -> int:
                    return service.count(session=session, rule=rule, now=moments.now,
                                         currency=CURRENCY)

                def before(warm_up: bool) -> None:
                    deadline.start(session, limits[0] if warm_up else limits[1])

                try:
                    found, seconds = timed(count, repeat, before)
                except OperationalError as error:
                    session.rollback()
                    log(f"{label} {segment.name}: stopped after {deadline.seconds:g}s "
                        f"({str(error.orig).strip()})")
                    results[segment.name] = {"count": None, "seconds": None,
                                             "timed_out_after": deadline.seconds}
                    analyze = False
                else:
                    results[segment.name] = {"count": found, "seconds": seconds}
                    log(f"{label} {segment.name}: {found} in {seconds:.3f}s")
                    analyze = True
                deadline.stop(session)
                if analyze and seconds <= GOAL_SECONDS:
                    continue
                plan = explain(engine, session, rule, moments, analyze)
                results[segment.name]["plan"] = plan
                log("\n".join(f"    {line}" for line in plan))
    finally:
        engine.dispose()
    return results


def explain(engine: Engine, session: Any, rule: dict[str, Any], moments: Moments,
            analyze: bool) -> list[str]:
    """The plan of the count the service runs for `rule` (on PostgreSQL with what each step
    took, when `analyze`)."""
    sqlite = engine.dialect.name == "sqlite"
    prefix = "EXPLAIN QUERY PLAN " if sqlite else \
        "EXPLAIN (ANALYZE, BUFFERS) " if analyze else "EXPLAIN "

    def rewrite(_conn: Any, _cursor: Any, statement: str, parameters: Any, _context: Any,
                _many: bool) -> tuple[str, Any]:
        return (prefix + statement if statement.lstrip().upper().startswith("SELECT")
                else statement), parameters

    query = service.members_of(session=session, rule=rule, now=moments.now, currency=CURRENCY)
    event.listen(engine, "before_cursor_execute", rewrite, retval=True)
    try:
        rows = session.connection().execute(
            select(func.count()).select_from(query.subquery())).fetchall()
    finally:
        event.remove(engine, "before_cursor_execute", rewrite)
    if not sqlite:
        return [row[0] for row in rows]
    depth: dict[int, int] = {0: -1}
    lines = []
    for node, parent, _unused, detail in rows:
        depth[node] = depth.get(parent, -1) + 1
        lines.append("  " * depth[node] + detail)
    return lines


def load_frames(database: Path) -> Frames:
    """The columns the segments read, from the SQLite file."""
    connection = sqlite3.connect(f"file:{database}?mode=ro", uri=True)
    try:
        customers = pd.read_sql_query(
            "SELECT id, gender, region, birthday, email_marketing, orders_count, "
            "revenue_cents, last_order_at, rfm_group, merged_into_id FROM customers",
            connection)
        tags = pd.read_sql_query("SELECT customer_id, tag FROM customer_tags", connection)
        events = pd.read_sql_query(
            "SELECT customer_id, event, timestamp, json_extract(properties, '$.category') "
            "AS category FROM events", connection)
    finally:
        connection.close()
    for column in ("gender", "region", "email_marketing", "rfm_group"):
        customers[column] = customers[column].astype("category")
    customers["birthday"] = pd.to_datetime(customers.birthday, format="%Y-%m-%d")
    customers["last_order_at"] = pd.to_datetime(customers.last_order_at, format="ISO8601")
    customers["merged_into_id"] = customers.merged_into_id.astype("Int64")
    tags["tag"] = tags.tag.astype("category")
    for column in ("event", "category"):
        events[column] = events[column].astype("category")
    events["timestamp"] = pd.to_datetime(events.timestamp, format="ISO8601")
    return Frames(customers, tags, events)


def duckdb_copy(frames: Frames) -> duckdb.DuckDBPyConnection:
    connection = duckdb.connect()
    for name, frame in (("customers", frames.customers), ("customer_tags", frames.tags),
                        ("events", frames.events)):
        connection.register("frame", frame)
        connection.execute(f"CREATE TABLE {name} AS SELECT * FROM frame")
        connection.unregister("frame")
    return connection


def baselines(store: Store, moments: Moments, repeat: int
              ) -> tuple[dict[str, dict[str, Any]], dict[str, Any]]:
    started = time.perf_counter()
    frames = load_frames(store.path)
    load_seconds = time.perf_counter() - started
    log(f"pandas frames loaded in {load_seconds:.1f}s: "
        f"{frames.customers.memory_usage(deep=True).sum() / 1e6:.0f} MB customers, "
        f"{frames.events.memory_usage(deep=True).sum() / 1e6:.0f} MB events")
    started = time.perf_counter()
    connection = duckdb_copy(frames)
    copy_seconds = time.perf_counter() - started
    log(f"DuckDB copy made in {copy_seconds:.1f}s")
    results: dict[str, dict[str, Any]] = {}
    for segment in SEGMENTS:
        sql, parameters = segment.duckdb(moments)
        in_duckdb, duck_seconds = timed(lambda sql=sql, parameters=parameters: int(  # type: ignore[misc]
            connection.execute(sql, parameters).fetchone()[0]), repeat)
        in_pandas, pandas_seconds = timed(
            lambda segment=segment: segment.pandas(frames, moments), repeat)  # type: ignore[misc]
        log(f"duckdb {segment.name}: {in_duckdb} in {duck_seconds:.3f}s; "
            f"pandas: {in_pandas} in {pandas_seconds:.3f}s")
        results[segment.name] = {"duckdb": {"count": in_duckdb, "seconds": duck_seconds},
                                 "pandas": {"count": in_pandas, "seconds": pandas_seconds}}
    about = {
        "duckdb": {"what": "DuckDB in-process copy of the columns read (events with the "
                           "category property as a column), hand-written SQL, query only",
                   "version": duckdb.__version__,
                   "threads": int(connection.execute(
                       "SELECT current_setting('threads')").fetchone()[0]),
                   "copy_seconds": round(copy_seconds, 1)},
        "pandas": {"what": "DataFrames of the same columns (category dtypes, datetime64), "
                           "boolean masks, groupby and isin; filtering only",
                   "version": pd.__version__, "load_seconds": round(load_seconds, 1)},
    }
    connection.close()
    return results, about


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--customers", type=int, default=1_000_000, help="Demo customers.")
    parser.add_argument("--seed", type=int, default=7, help="The demo's seed.")
    parser.add_argument("--cache", type=Path, default=DEFAULT_CACHE,
                        help="Folder of cached demo stores (built when missing).")
    parser.add_argument("--repeat", type=int, default=3, help="Timed runs after the warm-up.")
    parser.add_argument("--timeout", type=float, default=60.0,
                        help="Seconds after which one of our timed counts is stopped.")
    parser.add_argument("--warm-up-timeout", type=float, default=300.0,
                        help="The same for the warm-up run (from a cold cache).")
    parser.add_argument("--no-postgresql", action="store_true",
                        help="SQLite and the baselines only.")
    return parser.parse_args(argv)


def _rounded(seconds: float) -> float:
    return float(f"{seconds:.4g}")


def _ratio(theirs: float, ours: float) -> float:
    return float(f"{theirs / ours:.3g}")


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    store = demo_store(args.cache.resolve(), args.customers, args.seed)
    moments = Moments.at(store.anchor)
    log(f"store: {store.rows}, now = {store.anchor.isoformat()}")
    measured: dict[str, dict[str, dict[str, Any]]] = {
        "sqlite": ours(store.url, store, moments, args.repeat,
                       (args.warm_up_timeout, args.timeout), "sqlite")}
    found, about = baselines(store, moments, args.repeat)
    postgresql: dict[str, Any] | None = None
    if not args.no_postgresql:
        with postgres_copy(store, PG_TABLES) as (url, copied):
            postgresql = copied
            measured["postgresql"] = ours(url, store, moments, args.repeat,
                                          (args.warm_up_timeout, args.timeout),
                                          "postgresql")
    report, wrong, slow, stopped = [], [], [], []
    for segment in SEGMENTS:
        name = segment.name
        counts = {database: measured[database][name]["count"] for database in measured}
        counts.update({other: found[name][other]["count"] for other in ("duckdb", "pandas")})
        answered = {value for value in counts.values() if value is not None}
        if len(answered) != 1:
            wrong.append(f"{name}: {counts}")
        seconds = {database: measured[database][name]["seconds"] for database in measured}
        duck = found[name]["duckdb"]["seconds"]
        panda = found[name]["pandas"]["seconds"]
        entry: dict[str, Any] = {
            "name": name, "rule": segment.rule(moments),
            "count": answered.pop() if len(answered) == 1 else counts,
            "seconds": {**{db: s and _rounded(s) for db, s in seconds.items()},
                        "duckdb": _rounded(duck), "pandas": _rounded(panda)},
            "ratio_to_duckdb": {db: s and _ratio(duck, s) for db, s in seconds.items()},
            "ratio_to_pandas": {db: s and _ratio(panda, s) for db, s in seconds.items()},
            "under_1s": {db: s is not None and s < GOAL_SECONDS for db, s in seconds.items()},
        }
        timed_out = {db: measured[db][name]["timed_out_after"] for db in measured
                     if measured[db][name].get("timed_out_after")}
        if timed_out:
            entry["timed_out_after"] = timed_out
            stopped += [f"{name} on {db}" for db in timed_out]
        plans = {db: measured[db][name]["plan"] for db in measured
                 if "plan" in measured[db][name]}
        if plans:
            entry["plans"] = plans
        slow += [f"{name} on {db}" for db, under in entry["under_1s"].items() if not under]
        report.append(entry)
    if wrong:
        log("verification failed: the counts differ: " + "; ".join(wrong))
    print(json.dumps({
        "benchmark": "segments",
        "customers": store.customers,
        "seed": store.seed,
        "now": store.anchor.isoformat(),
        "rows": store.rows,
        "store": store.build,
        "postgresql": postgresql,
        "repeat": args.repeat,
        "baselines": about,
        "segments": report,
        "goal": f"every count under {GOAL_SECONDS:g} s on both databases",
        "goal_met": not slow,
        "over_goal": slow,
        "timed_out": stopped,
        "verified": not wrong,
    }, default=str), flush=True)
    return 1 if wrong else 0


if __name__ == "__main__":
    sys.exit(main())
