"""Ingestion throughput of a real `clientela serve` process, next to a raw-insert baseline.

What is measured
----------------
1. A real server (`clientela serve --workers N`, the venv's Python, a free local port) on a
   fresh SQLite file in a temporary folder, where `serve` runs its ingestion writer process
   beside the N HTTP workers, or with `--postgresql` on a database of a throwaway PostgreSQL
   server (tests/pg.py), where each worker writes itself. A write key is created with
   `clientela keys create`.

2. `--events` realistic Segment calls (default 200,000; ~800 bytes each) from ~events/10
   visitors, as analytics.js sends them: sessions of page views and `Product Viewed` tracks,
   an `identify` with email, firstName and lastName (and from then on a userId) for over a
   quarter of the visitors, and `Order Completed` with order_id, total and products for some
   of those. Returning visitors keep their anonymousId, so each visitor is one customer.
   Every call has a unique messageId, a timestamp and a sentAt; a batch holds the calls of
   the ~30 visitors active at that moment (35-40 distinct visitors per batch). All request
   bodies are generated and JSON-encoded before the clock starts.

   `--clients` processes (one per client, so the load generator is not held back by one
   GIL), each with one persistent HTTP connection, post `--batch-size` calls per request to
   /v1/batch with the write key as the HTTP Basic user. Batch i goes to client i % clients.
   `events_per_second` is events / wall time from the first request to the last response;
   `batch_latency_ms` are percentiles of each request's round trip seen by its client. Every
   response must be 200 with an empty `rejected` list, and `stored` is count(*) of the events
   table read through SQLAlchemy afterwards, which must equal `events`.

3. The baseline, in the same run after the server has stopped: the same event rows (every
   column of `events`, with the values the server stores, derived from the same request
   bodies by the server's own parser) plus one customer row per visitor, inserted into a
   freshly migrated database straight through the driver's executemany, one commit per 100
   events (each commit also holding the customers those events introduce). On SQLite this is
   the sqlite3 module with the app's pragmas (WAL, synchronous=FULL, foreign_keys=ON); with
   `--postgresql`, psycopg into a second database of the same server. The rows are built
   before its clock starts, so it is the bare cost of storing the data durably with the same
   schema, indexes and constraints. `ratio_to_baseline` is how much of that rate the whole
   server (HTTP, parsing, dedup, identity resolution, profile and trait updates) achieves.

One JSON object goes to stdout; progress (with the recent request rate, which shows whether
ingestion slows down as the store grows), the server's CPU use during the load and other
diagnostics go to stderr. The exit status is 1 when a request failed or a count is wrong.

    .venv/bin/python bench/ingest.py [--events N] [--batch-size B] [--clients C] [--postgresql]
"""

from __future__ import annotations

import argparse
import base64
import http.client
import json
import math
import multiprocessing
import os
import queue
import random
import socket
import sqlite3
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import orjson
from sqlalchemy import create_engine, func, select, text

from clientela.config import Settings
from clientela.customers.models import Customer
from clientela.db import build_engine
from clientela.migrate import upgrade
from clientela.tracking.models import Event
from clientela.tracking.schemas import IncomingEvent, parse_batch

REPO = Path(__file__).resolve().parents[1]
SECRET_KEY = "bench-secret-key"
STARTUP_SECONDS = 60.0
STOP_SECONDS = 30.0
BASELINE_COMMIT_ROWS = 100
ACTIVE_VISITORS = 30
MAX_FAILURES_PER_CLIENT = 20


def log(message: str) -> None:
    print(f"[bench] {message}", file=sys.stderr, flush=True)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


# --- realistic calls ------------------------------------------------------------------------

FIRST_NAMES = ("Ana", "Bruno", "Carla", "Diego", "Elisa", "Fábio", "Gabriela", "Heitor",
               "Isabela", "João", "Karina", "Lucas", "Mariana", "Nicolas", "Olívia", "Pedro",
               "Rafaela", "Samuel", "Tatiana", "Vinícius", "Emma", "Liam", "Sofia", "Noah")
LAST_NAMES = ("Silva", "Santos", "Oliveira", "Souza", "Rodrigues", "Ferreira", "Alves",
              "Pereira", "Lima", "Gomes", "Costa", "Ribeiro", "Martins", "Carvalho", "Almeida",
              "Smith", "Johnson", "Brown", "Garcia", "Miller")
