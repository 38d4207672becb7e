"""Scenarios: creating them (from scratch or ready-made), switching them on and off, and
running them (see `engine`)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from clientela.automation import engine
from clientela.automation.definition import Branch, Email, Step, steps_of, trigger_of
from clientela.automation.models import REENTRY, Enrolment, Scenario
from clientela.automation.ready import READY_MADE
from clientela.automation.schemas import ScenarioReport
from clientela.commerce.models import Order
from clientela.core.errors import InvalidInput, NotFound
from clientela.core.money import as_decimal
from clientela.db import flush_named
from clientela.messaging import service as messaging
from clientela.messaging.models import Delivery
from clientela.segments import service as segments

QuietHours = tuple[int, int] | None


def check_definition(*, session: Session, trigger: Any, steps: Any, reentry: str,
                     quiet_hours: QuietHours, now: datetime) -> None:
    """Refuse a scenario that could not run, naming the field: its trigger, its steps (the
    templates they send must exist, their rules must compile), re-entry and quiet hours."""
    trigger_of(trigger)
    for index, step in enumerate(steps_of(steps)):
        _check_step(session, index, step, now)
    if reentry not in REENTRY:
        raise InvalidInput(f"reentry: must be one of {', '.join(REENTRY)}",
                           code="invalid_scenario")
    if quiet_hours is not None and not all(0 <= hour <= 23 for hour in quiet_hours):
        raise InvalidInput("quiet_hours: hours from 0 to 23", code="invalid_scenario")


def _check_step(session: Session, index: int, step: Step, now: datetime) -> None:
    if isinstance(step, Branch):
        try:
            segments.members_of(session=session, rule=step.rule, now=now,
                                currency="BRL")  # compiled only: any currency will do
        except InvalidInput as error:
            raise InvalidInput(f"steps.{index}.{error.message}",
                               code="invalid_scenario") from None
    if isinstance(step, Email):
        try:
            messaging.get_template(session=session, template_id=step.template_id)
        except NotFound:
            raise InvalidInput(f"steps.{index}.template_id: there is no template "
                               f"{step.template_id}", code="invalid_scenario") from None


def create_scenario(*, session: Session, name: str, trigger: Any, steps: Any,
                    goal_event: str | None, reentry: str, quiet_hours: QuietHours,
                    now: datetime, ready_made: str | None = None) -> Scenario:
    """A scenario, switched off; its trigger and steps checked (templates must exist)."""
    check_definition(session=session, trigger=trigger, steps=steps, reentry=reentry,
                     quiet_hours=quiet_hours, now=now)
    start, end = quiet_hours if quiet_hours else (None, None)
    scenario = Scenario(name=name, ready_made=ready_made, trigger=trigger, steps=steps,
                        goal_event=goal_event, reentry=reentry, quiet_start=start,
                        quiet_end=end, active=False, created_at=now, updated_at=now)
    session.add(scenario)
    flush_named(session, "scenario", name)
    return scenario


def update_scenario(*, session: Session, scenario_id: int, name: str, trigger: Any,
                    steps: Any, goal_event: str | None, reentry: str,
                    quiet_hours: QuietHours, now: datetime) -> Scenario:
    """Replace a scenario's definition, checked as when it was created; nothing changes if a
    check fails. A switched-on scenario may be changed: enrolments keep their step index (the
    next step to run), so a customer waiting at step 3 runs the new step 3 next, whatever
    was moved, added or removed before it; one past the new last step is completed."""
    scenario = get_scenario(session=session, scenario_id=scenario_id)
    check_definition(session=session, trigger=trigger, steps=steps, reentry=reentry,
                     quiet_hours=quiet_hours, now=now)
    start, end = quiet_hours if quiet_hours else (None, None)
    scenario.name, scenario.trigger, scenario.steps = name, trigger, steps
    scenario.goal_event, scenario.reentry = goal_event, reentry
    scenario.quiet_start, scenario.quiet_end, scenario.updated_at = start, end, now
    flush_named(session, "scenario", name)
    return scenario


def create_ready_made(*, session: Session, key: str, name: str | None, now: datetime
                      ) -> Scenario:
    """One of the ready-made scenarios, its e-mail templates created with it."""
    ready = READY_MADE.get(key)
    if ready is None:
        raise InvalidInput(f"ready_made: must be one of {', '.join(sorted(READY_MADE))}",
                           code="invalid_scenario")
    title = name or ready.name
    template_ids = [messaging.create_template(
        session=session, name=f"{title}: {letter.name}", subject=letter.subject,
        html=letter.html, text=None, now=now).id for letter in ready.letters]
    return create_scenario(session=session, name=title, trigger=ready.trigger,
                           steps=ready.steps(template_ids), goal_event=ready.goal_event,
                           reentry=ready.reentry, quiet_hours=(22, 8), now=now,
                           ready_made=key)


def ready_made_names() -> dict[str, str]:
    """The ready-made scenarios' keys and names."""
    return {key: ready.name for key, ready in READY_MADE.items()}


