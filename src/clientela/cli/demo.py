"""`clientela demo`: the demo shop (see `clientela.demo`), and an owner to sign in with."""

from __future__ import annotations

import time

from rich.console import Console
from rich.progress import Progress, TaskID
from sqlalchemy import Engine, select

from clientela.config import Settings
from clientela.core.clock import utcnow
from clientela.db import session_scope
from clientela.demo.loading import load, previous_anchor
from clientela.demo.store import anchor_for, generate
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
    seconds = time.perf_counter() - started
    console.print(
        f"demo: {loaded.customers} customers, {loaded.orders} past orders, "
        f"{loaded.calls} calls ({loaded.stored} new, {loaded.calls - loaded.stored} already "
        f"loaded), {loaded.abandoned_carts} carts abandoned, in {seconds:.1f}s "
        f"({loaded.customers / seconds:.0f} customers/s)", soft_wrap=True)
    console.print(f"Sign in at http://{settings.host}:{settings.port} as "
                  f"[bold]{DEMO_USER}[/bold] with password [bold]{DEMO_PASSWORD}[/bold]",
                  soft_wrap=True)