CATEGORIES = {"Shoes": "Sneaker", "T-Shirts": "Tee", "Dresses": "Dress", "Jeans": "Jeans",
              "Bags": "Tote", "Accessories": "Belt", "Sportswear": "Legging", "Jackets": "Jacket",
              "Kids": "Kids Hoodie", "Home": "Cushion"}
BRANDS = ("Aurora", "Boreal", "Cactus", "Duna", "Estrela", "Floresta", "Garoa", "Horizonte")
ADJECTIVES = ("Classic", "Slim", "Organic", "Vintage", "Urban", "Light", "Premium", "Everyday")
USER_AGENTS = (
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 "
    "(KHTML, like Gecko) Version/17.5 Mobile/15E148 Safari/604.1",
    "Mozilla/5.0 (Linux; Android 14; SM-S918B) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/126.0.0.0 Mobile Safari/537.36",
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/126.0.0.0 Safari/537.36",
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 14_5) AppleWebKit/605.1.15 (KHTML, like Gecko) "
    "Version/17.5 Safari/605.1.15",
)
REFERRERS = ("https://www.google.com/", "https://www.instagram.com/", "https://t.co/", "",
             "https://www.facebook.com/", "https://mail.example.net/")
LOCALES = ("pt-BR", "pt-BR", "pt-BR", "en-US", "es-AR")
SHOP = "https://shop.example.com"


@dataclass(frozen=True, slots=True)
class Product:
    product_id: str
    sku: str
    name: str
    category: str
    brand: str
    price: float

    @property
    def slug(self) -> str:
        return self.name.lower().replace(" ", "-")


@dataclass(slots=True)
class Visitor:
    index: int
    anonymous_id: str
    user_agent: str
    ip: str
    locale: str
    will_identify: bool
    first_name: str
    last_name: str
    user_id: str | None = None
    cart: list[Product] = field(default_factory=list)

    @property
    def email(self) -> str:
        return f"{self.first_name}.{self.last_name}.{self.index}@example.com".lower()


@dataclass(slots=True)
class Session:
    visitor: Visitor
    steps_left: int
    referrer: str
    page: tuple[str, str] = ("/", "Home")


