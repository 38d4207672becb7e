"""Running scenarios: enrol whom their triggers name, then move every due enrolment through
its steps until a wait, the end, or an exit (the goal reached, consent withdrawn, the
segment left).

Each enrolment moves in a savepoint of its own, its step counter with the step's effects, so
a crash replays nothing twice: an e-mail step inserts a delivery keyed by (enrolment,
step), which the sender sends once. Only a webhook can be called again after a crash; it
carries an idempotency key for the receiver.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import httpx
import orjson
from sqlalchemy import exists, func, select
from sqlalchemy.orm import Session

from clientela.automation import triggers
from clientela.automation.definition import (
    Branch,
    Email,
    SegmentChanged,
    SetTrait,
    Step,
    Tag,
    Wait,
    Webhook,
    steps_of,
    trigger_of,
)
from clientela.automation.models import Enrolment, Scenario
from clientela.commerce.ecommerce import ORDER_COMPLETED
from clientela.commerce.models import Order
from clientela.config import Settings
from clientela.core.errors import ClientelaError
from clientela.core.types import db_time
from clientela.customers import service as customers
from clientela.customers.models import Customer
from clientela.db import driver_executemany
from clientela.messaging.best_hour import best_hour_of, next_hour
from clientela.segments import service as segments
from clientela.segments.models import SegmentMember
from clientela.tracking.models import Event

log = logging.getLogger(__name__)
LOOKBACK = timedelta(days=2)  # how far back a trigger looks (enrolling is idempotent)
BATCH = 500
WEBHOOK_RETRY = timedelta(minutes=5)  # doubled after each failure ...
WEBHOOK_ATTEMPTS = 6  # ... and after this many (over about 5 hours) the step is skipped
Post = Callable[[str, bytes, dict[str, str]], int]  # url, body, headers -> HTTP status


def http_post(url: str, body: bytes, headers: dict[str, str]) -> int:
    return httpx.post(url, content=body, headers=headers, timeout=10).status_code


@dataclass(frozen=True)
class Run:
    """One pass of the engine: the clock, the settings, how webhooks are posted."""

    settings: Settings
    now: datetime
    post: Post = http_post
    # The shop's best hour, found once per run when a customer has no signal of their own.
    shop_hour: dict[str, int | None] = field(default_factory=dict)

    def best_hour(self, session: Session, customer_id: int) -> int | None:
        """The customer's best hour, else the shop's; None: no signal from anyone."""
        own = best_hour_of(session=session, now=self.now, customer_id=customers.surviving_id(
            session=session, customer_id=customer_id))
        if own is not None:
            return own
        if "shop" not in self.shop_hour:
            self.shop_hour["shop"] = best_hour_of(session=session, customer_id=None,
                                                  now=self.now)
        return self.shop_hour["shop"]


def enrol(*, session: Session, scenario: Scenario, now: datetime) -> int:
    """Enrol the customers the scenario's trigger names (by its re-entry rule); how many."""
    since = max(scenario.active_since or now, now - LOOKBACK)
    found = triggers.candidates(session=session, trigger=trigger_of(scenario.trigger),
                                since=since, now=now)
    if not found:
        return 0
    if scenario.reentry != "always":
        statuses = ("active",) if scenario.reentry == "after_exit" else (
            "active", "completed", "converted", "exited")
        busy = set(session.scalars(select(Enrolment.customer_id).where(
            Enrolment.scenario_id == scenario.id, Enrolment.status.in_(statuses),
            Enrolment.customer_id.in_({customer for customer, _ in found}))))
        first: dict[int, str] = {}
        for customer, key in sorted(found):
            if customer not in busy:
                first.setdefault(customer, key)
        found = sorted(first.items())
    moment = db_time(now)
    before = _count(session, scenario.id)
    driver_executemany(
        session, "INSERT INTO enrolments (scenario_id, customer_id, key, status, step, "
        "next_run_at, entered_at) VALUES (?, ?, ?, 'active', 0, ?, ?) "
        "ON CONFLICT (scenario_id, customer_id, key) DO NOTHING",
        [(scenario.id, customer, key, moment, moment) for customer, key in found])
    return _count(session, scenario.id) - before


