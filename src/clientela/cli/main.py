"""`clientela`: serve, migrate, keys, users, demo, import."""

from __future__ import annotations

import logging
import os
import signal
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date
from pathlib import Path
from types import FrameType
from typing import Annotated, Literal

import typer
from rich.console import Console

from clientela.config import Settings, get_settings
from clientela.core.children import Supervised
from clientela.core.clock import utcnow
from clientela.core.errors import ClientelaError
from clientela.db import get_engine, session_scope
from clientela.migrate import upgrade
from clientela.team import service as team

app = typer.Typer(help="Clientela: the open-source customer platform for online stores.",
                  no_args_is_help=True, pretty_exceptions_enable=False)
keys_app = typer.Typer(help="API keys.", no_args_is_help=True)
users_app = typer.Typer(help="Dashboard users.", no_args_is_help=True)
import_app = typer.Typer(help="Load data sets and files.", no_args_is_help=True)
carts_app = typer.Typer(help="Shopping carts.", no_args_is_help=True)
rfm_app = typer.Typer(help="RFM scores and groups.", no_args_is_help=True)
clv_app = typer.Typer(help="Lifetime value: BG/NBD and Gamma-Gamma.", no_args_is_help=True)
app.add_typer(keys_app, name="keys")
app.add_typer(users_app, name="users")
app.add_typer(import_app, name="import")
app.add_typer(carts_app, name="carts")
app.add_typer(clv_app, name="clv")
app.add_typer(rfm_app, name="rfm")
err = Console(stderr=True)


def _fail(error: ClientelaError) -> None:
    err.print(f"[red]error[/red] {error.code}: {error.message}")
    raise typer.Exit(2)


@app.command()
def migrate() -> None:
    """Bring the database to the newest schema."""
    upgrade(get_engine())
    typer.echo("database is up to date")


@app.command()
def serve(host: Annotated[str | None, typer.Option(help="Address to bind.")] = None,
          port: Annotated[int | None, typer.Option(help="Port to bind.")] = None,
          workers: Annotated[int, typer.Option(min=1, help="Server processes.")] = 1) -> None:
    """Migrate, then serve ingestion, the API and the dashboard (with the background worker
    beside them unless CLIENTELA_EMBEDDED_WORKER is false)."""
    import uvicorn

    settings = get_settings()
    upgrade(get_engine())
    # uvicorn re-raises the SIGTERM it handled once it has shut down; turned into SystemExit
    # here, it unwinds through `finally` so that the child processes stop cleanly.
    previous = signal.signal(signal.SIGTERM, _exit_on_signal)
    try:
        with _ingest_writer(settings), _background_worker(settings):
            uvicorn.run("clientela.api.app:create_app", factory=True, workers=workers,
                        host=host or settings.host, port=port or settings.port,
                        log_level="info", access_log=False)
    finally:
        signal.signal(signal.SIGTERM, previous)


@contextmanager
def _ingest_writer(settings: Settings) -> Iterator[None]:
    """On SQLite, one writer process for all HTTP workers (see `clientela.ingest.process`);
    the workers find its socket in CLIENTELA_INGEST_SOCKET."""
    if not settings.sqlalchemy_url.startswith("sqlite") or settings.ingest_socket is not None:
        yield
        return
    from clientela.ingest.process import WriterProcess, socket_path

    writer = WriterProcess(socket_path(settings))
    _start(writer)
    os.environ["CLIENTELA_INGEST_SOCKET"] = str(writer.path)
    get_settings.cache_clear()
    try:
        yield
    finally:
        writer.stop()


@contextmanager
def _background_worker(settings: Settings) -> Iterator[None]:
    """`clientela worker` beside the server, unless workers run elsewhere."""
    if not settings.embedded_worker:
        yield
        return
    worker = Supervised("background worker", ["worker"],
                        stop_seconds=30.0)
    _start(worker)
    try:
        yield
    finally:
        worker.stop()