class CallGenerator:
    """A stream of calls from the visitors active at each moment, in time order."""

    def __init__(self, *, events: int, visitors: int, seed: int) -> None:
        self.rng = random.Random(seed)
        self.uuid_rng = random.Random(seed + 1)
        self.events = events
        self.visitor_target = max(1, visitors)
        self.visitors: list[Visitor] = []
        self.now = datetime.now(UTC) - timedelta(hours=1)
        self.step = timedelta(seconds=3600 / max(1, events))
        self.orders = 0
        rng = self.rng
        self.products: list[Product] = []
        for number in range(1, 801):
            category = rng.choice(list(CATEGORIES))
            self.products.append(Product(
                product_id=f"P{number:05d}", sku=f"SKU-{rng.randrange(10**8):08d}",
                name=f"{rng.choice(ADJECTIVES)} {CATEGORIES[category]} {number}",
                category=category, brand=rng.choice(BRANDS),
                price=round(rng.uniform(19.9, 899.9), 2)))
        self.active = [self._new_session() for _ in range(ACTIVE_VISITORS)]

    def _uuid(self) -> str:
        return str(uuid.UUID(int=self.uuid_rng.getrandbits(128), version=4))

    def _visitor(self) -> Visitor:
        fresh = len(self.visitors) < self.visitor_target
        if fresh and (not self.visitors or self.rng.random() < 0.8):
            rng = self.rng
            visitor = Visitor(
                index=len(self.visitors), anonymous_id=self._uuid(),
                user_agent=rng.choice(USER_AGENTS),
                ip=f"189.{rng.randrange(256)}.{rng.randrange(256)}.{rng.randrange(1, 255)}",
                locale=rng.choice(LOCALES), will_identify=rng.random() < 0.35,
                first_name=rng.choice(FIRST_NAMES), last_name=rng.choice(LAST_NAMES))
            self.visitors.append(visitor)
            return visitor
        return self.rng.choice(self.visitors)

    def _new_session(self) -> Session:
        return Session(visitor=self._visitor(), steps_left=self.rng.randint(2, 14),
                       referrer=self.rng.choice(REFERRERS))

    def batches(self, batch_size: int) -> Iterator[bytes]:
        """Request bodies of `batch_size` calls each (the last may be shorter)."""
        made = 0
        while made < self.events:
            size = min(batch_size, self.events - made)
            calls = [self._next_call() for _ in range(size)]
            sent_at = _iso(self.now + timedelta(milliseconds=self.rng.randint(200, 2000)))
            for call in calls:
                call["sentAt"] = sent_at
            made += size
            yield orjson.dumps({"batch": calls, "sentAt": sent_at})

    def _next_call(self) -> dict[str, Any]:
        position = self.rng.randrange(len(self.active))
        session = self.active[position]
        self.now += self.step * self.rng.uniform(0.2, 1.8)
        call = self._call_for(session)
        session.steps_left -= 1
        if session.steps_left <= 0:
            self.active[position] = self._new_session()
        return call

    def _call_for(self, session: Session) -> dict[str, Any]:
        visitor, rng = session.visitor, self.rng
        if visitor.will_identify and visitor.user_id is None and rng.random() < 0.2:
            visitor.user_id = f"u{100000 + visitor.index}"
            return self._identify(session)
        if visitor.user_id and visitor.cart and rng.random() < 0.12:
            return self._order(session)
        roll = rng.random()
        if roll < 0.42:
            return self._page(session)
        product = rng.choice(self.products)
        if visitor.user_id and rng.random() < 0.3:
            visitor.cart.append(product)
        session.page = (f"/products/{product.slug}", product.name)
        return self._base(session, "track", event="Product Viewed", properties={
            "product_id": product.product_id, "sku": product.sku, "category": product.category,
            "name": product.name, "brand": product.brand, "price": product.price,
            "currency": "BRL", "url": f"{SHOP}/products/{product.slug}",
            "image_url": f"https://cdn.example.com/p/{product.product_id}.jpg",
        })

    def _page(self, session: Session) -> dict[str, Any]:
        category = self.rng.choice(list(CATEGORIES))
        path, title = self.rng.choice(((f"/c/{category.lower()}", category), ("/", "Home"),
                                       ("/search", "Search"), ("/cart", "Cart")))
        session.page = (path, title)
        search = f"?q={category.lower()}" if path == "/search" else ""
        return self._base(session, "page", name=title, properties={
            "path": path, "url": f"{SHOP}{path}{search}", "title": f"{title} | Example Shop",
            "referrer": session.referrer, "search": search,
        })

    def _identify(self, session: Session) -> dict[str, Any]:
        visitor = session.visitor
        return self._base(session, "identify", traits={
            "email": visitor.email, "firstName": visitor.first_name,
            "lastName": visitor.last_name,
        })

    def _order(self, session: Session) -> dict[str, Any]:
        visitor = session.visitor
        self.orders += 1
        bought = visitor.cart[-5:]
        visitor.cart.clear()
        products = [{"product_id": p.product_id, "sku": p.sku, "name": p.name,
                     "price": p.price, "quantity": 1, "category": p.category} for p in bought]
        subtotal = round(sum(p.price for p in bought), 2)
        shipping = round(self.rng.choice((0.0, 14.9, 24.9)), 2)
        session.page = ("/checkout/success", "Thank you")
        return self._base(session, "track", event="Order Completed", properties={
            "order_id": f"ORD-{100000 + self.orders}", "total": round(subtotal + shipping, 2),
            "revenue": subtotal, "shipping": shipping, "tax": 0, "currency": "BRL",
            "products": products,
        })

    def _base(self, session: Session, kind: str, **extra: Any) -> dict[str, Any]:
        visitor = session.visitor
        path, title = session.page
        call: dict[str, Any] = {
            "type": kind, "messageId": self._uuid(), "anonymousId": visitor.anonymous_id,
            "timestamp": _iso(self.now),
            "context": {
                "library": {"name": "analytics.js", "version": "5.2.1"},
                "page": {"path": path, "url": f"{SHOP}{path}", "title": title,
                         "referrer": session.referrer},
                "userAgent": visitor.user_agent, "ip": visitor.ip, "locale": visitor.locale,
            },
            **extra,
        }
        if visitor.user_id:
            call["userId"] = visitor.user_id
        return call


