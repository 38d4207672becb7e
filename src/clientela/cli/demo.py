"""`clientela demo`: the demo shop (see `clientela.demo`), and an owner to sign in with."""

from __future__ import annotations

import time

from rich.console import Console
from rich.progress import Progress, TaskID
from sqlalchemy import Engine, select

from clientela.analytics import service as analytics
from clientela.config import Settings
from clientela.core.clock import utcnow
from clientela.core.errors import ClientelaError
from clientela.db import session_scope
from clientela.demo.loading import load, previous_anchor
from clientela.demo.store import anchor_for, generate
from clientela.segments import queries as segment_queries
from clientela.segments import service as segments
from clientela.team import service as team
from clientela.team.models import ApiKey, User

DEMO_USER = "owner@clientela.demo"
DEMO_PASSWORD = "clientela-demo"


def _source_id(engine: Engine) -> int:
    with session_scope(engine) as session:
        existing = session.scalar(select(ApiKey.id).where(ApiKey.name == "demo",
                                                          ApiKey.kind == "write"))
        return existing or team.create_key(session=session, kind="write", name="demo").id


def _ensure_owner(engine: Engine) -> None:
    with session_scope(engine) as session:
        if session.scalar(select(User.id).where(User.email == DEMO_USER)) is None:
            team.create_user(session=session, email=DEMO_USER, password=DEMO_PASSWORD,
                             role="owner")


EXAMPLE_SEGMENTS = (
    ("Abandoned a cart this week", "Added to a cart in the last 7 days and did not order",
     {"all": [{"event": "Product Added", "within_days": 7},
              {"not": {"event": "Order Completed", "within_days": 7}}]}),
    ("Champions", "RFM: bought recently and often", {"rfm_group": "Champions"}),
    ("Subscribed, drifting away", "Can be e-mailed, and the model doubts they will be back",
     {"all": [{"field": "email_marketing", "op": "eq", "value": "subscribed"},
              {"field": "churn_risk", "op": "gte", "value": 0.5}]}),
)


def _insights(engine: Engine, settings: Settings) -> str:
    """RFM, predictions and a few example segments, so the dashboard shows them at once
    (the worker refreshes them from then on)."""
    now = utcnow()
    with session_scope(engine) as session:
        scored = analytics.compute_rfm(session=session, as_of=now.date(), now=now)
    try:
        with session_scope(engine) as session:
            predicted = analytics.predict(
                session=session, now=now, unit="weeks", currency=settings.store_currency,
                horizon_months=settings.clv_horizon_months,
                monthly_discount_rate=settings.clv_monthly_discount_rate).customers
    except ClientelaError:  # too few repeat buyers to fit, in a tiny demo
        predicted = 0
    with session_scope(engine) as session:
        existing = {segment.name for segment in segment_queries.list_segments(session=session)}
        for name, description, rule in EXAMPLE_SEGMENTS:
            if name not in existing:
                segment = segments.create_segment(session=session, name=name, rule=rule,
                                                  description=description, now=now,
                                                  currency=settings.store_currency)
                segments.recompute(session=session, segment_id=segment.id, now=now,
                                   currency=settings.store_currency)
    return (f"RFM scores for {scored.customers} buyers, predictions for {predicted}, "
            f"{len(EXAMPLE_SEGMENTS)} example segments")


def load_demo(*, engine: Engine, settings: Settings, customers: int, seed: int) -> None:
    """Generate the shop, load it, and print what was loaded, how fast, and how to sign in."""
    console = Console()
    started = time.perf_counter()
    source_id = _source_id(engine)
    anchor = previous_anchor(engine=engine, source_id=source_id) or anchor_for(utcnow())
    shop = generate(customers=customers, seed=seed, anchor=anchor)
    _ensure_owner(engine)
    with Progress(console=console, transient=True) as progress:
        tasks: dict[str, TaskID] = {}

        def advance(what: str, done: int, total: int) -> None:
            if what not in tasks:
                tasks[what] = progress.add_task(f"loading demo {what}", total=total)
            progress.update(tasks[what], completed=done)

        loaded = load(engine=engine, settings=settings, shop=shop, source_id=source_id,
                      progress=advance)
    insights = _insights(engine, settings)
    seconds = time.perf_counter() - started
    console.print(
        f"demo: {loaded.customers} customers, {loaded.orders} past orders, "
        f"{loaded.calls} calls ({loaded.stored} new, {loaded.calls - loaded.stored} already "
        f"loaded), {loaded.abandoned_carts} carts abandoned, in {seconds:.1f}s "
        f"({loaded.customers / seconds:.0f} customers/s)", soft_wrap=True)
    console.print(insights, soft_wrap=True)
    console.print(f"Sign in at http://{settings.host}:{settings.port} as "
                  f"[bold]{DEMO_USER}[/bold] with password [bold]{DEMO_PASSWORD}[/bold]",
                  soft_wrap=True)
