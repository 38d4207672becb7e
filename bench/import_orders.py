"""CSV order import throughput (`clientela import orders FILE.csv`), next to a raw insert.

What is measured
----------------
1. A CSV file of `--rows` order rows (default 1,000,000), one row per order item, as shops
   export them: orders of 1-4 items (about 2.5 on average) placed over two years by about
   one customer per 4 orders, each named by user id and e-mail with a first name; statuses
   mostly paid, some fulfilled, cancelled and refunded; BRL amounts; 2,000 products with
   SKU, name, category and brand. The file is written before any clock starts.

2. `clientela import orders FILE.csv`, the real command in its own process (the venv's
   Python), on a freshly migrated SQLite file (WAL, synchronous=FULL): reading, checking
   every row, finding and creating the customers, writing orders, items, products, traits
   and totals, and the commit. `rows_per_second` is rows / the command's wall time; the
   command must report every row imported and none skipped, and the database must then hold
   exactly the file's orders and items.

   Then the database must hold exactly the file's orders, items and order totals, one
   customer per buyer with a user id and an e-mail, and profile totals that count every
   order but the cancelled ones and the revenue of all but the refunded ones.

3. The baseline, in the same run: the customers, identities, orders and items (the values
   the import stores, computed by this script from the generated data) inserted into a
   second freshly migrated database straight through sqlite3's executemany with the app's
   pragmas, in one transaction, the rows built before its clock starts. It leaves out what
   the import also does (the products the SKUs name, trait history, profile totals), so
   the baseline is the cheaper job and `ratio_to_baseline` (how much of its rate the whole
   import achieves) errs low.

One JSON object goes to stdout, progress to stderr; exit status 1 when a count is wrong.

    .venv/bin/python bench/import_orders.py [--rows N] [--seed S]
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import random
import sqlite3
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import func, select

from clientela.commerce.models import Order, OrderItem
from clientela.config import Settings
from clientela.customers.models import Customer, Identity
from clientela.db import build_engine, session_scope
from clientela.migrate import upgrade

SECRET_KEY = "bench-secret-key-bench-secret-key"
HEADER = ("order_id", "customer_user_id", "customer_email", "customer_first_name", "placed_at",
          "status", "currency", "total", "shipping", "sku", "product_name", "category", "brand",
          "quantity", "unit_price")
STATUSES = (("paid", 0.70), ("fulfilled", 0.20), ("cancelled", 0.05), ("refunded", 0.05))
CATEGORIES = ("Calçados > Tênis", "Roupas > Camisetas", "Roupas > Jaquetas", "Acessórios",
              "Casa > Cozinha", "Beleza")
BRANDS = ("Garoa", "Pampa", "Sertão", "Maré", "Cerrado")
NAMES = ("Ana", "Bruno", "Carla", "Diego", "Eduarda", "Felipe", "Gabriela", "Henrique")


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


@dataclass
class Generated:
    rows: int = 0
    orders: list[tuple[str, int, datetime, str, int, int]] = field(default_factory=list)
    items: list[tuple[int, str, str, str, str, int, int]] = field(default_factory=list)
    customers: int = 0


def write_file(path: Path, rows: int, seed: int) -> Generated:
    """The CSV file, and what it says (orders with their customer number, status, total and
    shipping; items with their order's place in `orders`)."""
    rng = random.Random(seed)
    products = [(f"SKU-{n:05d}", f"Produto {n}", rng.choice(CATEGORIES), rng.choice(BRANDS),
                 rng.randint(990, 49990)) for n in range(2000)]
    start = datetime(2024, 11, 1, tzinfo=UTC)
    customers = max(1, rows // 10)
    generated = Generated(customers=customers)
    statuses, weights = zip(*STATUSES, strict=True)
    with path.open("w", newline="", encoding="utf-8") as handle:
        out = csv.writer(handle)
        out.writerow(HEADER)
        while generated.rows < rows:
            number = len(generated.orders)
            customer = rng.randrange(customers)
            count = min(rng.choice((1, 2, 2, 3, 4)), rows - generated.rows)
            lines = [(products[rng.randrange(len(products))], rng.randint(1, 3))
                     for _ in range(count)]
            shipping = rng.choice((0, 1990, 2490))
            total = sum(price * quantity for (*_p, price), quantity in lines) + shipping
            placed = start + timedelta(seconds=rng.randrange(2 * 365 * 86400))
            status = rng.choices(statuses, weights)[0]
            generated.orders.append((f"PED-{number}", customer, placed, status, total, shipping))
            for index, ((sku, name, category, brand, price), quantity) in enumerate(lines):
                head = (f"PED-{number}", f"cliente-{customer}", f"cliente{customer}@example.com",
                        NAMES[customer % len(NAMES)], placed.isoformat(), status, "BRL",
                        f"{total / 100:.2f}", f"{shipping / 100:.2f}") if index == 0 \
                    else (f"PED-{number}",) + ("",) * 8
                out.writerow((*head, sku, name, category, brand, quantity, f"{price / 100:.2f}"))
                generated.items.append((number, sku, name, category, brand, quantity, price))
            generated.rows += count
    return generated


def migrated(folder: Path) -> Settings:
    folder.mkdir()
    settings = Settings(database_url=f"sqlite:///{folder / 'clientela.db'}", data_dir=folder,
                        secret_key=SECRET_KEY)
    engine = build_engine(settings)
    upgrade(engine)
    engine.dispose()
    return settings


def run_import(settings: Settings, path: Path) -> tuple[float, str]:
    env = {**os.environ, "CLIENTELA_DATABASE_URL": settings.sqlalchemy_url,
           "CLIENTELA_DATA_DIR": str(settings.data_dir), "CLIENTELA_SECRET_KEY": SECRET_KEY}
    started = time.perf_counter()
    done = subprocess.run([str(Path(sys.executable).with_name("clientela")), "import", "orders",
                           str(path)], env=env, capture_output=True, text=True, check=False)
    seconds = time.perf_counter() - started
    if done.returncode != 0:
        raise SystemExit(f"import failed: {done.stderr[-2000:]}")
    return seconds, done.stdout.strip()


def stored(settings: Settings) -> dict[str, int]:
    """What the import left: counts and sums to check against the generated file."""
    engine = build_engine(settings)
    with session_scope(engine, writes=False) as session:
        def one(query: Any) -> int:
            return int(session.scalar(query) or 0)
        found = {
            "orders": one(select(func.count(Order.id))),
            "items": one(select(func.count(OrderItem.id))),
            "customers": one(select(func.count(Customer.id))),
            "identities": one(select(func.count(Identity.id))),
            "orders_counted": one(select(func.sum(Customer.orders_count))),
            "revenue_cents": one(select(func.sum(Customer.revenue_cents))),
            "total_cents": one(select(func.sum(Order.total_cents))),
        }
    engine.dispose()
    return found


def expected(generated: Generated) -> dict[str, int]:
    """The same figures, from the generated data: customers who ordered, their user id and
    e-mail, non-cancelled orders counted, refunded ones adding no revenue."""
    buyers = {customer for _id, customer, *_rest in generated.orders}
    counted = [order for order in generated.orders if order[3] != "cancelled"]
    return {"orders": len(generated.orders), "items": len(generated.items),
            "customers": len(buyers), "identities": 2 * len(buyers),
            "orders_counted": len(counted),
            "revenue_cents": sum(order[4] for order in counted if order[3] != "refunded"),
            "total_cents": sum(order[4] for order in generated.orders)}


def baseline(settings: Settings, generated: Generated) -> float:
    """Seconds to insert the same customers, identities, orders and items through sqlite3."""
    now = datetime.now(UTC).replace(tzinfo=None).isoformat(sep=" ")
    def when(moment: datetime) -> str:
        return moment.replace(tzinfo=None).isoformat(sep=" ", timespec="microseconds")
    customers = [(n + 1, now, now, now, json.dumps({"firstName": NAMES[n % len(NAMES)]}), "{}",
                  f"cliente{n}@example.com", NAMES[n % len(NAMES)])
                 for n in range(generated.customers)]
    identities = [row for n in range(generated.customers) for row in (
        (n + 1, "user_id", f"cliente-{n}", now), (n + 1, "email", f"cliente{n}@example.com", now))]
    orders = [(number + 1, f"PED-{number}", customer + 1, customer + 1, status, total,
               0 if status == "refunded" else total, shipping, when(placed), now, now)
              for number, (_id, customer, placed, status, total, shipping)
              in enumerate(generated.orders)]
    items = [(number + 1, sku, name, category, brand, quantity, price)
             for number, sku, name, category, brand, quantity, price in generated.items]
    connection = sqlite3.connect(settings.data_dir / "clientela.db", isolation_level=None)
    for pragma in ("journal_mode=WAL", "synchronous=FULL", "foreign_keys=ON"):
        connection.execute(f"PRAGMA {pragma}")
    started = time.perf_counter()
    connection.execute("BEGIN IMMEDIATE")
    connection.executemany(
        "INSERT INTO customers (id, created_at, first_seen_at, last_seen_at, traits, trait_times, "
        "email, first_name, email_marketing, orders_count, revenue_cents, identify_count, "
        "track_count, page_count, screen_count, group_count, alias_count) VALUES "
        "(?, ?, ?, ?, ?, ?, ?, ?, 'unknown', 0, 0, 0, 0, 0, 0, 0, 0)", customers)
    connection.executemany("INSERT INTO identities (customer_id, kind, value, created_at) "
                           "VALUES (?, ?, ?, ?)", identities)
    connection.executemany(
        "INSERT INTO orders (id, source, external_id, customer_id, origin_customer_id, status, "
        "currency, discount_cents, shipping_cents, tax_cents, total_cents, refunded_cents, "
        "net_store_cents, channel, placed_at, created_at, updated_at) VALUES "
        "(?, 'import', ?, ?, ?, ?, 'BRL', 0, ?, 0, ?, 0, ?, 'web', ?, ?, ?)",
        [(o[0], o[1], o[2], o[3], o[4], o[7], o[5], o[6], o[8], o[9], o[10]) for o in orders])
    connection.executemany(
        "INSERT INTO order_items (order_id, sku, name, category, brand, quantity, "
        "unit_price_cents) VALUES (?, ?, ?, ?, ?, ?, ?)", items)
    connection.execute("COMMIT")
    seconds = time.perf_counter() - started
    connection.close()
    return seconds


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--rows", type=int, default=1_000_000, help="Order rows in the file.")
    parser.add_argument("--seed", type=int, default=7, help="Random seed for the file.")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="clientela-bench-") as temp:
        folder = Path(temp)
        path = folder / "orders.csv"
        started = time.perf_counter()
        generated = write_file(path, args.rows, args.seed)
        log(f"wrote {generated.rows} rows, {len(generated.orders)} orders, "
            f"{path.stat().st_size / 1e6:.0f} MB in {time.perf_counter() - started:.1f}s")
        settings = migrated(folder / "import")
        seconds, said = run_import(settings, path)
        log(f"import: {said} in {seconds:.1f}s")
        found, wanted = stored(settings), expected(generated)
        summary = f"{generated.rows} rows: {len(generated.orders)} orders " \
                  f"({len(generated.orders)} new), 0 skipped"
        if said != summary or found != wanted:
            log(f"verification failed: said {said!r}, stored {found}, expected {wanted}")
            return 1
        baseline_seconds = baseline(migrated(folder / "baseline"), generated)
        log(f"baseline: {baseline_seconds:.1f}s")
    rows_per_second = generated.rows / seconds
    baseline_rate = generated.rows / baseline_seconds
    print(json.dumps({
        "benchmark": "import_orders",
        "database": "sqlite",
        "rows": generated.rows,
        "orders": len(generated.orders),
        "customers": generated.customers,
        "rows_per_second": round(rows_per_second, 1),
        "baseline": {"what": "raw executemany insert of the same customers, identities, "
                             "orders and items, one transaction",
                     "rows_per_second": round(baseline_rate, 1)},
        "ratio_to_baseline": round(rows_per_second / baseline_rate, 4),
    }), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