def _iso(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


# --- the server -----------------------------------------------------------------------------

def server_env(database_url: str, data_dir: Path) -> dict[str, str]:
    env = {name: value for name, value in os.environ.items()
           if not name.startswith("CLIENTELA_")}
    env.update({"CLIENTELA_DATABASE_URL": database_url, "CLIENTELA_DATA_DIR": str(data_dir),
                "CLIENTELA_SECRET_KEY": SECRET_KEY, "PYTHONUNBUFFERED": "1"})
    return env


def clientela(*args: str) -> list[str]:
    return [sys.executable, "-c", "from clientela.cli.main import app; app()", *args]


def create_write_key(env: dict[str, str]) -> str:
    done = subprocess.run(clientela("keys", "create", "--kind", "write", "--name", "bench"),
                          env=env, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"keys create failed:\n{done.stdout}{done.stderr}")
    return done.stdout.strip().splitlines()[-1].strip()


@dataclass(frozen=True, slots=True)
class Server:
    base_url: str
    pid: int


def cpu_seconds(pid: int) -> float | None:
    """User plus system CPU time a process and its worker processes have used so far
    (Linux /proc), or None."""
    shares = cpu_by_process(pid)
    return sum(shares.values()) if shares else None


def cpu_by_process(pid: int) -> dict[str, float]:
    """CPU seconds so far of a process and each of its descendants, by "pid name" (the
    clientela command a process runs, else its program name)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        arguments = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except OSError:
        return {}
    found = {f"{pid} {_process_name(arguments)}":
             (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")}
    for child in _children(pid):
        found.update(cpu_by_process(child))
    return found


def _process_name(arguments: list[bytes]) -> str:
    words = [word.decode(errors="replace") for word in arguments if word]
    for command in ("serve", "ingest-writer", "worker"):
        if command in words:
            return command
    if any("multiprocessing" in word for word in words):
        return "http-worker"
    return Path(words[0]).name if words else "?"


def _children_cpu() -> float:
    """CPU seconds of this process's finished children (the load's client processes)."""
    times = os.times()
    return times.children_user + times.children_system


def log_cpu(before: dict[str, float], after: dict[str, float], clients: float,
            wall: float) -> None:
    """The server's CPU use during the load, in all and per process, and the clients'."""
    used = {name: seconds - before.get(name, 0.0) for name, seconds in after.items()}
    total = sum(used.values())
    log(f"server CPU during the load: {total:.1f}s in {wall:.1f}s of wall time "
        f"({100 * total / wall:.0f}% of one core, all server processes)")
    for name, seconds in sorted(used.items(), key=lambda item: -item[1]):
        log(f"  {name}: {seconds:.1f}s ({100 * seconds / wall:.0f}% of one core)")
    log(f"  load clients: {clients:.1f}s ({100 * clients / wall:.0f}% of one core)")


def _children(pid: int) -> list[int]:
    found: list[int] = []
    for task in Path(f"/proc/{pid}/task").glob("*/children"):
        try:
            found += [int(child) for child in task.read_text().split()]
        except OSError:
            continue
    return found


@contextmanager
def running_server(env: dict[str, str], log_path: Path, workers: int = 1) -> Iterator[Server]:
    """`clientela serve` on a free port, healthy; always terminated when the block ends."""
    port = free_port()
    base_url = f"http://127.0.0.1:{port}"
    with log_path.open("wb") as log_file:
        process = subprocess.Popen(clientela("serve", "--host", "127.0.0.1", "--port", str(port),
                                             "--workers", str(workers)),
                                   env=env, stdout=log_file, stderr=subprocess.STDOUT,
                                   stdin=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + STARTUP_SECONDS
        while True:
            if process.poll() is not None:
                raise RuntimeError(f"server exited with {process.returncode}:\n"
                                   f"{_tail(log_path)}")
            try:
                if httpx.get(f"{base_url}/health", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"server not healthy after {STARTUP_SECONDS}s:\n"
                                   f"{_tail(log_path)}")
            time.sleep(0.1)
        log(f"server pid {process.pid} healthy at {base_url}")
        yield Server(base_url=base_url, pid=process.pid)
    finally:
        if process.poll() is None:
            process.terminate()
            try:
                process.wait(timeout=STOP_SECONDS)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        log(f"server stopped (exit status {process.returncode})")


def _tail(path: Path, lines: int = 40) -> str:
    if not path.exists():
        return ""
    return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])


# --- the load -------------------------------------------------------------------------------

@dataclass(slots=True)
class ClientResult:
    client: int
    finished: float
    latencies: list[float]
    failures: list[str]


def run_client(client: int, url: str, authorization: str, bodies: Sequence[bytes],
               ready: Any, go: Any, results: Any) -> None:
    """One load process: a persistent connection posting its share of the bodies in order."""
    latencies: list[float] = []
    failures: list[str] = []
    # The standard library's client: the load generator shares the machine's two cores with
    # the server, so it should spend as little of them as it can.
    target = urlsplit(url)
    headers = {"Authorization": authorization, "Content-Type": "application/json"}
    connection = http.client.HTTPConnection(target.hostname or "127.0.0.1", target.port,
                                            timeout=120)
    try:
        try:  # connect before the clock starts
            connection.request("GET", "/health")
            connection.getresponse().read()
        except OSError as error:
            failures.append(f"warm-up: {type(error).__name__}: {error}")
        ready.wait()
        go.wait()
        _post_all(client, connection, target.path, headers, bodies, latencies, failures)
    except BaseException as error:
        failures.append(f"{type(error).__name__}: {error}")
    finally:
        connection.close()
        results.put(ClientResult(client=client, finished=time.perf_counter(),
                                 latencies=latencies, failures=failures))


def _post_all(client: int, connection: http.client.HTTPConnection, path: str,
              headers: dict[str, str], bodies: Sequence[bytes], latencies: list[float],
              failures: list[str]) -> None:
    report_every = max(1, -(-len(bodies) // 10))
    began = last_time = time.perf_counter()
    last_number = 0
    for number, body in enumerate(bodies, start=1):
        started = time.perf_counter()
        try:
            connection.request("POST", path, body=body, headers=headers)
            response = connection.getresponse()
            answer = response.read()
        except (OSError, http.client.HTTPException) as error:
            failures.append(f"batch {number}: {type(error).__name__}: {error}")
        else:
            latencies.append(time.perf_counter() - started)
            if response.status != 200:
                failures.append(f"batch {number}: HTTP {response.status} {answer[:300]!r}")
            elif orjson.loads(answer).get("rejected") != []:
                failures.append(f"batch {number}: rejected {answer[:300]!r}")
        if len(failures) >= MAX_FAILURES_PER_CLIENT:
            failures.append("too many failures; client gave up")
            return
        if client == 0 and (number % report_every == 0 or number == len(bodies)):
            now = time.perf_counter()
            rate = (number - last_number) / (now - last_time) if now > last_time else 0.0
            log(f"client 0: {number}/{len(bodies)} batches in {now - began:.1f}s "
                f"({rate:.1f} batches/s lately)")
            last_time, last_number = now, number


def send_all(base_url: str, write_key: str, bodies: list[bytes], clients: int
             ) -> tuple[float, list[float], list[str]]:
    """(wall seconds, batch latencies in seconds, failures) for all bodies over `clients`."""
    context = multiprocessing.get_context("fork")  # the children inherit the bodies
    ready = context.Barrier(clients + 1)
    go = context.Event()
    results = context.Queue()
    token = base64.b64encode(f"{write_key}:".encode()).decode()
    processes = [context.Process(
        target=run_client, name=f"bench-client-{client}", daemon=True,
        args=(client, f"{base_url}/v1/batch", f"Basic {token}", bodies[client::clients],
              ready, go, results))
        for client in range(clients)]
    try:
        for process in processes:
            process.start()
        ready.wait(timeout=60)
        started = time.perf_counter()
        go.set()
        collected: list[ClientResult] = []
        while len(collected) < len(processes):
            try:
                collected.append(results.get(timeout=1.0))
            except queue.Empty:
                if not any(process.is_alive() for process in processes):
                    raise RuntimeError("a client process died without a result") from None
        for process in processes:
            process.join(timeout=30)
    finally:
        for process in processes:
            if process.is_alive():
                process.terminate()
                process.join()
    wall = max(result.finished for result in collected) - started
    latencies = [value for result in collected for value in result.latencies]
    failures = [f"client {result.client}: {failure}" for result in collected
                for failure in result.failures]
    return wall, latencies, failures


def percentile(values: Sequence[float], fraction: float) -> float:
    """Nearest-rank percentile."""
    ordered = sorted(values)
    if not ordered:
        return math.nan
    return ordered[min(len(ordered) - 1, max(0, math.ceil(fraction * len(ordered)) - 1))]


def count_stored(settings: Settings) -> tuple[int, int]:
    """(events, live customers) in the server's database."""
    engine = build_engine(settings)
    try:
        with engine.connect() as connection:
            events = connection.execute(select(func.count()).select_from(Event)).scalar_one()
            customers = connection.execute(select(func.count()).select_from(Customer).where(
                Customer.merged_into_id.is_(None))).scalar_one()
            return int(events), int(customers)
    finally:
        engine.dispose()