def _start(child: Supervised) -> None:
    try:
        child.start()
    except RuntimeError as error:
        err.print(f"[red]error[/red] {error}")
        raise typer.Exit(2) from None


def _exit_on_signal(_number: int, _frame: FrameType | None) -> None:
    raise SystemExit(0)  # asked to stop, and stopped cleanly


ParentPid = Annotated[int | None, typer.Option(hidden=True, help="Exit when this process, "
                                               "the one that started this one, is gone.")]


@app.command()
def worker(workers: Annotated[int, typer.Option(min=1, help="Worker threads.")] = 1,
           parent_pid: ParentPid = None) -> None:
    """Run background work: scheduled jobs (abandoned carts, ...) and queued tasks."""
    from clientela.core.children import on_parent_exit
    from clientela.worker.app import create_queue

    _exit_unless_parent(parent_pid)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s:     %(name)s %(message)s")
    queue = create_queue(get_settings())
    consumer = queue.huey.create_consumer(workers=workers, worker_type="thread",
                                          periodic=True, graceful_signal="TERM")
    # Started by `serve`: stop with it, even if it was killed.
    on_parent_exit(parent_pid, lambda: os.kill(os.getpid(), signal.SIGTERM))
    consumer.run()


def _exit_unless_parent(parent_pid: int | None) -> None:
    from clientela.core.children import parent_alive

    if not parent_alive(parent_pid):  # `serve` died while this process was starting
        raise typer.Exit(0)


@app.command("ingest-writer", hidden=True)
def ingest_writer(socket: Annotated[Path, typer.Option(help="Unix socket to listen on.")],
                  parent_pid: ParentPid = None) -> None:
    """The ingestion writer process that `serve` runs on SQLite (internal)."""
    from clientela.ingest import process

    _exit_unless_parent(parent_pid)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s:     %(name)s %(message)s")
    process.run(get_settings(), socket, parent_pid)


@keys_app.command("create")
def keys_create(kind: Annotated[str, typer.Option(help="write (ingestion) or secret (API).")],
                name: Annotated[str, typer.Option(help="A label for the key.")] = "") -> None:
    """Create a key and print it, alone, on the last line (it is stored hashed)."""
    upgrade(get_engine())
    try:
        with session_scope() as session:
            issued = team.create_key(session=session, kind=kind, name=name)
    except ClientelaError as error:
        _fail(error)
    typer.echo(f"created {issued.kind} key #{issued.id} ({issued.name}); it is shown only once:")
    typer.echo(issued.key)


@users_app.command("create")
def users_create(email: Annotated[str, typer.Option()],
                 password: Annotated[str, typer.Option()],
                 role: Annotated[str, typer.Option()] = "owner") -> None:
    """Create a dashboard user."""
    upgrade(get_engine())
    try:
        with session_scope() as session:
            user = team.create_user(session=session, email=email, password=password, role=role)
    except ClientelaError as error:
        _fail(error)
    typer.echo(f"created {user.role} {user.email}")


@app.command()
def demo(customers: Annotated[int, typer.Option(
             help="Customers of the demo shop (and half as many anonymous visitors).", min=1)]
         = 3000,
         seed: Annotated[int, typer.Option(help="Random seed: the same seed, the same shop.")]
         = 7) -> None:
    """Load a demo shop (catalog, customers, two years of orders, two weeks of traffic)
    through the same services as real data; loading it again adds nothing."""
    from clientela.cli.demo import load_demo

    upgrade(get_engine())
    load_demo(engine=get_engine(), settings=get_settings(), customers=customers, seed=seed)