def _count(session: Session, scenario_id: int) -> int:
    return session.scalar(select(func.count()).where(
        Enrolment.scenario_id == scenario_id)) or 0


def advance(*, session: Session, run: Run, batch: int = BATCH) -> int:
    """Move (up to `batch`) due enrolments of active scenarios on; how many moved."""
    due = select(Enrolment).join(Scenario, Scenario.id == Enrolment.scenario_id).where(
        Scenario.active.is_(True), Enrolment.status == "active",
        Enrolment.next_run_at <= run.now).order_by(Enrolment.next_run_at, Enrolment.id
                                                   ).limit(batch)
    if session.get_bind().dialect.name == "postgresql":
        due = due.with_for_update(of=Enrolment, skip_locked=True)
    enrolments = list(session.scalars(due))
    scenarios = {s.id: s for s in session.scalars(select(Scenario).where(
        Scenario.id.in_({e.scenario_id for e in enrolments})))}
    for enrolment in enrolments:
        try:
            with session.begin_nested():
                _move(session, run, scenarios[enrolment.scenario_id], enrolment)
        except ClientelaError as error:  # e.g. a branch naming a segment since deleted
            _finish(enrolment, "exited", f"error: {error.message}"[:200], run.now)
    return len(enrolments)


def _move(session: Session, run: Run, scenario: Scenario, enrolment: Enrolment) -> None:
    exit_reason = _exit_reason(session, scenario, enrolment)
    if exit_reason is not None:
        status = "converted" if exit_reason == "goal" else "exited"
        _finish(enrolment, status, exit_reason, run.now)
        return
    steps = steps_of(scenario.steps)
    while enrolment.step < len(steps):
        step = steps[enrolment.step]
        following = _run_step(session, run, scenario, enrolment, step)
        if following is None:  # waits: come back later
            return
        enrolment.step = following
    _finish(enrolment, "completed", None, run.now)


def _finish(enrolment: Enrolment, status: str, reason: str | None, now: datetime) -> None:
    enrolment.status, enrolment.reason, enrolment.finished_at = status, reason, now


def _exit_reason(session: Session, scenario: Scenario, enrolment: Enrolment) -> str | None:
    """Why the enrolment ends before its next step: "goal", "unsubscribed", "left segment"."""
    if scenario.goal_event and _reached(session, scenario.goal_event, enrolment):
        return "goal"
    customer = session.get(Customer, enrolment.customer_id)
    if customer is None or customer.email_marketing == "unsubscribed":
        return "unsubscribed"
    if customer.merged_into_id is not None:
        return "merged"
    trigger = trigger_of(scenario.trigger)
    if (isinstance(trigger, SegmentChanged) and trigger.type == "segment_entered"
            and trigger.exit_on_leave and session.get(
                SegmentMember, (trigger.segment_id, enrolment.customer_id)) is None):
        return "left segment"
    return None


def _reached(session: Session, goal: str, enrolment: Enrolment) -> bool:
    """Whether the customer did `goal` since entering; an order counts as "Order Completed"
    however it arrived (a store webhook or an import creates no event)."""
    customer = customers.surviving_id(session=session, customer_id=enrolment.customer_id)
    if session.scalar(select(exists().where(Event.customer_id == customer, Event.event == goal,
                                            Event.timestamp >= enrolment.entered_at))):
        return True
    return goal == ORDER_COMPLETED and bool(session.scalar(select(exists().where(
        Order.customer_id == customer, Order.status != "cancelled",
        Order.placed_at >= enrolment.entered_at))))