# --- the baseline ---------------------------------------------------------------------------

EVENT_COLUMNS = ("source_id", "message_id", "customer_id", "origin_customer_id", "type", "event",
                 "user_id", "anonymous_id", "timestamp", "original_timestamp", "sent_at",
                 "received_at", "properties", "context", "details")
CUSTOMER_COLUMNS = ("id", "traits", "trait_times", "created_at", "first_seen_at", "last_seen_at",
                    "email_marketing", "identify_count", "track_count", "page_count",
                    "screen_count", "group_count", "alias_count", "orders_count",
                    "revenue_cents")
JSON_COLUMNS = frozenset({"properties", "context", "details", "traits", "trait_times"})
SOURCE_ID = 1


@dataclass(slots=True)
class BaselineRows:
    """Per commit: the customers first seen in it and its event rows (driver-ready tuples)."""

    chunks: list[tuple[list[tuple[Any, ...]], list[tuple[Any, ...]]]]
    events: int
    customers: int


def baseline_rows(bodies: list[bytes], *, sqlite: bool) -> BaselineRows:
    """The rows the server stores for these bodies, parsed by the server's own parser.

    Every visitor is one customer (the calls always carry the visitor's anonymousId, so the
    server never merges); customer ids are given in order of first appearance.
    """
    def when(moment: datetime | None) -> Any:
        if moment is None:
            return None
        naive = moment.astimezone(UTC).replace(tzinfo=None)
        return naive.isoformat(sep=" ", timespec="microseconds") if sqlite else naive

    customer_of: dict[str, int] = {}
    events: list[IncomingEvent] = []
    for body in bodies:
        accepted, rejected = parse_batch(orjson.loads(body), received_at=datetime.now(UTC),
                                         body_bytes=len(body))
        assert not rejected, rejected
        events.extend(event for _index, event in accepted)
    chunks: list[tuple[list[tuple[Any, ...]], list[tuple[Any, ...]]]] = []
    created = when(datetime.now(UTC))
    for start in range(0, len(events), BASELINE_COMMIT_ROWS):
        customer_rows: list[tuple[Any, ...]] = []
        event_rows: list[tuple[Any, ...]] = []
        for event in events[start:start + BASELINE_COMMIT_ROWS]:
            visitor = event.anonymous_id or event.user_id or ""
            customer = customer_of.get(visitor)
            if customer is None:
                customer = customer_of[visitor] = len(customer_of) + 1
                seen = when(event.timestamp)
                customer_rows.append((customer, "{}", "{}", created, seen, seen, "unknown",
                                      0, 0, 0, 0, 0, 0, 0, 0))
            event_rows.append((
                SOURCE_ID, event.message_id, customer, customer, event.type, event.event,
                event.user_id, event.anonymous_id, when(event.timestamp),
                when(event.original_timestamp), when(event.sent_at), when(event.received_at),
                json.dumps(event.properties), json.dumps(event.context),
                json.dumps(event.details),
            ))
        chunks.append((customer_rows, event_rows))
    return BaselineRows(chunks=chunks, events=len(events), customers=len(customer_of))