@import_app.command("cdnow")
def import_cdnow(sample: Annotated[bool, typer.Option(
        help="The 2,357-customer sample of the published papers instead of all 23,570.")]
        = False) -> None:
    """Load the CDNOW purchase log: customers `cdnow-<id>`, one USD order per purchase."""
    from rich.progress import Progress

    from clientela.commerce import cdnow

    settings = get_settings()
    engine = get_engine()
    upgrade(engine)
    try:
        rows = cdnow.purchases(sample=sample)
    except ClientelaError as error:
        _fail(error)
    with Progress(console=err, transient=True) as progress, session_scope(engine) as session:
        task = progress.add_task("importing CDNOW purchases", total=len(rows))
        done = cdnow.load(session=session, rows=rows, exchange=settings.exchange,
                          progress=lambda count: progress.advance(task, count))
    typer.echo(f"CDNOW: {done.customers} customers ({done.new_customers} new), "
               f"{done.orders} orders ({done.new_orders} new)")
    if settings.exchange.to_store(100, cdnow.CURRENCY) is None:
        typer.echo(f"note: the orders are in USD and the store currency is "
                   f"{settings.store_currency} with no USD rate: they count as orders but add "
                   "no revenue (set CLIENTELA_CURRENCY_RATES or CLIENTELA_STORE_CURRENCY=USD)")


@carts_app.command("abandon")
def carts_abandon() -> None:
    """Mark open carts left alone for CLIENTELA_CART_ABANDON_MINUTES as abandoned."""
    from clientela.commerce.tasks import abandon_idle_carts

    engine = get_engine()
    upgrade(engine)
    count = abandon_idle_carts(engine=engine, settings=get_settings())
    typer.echo(f"{count} carts abandoned (the background worker does this every minute)")


def _import_csv(kind: str, file: Path, mapping: list[str] | None, skip_invalid: bool) -> None:
    from rich.progress import Progress

    from clientela.commerce import imports

    settings = get_settings()
    engine = get_engine()
    upgrade(engine)
    try:
        text = file.read_text(encoding="utf-8-sig")
        with Progress(console=err, transient=True) as progress, \
                session_scope(engine) as session:
            task = progress.add_task(f"importing {kind}", total=None)
            report = imports.import_file(
                session=session, kind=kind, text=text,
                mapping=dict(item.split("=", 1) for item in mapping or [] if "=" in item),
                exchange=settings.exchange, default_region=settings.default_country,
                skip_invalid=skip_invalid, progress=lambda count: progress.advance(task, count))
    except imports.ImportRefused as refused:
        for problem in refused.report.problems:
            typer.echo(f"{file}: {problem}", err=True)
        err.print(f"[red]error[/red] {len(refused.report.problems)} problem(s); nothing "
                  "imported (--skip-invalid imports the valid rows)")
        raise typer.Exit(2) from None
    except ClientelaError as error:
        _fail(error)
    for problem in report.problems:
        typer.echo(f"{file}: {problem} (left out)", err=True)
    typer.echo(f"{report.rows} rows: {report.imported} {kind} ({report.new} new), "
               f"{report.skipped} skipped")


CsvFile = Annotated[Path, typer.Argument(exists=True, dir_okay=False, readable=True,
                                         help="A CSV file with a header row.")]
HeaderMap = Annotated[list[str] | None, typer.Option(
    "--map", help="COLUMN=HEADER for a column whose header in the file differs.")]
SkipInvalid = Annotated[bool, typer.Option(
    help="Import the valid rows and report the others (default: all or nothing).")]


@import_app.command("orders")
def import_orders(file: CsvFile, mapping: HeaderMap = None, skip_invalid: SkipInvalid = False
                  ) -> None:
    """Orders from a CSV file, one row per order or per item; re-importing changes nothing."""
    _import_csv("orders", file, mapping, skip_invalid)


@import_app.command("customers")
def import_customers(file: CsvFile, mapping: HeaderMap = None, skip_invalid: SkipInvalid = False
                     ) -> None:
    """Customers from a CSV file, found by user id or e-mail and updated, or created."""
    _import_csv("customers", file, mapping, skip_invalid)


@import_app.command("products")
def import_products(file: CsvFile, mapping: HeaderMap = None, skip_invalid: SkipInvalid = False
                    ) -> None:
    """Catalog products from a CSV file, by product id."""
    _import_csv("products", file, mapping, skip_invalid)