def get_scenario(*, session: Session, scenario_id: int) -> Scenario:
    scenario = session.get(Scenario, scenario_id)
    if scenario is None:
        raise NotFound(f"scenario {scenario_id} not found", code="scenario_not_found")
    return scenario


def switch(*, session: Session, scenario_id: int, active: bool, now: datetime) -> Scenario:
    """Switch a scenario on (what happens from now on enrols customers) or off (enrolled
    customers wait where they are)."""
    scenario = get_scenario(session=session, scenario_id=scenario_id)
    if active and not scenario.active:
        scenario.active_since = now
    scenario.active, scenario.updated_at = active, now
    session.flush()
    return scenario


def enrol_all(*, session: Session, now: datetime) -> int:
    """Enrol for every active scenario: how many customers entered."""
    return sum(engine.enrol(session=session, scenario=scenario, now=now)
               for scenario in session.scalars(select(Scenario).where(
                   Scenario.active.is_(True))))


def counts(*, session: Session, scenario_id: int) -> dict[str, int]:
    """Enrolments of the scenario by status."""
    return _counts(session, [scenario_id])[scenario_id]


def _counts(session: Session, scenario_ids: list[int]) -> dict[int, dict[str, int]]:
    found: dict[int, dict[str, int]] = {scenario_id: {} for scenario_id in scenario_ids}
    for scenario_id, status, n in session.execute(select(
            Enrolment.scenario_id, Enrolment.status, func.count()).where(
            Enrolment.scenario_id.in_(scenario_ids)).group_by(
            Enrolment.scenario_id, Enrolment.status)).tuples():
        found[scenario_id][status] = n
    return found


def waiting_by_step(*, session: Session, scenario_id: int) -> dict[int, int]:
    """Enrolments in progress by the step they run next."""
    return dict(session.execute(select(Enrolment.step, func.count()).where(
        Enrolment.scenario_id == scenario_id, Enrolment.status == "active").group_by(
        Enrolment.step)).tuples().all())


def report(*, session: Session, scenario_id: int, now: datetime, currency: str
           ) -> ScenarioReport:
    """The scenario's report (see `reports`)."""
    get_scenario(session=session, scenario_id=scenario_id)
    return reports(session=session, scenario_ids=[scenario_id], now=now,
                   currency=currency)[scenario_id]


def reports(*, session: Session, scenario_ids: list[int], now: datetime, currency: str
            ) -> dict[int, ScenarioReport]:
    """Each scenario's entered, in progress, completed, converted, exited; messages sent;
    orders placed while enrolled and their revenue. Three grouped queries in all."""
    by_status = _counts(session, scenario_ids)
    messages = dict(session.execute(select(Enrolment.scenario_id, func.count()).select_from(
        Delivery).join(Enrolment, Enrolment.id == Delivery.enrolment_id).where(
        Enrolment.scenario_id.in_(scenario_ids), Delivery.status == "sent").group_by(
        Enrolment.scenario_id)).tuples().all())
    sales = {scenario_id: (int(orders or 0), int(revenue or 0))
             for scenario_id, orders, revenue in session.execute(
                 select(Enrolment.scenario_id, func.count(Order.id),
                        func.coalesce(func.sum(Order.net_store_cents), 0))
                 .join(Enrolment, Enrolment.customer_id == Order.customer_id)
                 .where(Enrolment.scenario_id.in_(scenario_ids),
                        Order.status.not_in(("cancelled", "refunded")),
                        Order.placed_at >= Enrolment.entered_at,
                        Order.placed_at <= func.coalesce(Enrolment.finished_at, now))
                 .group_by(Enrolment.scenario_id)).tuples()}
    return {scenario_id: _report(scenario_id, by_status[scenario_id],
                                 messages.get(scenario_id, 0), sales.get(scenario_id, (0, 0)),
                                 currency) for scenario_id in scenario_ids}


def _report(scenario_id: int, by_status: dict[str, int], messages: int,
            sales: tuple[int, int], currency: str) -> ScenarioReport:
    orders, revenue = sales
    return ScenarioReport(
        scenario_id=scenario_id, entered=sum(by_status.values()),
        active=by_status.get("active", 0), completed=by_status.get("completed", 0),
        converted=by_status.get("converted", 0), exited=by_status.get("exited", 0),
        messages=messages, orders=orders, revenue=str(as_decimal(revenue, currency)),
        currency=currency)


def list_scenarios(*, session: Session) -> list[Scenario]:
    return list(session.scalars(select(Scenario).order_by(Scenario.name)))