def _insert_sql(table: str, columns: Sequence[str], marker: str, json_cast: str) -> str:
    values = ", ".join(marker + (json_cast if name in JSON_COLUMNS else "") for name in columns)
    return f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({values})"


def _migrate(settings: Settings) -> None:
    engine = build_engine(settings)
    try:
        upgrade(engine)
        with engine.begin() as connection:
            connection.execute(text(
                "INSERT INTO api_keys (id, kind, name, prefix, key_hash, created_at) "
                "VALUES (:id, 'write', 'baseline', 'cw_baseline', :hash, :now)"),
                {"id": SOURCE_ID, "hash": "0" * 64, "now": datetime.now(UTC).replace(tzinfo=None)})
    finally:
        engine.dispose()


def baseline_sqlite(rows: BaselineRows, folder: Path) -> tuple[float, int]:
    """(seconds, events stored) for the raw sqlite3 executemany insert."""
    path = folder / "clientela.db"
    _migrate(Settings(database_url=f"sqlite:///{path}", data_dir=folder,
                      secret_key=SECRET_KEY))
    customers_sql = _insert_sql("customers", CUSTOMER_COLUMNS, "?", "")
    events_sql = _insert_sql("events", EVENT_COLUMNS, "?", "")
    connection = sqlite3.connect(path, isolation_level=None)
    try:
        for pragma in ("journal_mode=WAL", "synchronous=FULL", "foreign_keys=ON"):
            connection.execute(f"PRAGMA {pragma}")
        started = time.perf_counter()
        for customer_rows, event_rows in rows.chunks:
            connection.execute("BEGIN IMMEDIATE")
            if customer_rows:
                connection.executemany(customers_sql, customer_rows)
            connection.executemany(events_sql, event_rows)
            connection.execute("COMMIT")
        seconds = time.perf_counter() - started
        stored = int(connection.execute("SELECT count(*) FROM events").fetchone()[0])
    finally:
        connection.close()
    return seconds, stored