Unit = Annotated[str, typer.Option(help="Time unit of the models: days or weeks.")]


def _unit(text: str) -> Literal["days", "weeks"]:
    if text == "days":
        return "days"
    if text == "weeks":
        return "weeks"
    err.print("[red]error[/red] --unit: must be days or weeks")
    raise typer.Exit(2)


@clv_app.command("fit")
def clv_fit(as_of: Annotated[str | None, typer.Option(
                help="Fit on purchases up to the end of this day (YYYY-MM-DD); default today.")]
            = None, unit: Unit = "weeks",
            as_json: Annotated[bool, typer.Option("--json", help="One JSON object.")] = False
            ) -> None:
    """Fit BG/NBD and Gamma-Gamma on the orders (spend in the store currency) and print
    the parameters."""
    import json

    from clientela.analytics import service as analytics
    from clientela.analytics.clv import figures

    settings = get_settings()
    engine = get_engine()
    upgrade(engine)
    day = _day(as_of)
    try:
        with session_scope(engine, writes=False) as session:
            fitted = analytics.fit(session=session, as_of=day, unit=_unit(unit),
                                   currency=settings.store_currency)
    except ClientelaError as error:
        _fail(error)
    result = figures(fitted.bgnbd, fitted.gamma_gamma)
    if as_json:
        typer.echo(json.dumps(result))
        return
    typer.echo(f"BG/NBD ({unit}, {result['customers']} customers): r={result['r']:.4f} "
               f"alpha={result['alpha']:.4f} a={result['a']:.4f} b={result['b']:.4f} "
               f"log-likelihood={result['bgnbd_log_likelihood']:.1f}")
    typer.echo(f"Gamma-Gamma ({result['repeat_buyers']} repeat buyers, "
               f"{settings.store_currency}): p={result['p']:.4f} q={result['q']:.4f} "
               f"gamma={result['gamma']:.4f} log-likelihood={result['gg_log_likelihood']:.1f}")


@clv_app.command("predict")
def clv_predict(unit: Unit = "weeks") -> None:
    """Fit on everything bought so far and store each customer's predictions: P(alive),
    churn risk, expected orders and value over CLIENTELA_CLV_HORIZON_MONTHS, inactive."""
    from clientela.analytics.tasks import predict_lifetime_values

    engine = get_engine()
    upgrade(engine)
    try:
        done = predict_lifetime_values(engine=engine, settings=get_settings(),
                                       unit=_unit(unit))
    except ClientelaError as error:
        _fail(error)
    typer.echo(f"predictions stored for {done.customers} customers "
               f"({done.inactive} inactive)")


@rfm_app.command("compute")
def rfm_compute(as_of: Annotated[str | None, typer.Option(
        help="Score on purchases up to the end of this day (YYYY-MM-DD); default today.")]
        = None) -> None:
    """Score every buyer (recency, frequency, monetary 1-5), store the scores and groups on
    their profiles, and print each group's size and revenue share."""
    from clientela.analytics import queries as analytics_queries
    from clientela.analytics import service as analytics

    settings = get_settings()
    engine = get_engine()
    upgrade(engine)
    day = _day(as_of)
    with session_scope(engine) as session:
        done = analytics.compute_rfm(session=session, as_of=day, now=utcnow())
    with session_scope(engine, writes=False) as session:
        summary = analytics_queries.rfm(session=session, currency=settings.store_currency)
    typer.echo(f"RFM as of {done.as_of}: {done.customers} customers scored")
    for group in summary.groups:
        typer.echo(f"  {group.group:<20} {group.customers:>9} customers "
                   f"{100 * group.revenue_share:6.1f}% of revenue")


def _day(text: str | None) -> date:
    if text is None:
        return utcnow().date()
    try:
        return date.fromisoformat(text)
    except ValueError:
        err.print(f"[red]error[/red] --as-of: {text!r} is not a date (YYYY-MM-DD)")
        raise typer.Exit(2) from None