def _run_step(session: Session, run: Run, scenario: Scenario, enrolment: Enrolment,
              step: Step) -> int | None:
    """Do one step; the index of the next one, or None to wait (next_run_at is set)."""
    index = enrolment.step
    if isinstance(step, Wait):  # from now; the enrolment comes back at the next step
        enrolment.next_run_at, enrolment.step = _until(session, run, step, enrolment), index + 1
        return None
    if isinstance(step, Email):
        _queue_email(session, scenario, enrolment, step, run.now)
    elif isinstance(step, Branch):
        return index + 1 if _matches(session, run, step.rule, enrolment.customer_id) \
            else step.else_step
    elif isinstance(step, Tag):
        if step.add:
            customers.add_tags(session=session, customer_id=enrolment.customer_id,
                               tags=[step.add])
        else:
            customers.remove_tag(session=session, customer_id=enrolment.customer_id,
                                 tag=step.remove or "")
    elif isinstance(step, SetTrait):
        customers.apply_trait_observations(
            session=session, observations={enrolment.customer_id: [({step.key: step.value},
                                                                    run.now)]},
            source=f"scenario {scenario.id}", default_region=run.settings.default_country)
    elif isinstance(step, Webhook) and not _call(run, scenario, enrolment, step):
        enrolment.attempts += 1
        if enrolment.attempts < WEBHOOK_ATTEMPTS:
            enrolment.next_run_at = run.now + WEBHOOK_RETRY * 2 ** (enrolment.attempts - 1)
            return None
        log.warning("scenario %s, enrolment %s: webhook step %s skipped after %s attempts",
                    scenario.id, enrolment.id, index, enrolment.attempts)
    enrolment.attempts = 0
    return index + 1


def _until(session: Session, run: Run, step: Wait, enrolment: Enrolment) -> datetime:
    """When the wait ends: a best hour of "now" goes on at once; with no signal from
    anyone, there is no best hour to wait for."""
    now = run.now
    if step.hours is not None:
        return now + timedelta(hours=step.hours)
    if step.days is not None:
        return now + timedelta(days=step.days)
    if step.best_hour:
        hour = run.best_hour(session, enrolment.customer_id)
        return now if hour is None else next_hour(now, hour)
    at = now.replace(hour=step.until_hour or 0, minute=0, second=0, microsecond=0)
    return at if at > now else at + timedelta(days=1)


def _queue_email(session: Session, scenario: Scenario, enrolment: Enrolment, step: Email,
                 now: datetime) -> None:
    customer = session.get(Customer, enrolment.customer_id)
    if customer is None or customer.email is None:
        return
    due = _after_quiet_hours(scenario, now)
    driver_executemany(
        session, "INSERT INTO deliveries (enrolment_id, step, customer_id, email, status, "
        "due_at, attempts, template_id, subject, tracking, coupon) VALUES (?, ?, ?, ?, "
        "'pending', ?, 0, ?, ?, ?, ?) ON CONFLICT (enrolment_id, step) DO NOTHING",
        [(enrolment.id, enrolment.step, customer.id, customer.email, db_time(due),
          step.template_id, step.subject, True, step.coupon)])


def _after_quiet_hours(scenario: Scenario, now: datetime) -> datetime:
    """`now`, or the end of the scenario's quiet hours when `now` falls inside them."""
    start, end = scenario.quiet_start, scenario.quiet_end
    if start is None or end is None or start == end:
        return now
    inside = start <= now.hour < end if start < end else (now.hour >= start or now.hour < end)
    if not inside:
        return now
    at = now.replace(hour=end, minute=0, second=0, microsecond=0)
    return at if at > now else at + timedelta(days=1)


def _matches(session: Session, run: Run, rule: dict[str, Any], customer_id: int) -> bool:
    members = segments.members_of(session=session, rule=rule, now=run.now,
                                  currency=run.settings.store_currency)
    return bool(session.scalar(select(exists(members.where(Customer.id == customer_id)))))


def webhook_signature(secret: str, body: bytes) -> str:
    key = hashlib.sha256(f"clientela-webhook:{secret}".encode()).digest()
    return base64.b64encode(hmac.new(key, body, hashlib.sha256).digest()).decode()


def _call(run: Run, scenario: Scenario, enrolment: Enrolment, step: Webhook) -> bool:
    body = orjson.dumps({"scenario_id": scenario.id, "scenario": scenario.name,
                         "enrolment_id": enrolment.id, "step": enrolment.step,
                         "customer_id": enrolment.customer_id, "at": run.now.isoformat()})
    headers = {"Content-Type": "application/json",
               "X-Clientela-Signature": webhook_signature(run.settings.secret_key, body),
               "Idempotency-Key": f"enrolment-{enrolment.id}-step-{enrolment.step}"}
    try:
        status = run.post(step.url, body, headers)
    except httpx.HTTPError:
        return False
    return 200 <= status < 300