def baseline_postgresql(rows: BaselineRows, url: str, folder: Path) -> tuple[float, int]:
    """(seconds, events stored) for the raw psycopg executemany insert."""
    import psycopg

    _migrate(Settings(database_url=url, data_dir=folder, secret_key=SECRET_KEY))
    customers_sql = _insert_sql("customers", CUSTOMER_COLUMNS, "%s", "::jsonb")
    events_sql = _insert_sql("events", EVENT_COLUMNS, "%s", "::jsonb")
    with psycopg.connect(url.replace("postgresql+psycopg://", "postgresql://")) as connection:
        started = time.perf_counter()
        for customer_rows, event_rows in rows.chunks:
            with connection.cursor() as cursor:
                if customer_rows:
                    cursor.executemany(customers_sql, customer_rows)
                cursor.executemany(events_sql, event_rows)
            connection.commit()
        seconds = time.perf_counter() - started
        found = connection.execute("SELECT count(*) FROM events").fetchone()
    return seconds, int(found[0]) if found else 0


# --- the run --------------------------------------------------------------------------------

def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--events", type=int, default=200_000, help="Calls to send.")
    parser.add_argument("--batch-size", type=int, default=100, help="Calls per request.")
    parser.add_argument("--clients", type=int, default=4, help="Concurrent client processes.")
    parser.add_argument("--workers", type=int, default=1,
                        help="HTTP worker processes (`serve --workers`; default 1, the serve "
                        "default: on SQLite the writer process takes the other core).")
    parser.add_argument("--visitors", type=int, default=0,
                        help="Distinct visitors (default: events / 10).")
    parser.add_argument("--seed", type=int, default=7, help="Random seed for the calls.")
    parser.add_argument("--postgresql", action="store_true",
                        help="Run on a throwaway PostgreSQL server instead of SQLite.")
    args = parser.parse_args(argv)
    if args.events < 1 or args.batch_size < 1 or args.clients < 1:
        parser.error("--events, --batch-size and --clients must be positive")
    return args


@contextmanager
def databases(postgresql: bool, folder: Path) -> Iterator[tuple[str, str | None]]:
    """(server database URL, baseline database URL or None for a SQLite file)."""
    if not postgresql:
        yield f"sqlite:///{folder / 'server' / 'clientela.db'}", None
        return
    if str(REPO) not in sys.path:
        sys.path.insert(0, str(REPO))
    from tests.pg import PostgresServer

    server = PostgresServer.start()
    log(f"PostgreSQL started on port {server.port}")
    try:
        admin = create_engine(server.admin_url, isolation_level="AUTOCOMMIT")
        with admin.connect() as connection:
            connection.execute(text("CREATE DATABASE clientela_bench"))
            connection.execute(text("CREATE DATABASE clientela_baseline"))
        admin.dispose()
        yield server.url("clientela_bench"), server.url("clientela_baseline")
    finally:
        server.stop()
        log("PostgreSQL stopped")


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    visitors = args.visitors or max(1, args.events // 10)
    started = time.perf_counter()
    generator = CallGenerator(events=args.events, visitors=visitors, seed=args.seed)
    bodies = list(generator.batches(args.batch_size))
    megabytes = sum(len(body) for body in bodies) / 1e6
    log(f"generated {args.events} calls in {len(bodies)} bodies ({megabytes:.1f} MB) from "
        f"{len(generator.visitors)} visitors, {generator.orders} orders, in "
        f"{time.perf_counter() - started:.1f}s")
    with tempfile.TemporaryDirectory(prefix="clientela-bench-") as temp, \
            databases(args.postgresql, Path(temp)) as (server_url, baseline_url):
        folder = Path(temp)
        data_dir = folder / "server"
        data_dir.mkdir()
        env = server_env(server_url, data_dir)
        write_key = create_write_key(env)
        with running_server(env, folder / "server.log", args.workers) as server:
            log(f"sending {len(bodies)} batches from {args.clients} clients")
            cpu_before, clients_before = cpu_by_process(server.pid), _children_cpu()
            wall, latencies, failures = send_all(server.base_url, write_key, bodies,
                                                 args.clients)
            cpu_after, clients_cpu = cpu_by_process(server.pid), _children_cpu() - clients_before
            log_cpu(cpu_before, cpu_after, clients_cpu, wall)
            if os.environ.get("BENCH_SHOW_LOG"):
                log(_tail(folder / "server.log", 400))
            stored, customers = count_stored(Settings(
                database_url=server_url, data_dir=data_dir, secret_key=SECRET_KEY))
        events_per_second = args.events / wall
        log(f"server: {args.events} events in {wall:.1f}s = {events_per_second:.0f}/s, "
            f"stored {stored} events and {customers} live customers")
        if failures or stored != args.events:
            for failure in failures[:40]:
                log(f"FAILED {failure}")
            log(f"verification failed: {len(failures)} failed requests, stored {stored} "
                f"of {args.events}\n{_tail(folder / 'server.log')}")
            return 1

        rows = baseline_rows(bodies, sqlite=baseline_url is None)
        log(f"baseline: {rows.events} events and {rows.customers} customers, "
            f"{len(rows.chunks)} commits")
        baseline_dir = folder / "baseline"
        baseline_dir.mkdir()
        if baseline_url is None:
            seconds, baseline_stored = baseline_sqlite(rows, baseline_dir)
        else:
            seconds, baseline_stored = baseline_postgresql(rows, baseline_url, baseline_dir)
        if baseline_stored != rows.events:
            log(f"baseline stored {baseline_stored} of {rows.events} events")
            return 1
        rows_per_second = rows.events / seconds
        log(f"baseline: {rows.events} events in {seconds:.1f}s = {rows_per_second:.0f}/s")

    result = {
        "benchmark": "ingest",
        "database": "postgresql" if args.postgresql else "sqlite",
        "events": args.events,
        "batch_size": args.batch_size,
        "clients": args.clients,
        "http_workers": args.workers,
        "writer_process": not args.postgresql,
        "events_per_second": round(events_per_second, 1),
        "batch_latency_ms": {"p50": round(percentile(latencies, 0.50) * 1000, 2),
                             "p99": round(percentile(latencies, 0.99) * 1000, 2)},
        "baseline": {"what": "raw executemany insert, one commit per 100 rows",
                     "rows_per_second": round(rows_per_second, 1)},
        "ratio_to_baseline": round(events_per_second / rows_per_second, 4),
        "stored": stored,
    }
    print(json.dumps(result), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
