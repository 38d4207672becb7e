"""Dashboard pages for scenarios: the list (each with its trigger in words, an on/off switch
and its report; ready-made ones created with a click), and a scenario's page: the editor
(trigger, goal, re-entry, quiet hours, and the steps as an ordered list with branches, see
static/scenarios.js) beside its report, with how many customers wait at each step."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from pydantic import BaseModel
from sqlalchemy.orm import Session

from clientela.api.deps import ReadSessionDep, RowId, SessionDep, SettingsDep
from clientela.automation import service
from clientela.automation.models import Scenario
from clientela.config import Settings
from clientela.core.clock import utcnow
from clientela.core.errors import ClientelaError, InvalidInput, NotFound
from clientela.messaging import queries as messaging_queries
from clientela.segments import queries as segment_queries
from clientela.web.insights import rule_vocabulary
from clientela.web.mail import ID, checked_text
from clientela.web.pages import UserDep, not_found, page
from clientela.web.scenario_words import REENTRY, STEPS, TRIGGERS, step_words, trigger_words

router = APIRouter(include_in_schema=False)


class ScenarioForm(BaseModel):
    """The editor's fields as the browser posts them (text, checked when read); `steps` is
    the steps' JSON, kept by the editor's script (or typed)."""

    name: str = ""
    trigger_type: str = ""
    trigger_event: str = ""
    trigger_segment_id: str = ""
    trigger_exit_on_leave: str = ""  # a checkbox: absent when not ticked
    trigger_days: str = ""
    trigger_followed_by: str = ""
    trigger_within_hours: str = ""
    goal_event: str = ""
    reentry: str = "always"
    quiet_start: str = ""
    quiet_end: str = ""
    steps: str = "[]"


FormDep = Annotated[ScenarioForm, Form()]


@dataclass(frozen=True)
class _Definition:
    name: str
    trigger: dict[str, Any]
    steps: Any
    goal_event: str | None
    reentry: str
    quiet_hours: tuple[int, int] | None


def _invalid(message: str) -> InvalidInput:
    return InvalidInput(message, code="invalid_scenario")


def _whole(field: str, text: str) -> int:
    if not ID.fullmatch(text.strip()):
        raise _invalid(f"{field}: must be a whole number")
    return int(text)


def _hours(field: str, text: str) -> float:
    try:
        hours = float(text.strip().replace(",", "."))
    except ValueError:
        raise _invalid(f"{field}: must be a number of hours") from None
    return int(hours) if hours.is_integer() else hours


def _trigger(form: ScenarioForm) -> dict[str, Any]:
    """The trigger the form's fields for its type describe (the others are ignored)."""
    kind = form.trigger_type
    if kind == "event":
        return {"type": kind, "event": checked_text("trigger.event", form.trigger_event,
                                                    limit=255).strip()}
    if kind == "event_not_followed":
        return {"type": kind,
                "event": checked_text("trigger.event", form.trigger_event, limit=255).strip(),
                "followed_by": checked_text("trigger.followed_by", form.trigger_followed_by,
                                            limit=255).strip(),
                "within_hours": _hours("trigger.within_hours", form.trigger_within_hours)}
    if kind in ("segment_entered", "segment_left"):
        if not ID.fullmatch(form.trigger_segment_id):
            raise _invalid("trigger.segment_id: choose a segment")
        trigger: dict[str, Any] = {"type": kind, "segment_id": int(form.trigger_segment_id)}
        if kind == "segment_entered":
            trigger["exit_on_leave"] = bool(form.trigger_exit_on_leave)
        return trigger
    if kind == "days_since_last_order":
        return {"type": kind, "days": _whole("trigger.days", form.trigger_days)}
    return {"type": kind}


def _quiet_hours(form: ScenarioForm) -> tuple[int, int] | None:
    start, end = form.quiet_start.strip(), form.quiet_end.strip()
    if not start and not end:
        return None
    if not (ID.fullmatch(start) and ID.fullmatch(end)):
        raise _invalid("quiet_hours: give both hours (0 to 23), or neither")
    return int(start), int(end)


def _steps(text: str) -> Any:
    try:
        return json.loads(text)
    except ValueError:
        raise _invalid("steps: not JSON") from None


def _definition(form: ScenarioForm) -> _Definition:
    """The form's values as the domain takes them; InvalidInput naming a bad field."""
    goal = checked_text("goal_event", form.goal_event, required=False, limit=255).strip()
    return _Definition(name=checked_text("name", form.name, limit=200).strip(),
                       trigger=_trigger(form), steps=_steps(form.steps),
                       goal_event=goal or None, reentry=form.reentry,
                       quiet_hours=_quiet_hours(form))


def _form_of(scenario: Scenario) -> ScenarioForm:
    trigger = scenario.trigger
    return ScenarioForm(
        name=scenario.name, trigger_type=trigger.get("type", ""),
        trigger_event=trigger.get("event", ""),
        trigger_segment_id=str(trigger.get("segment_id", "")),
        trigger_exit_on_leave="on" if trigger.get("exit_on_leave", True) else "",
        trigger_days=str(trigger.get("days", "")),
        trigger_followed_by=trigger.get("followed_by", ""),
        trigger_within_hours=f"{trigger['within_hours']:g}" if "within_hours" in trigger else "",
        goal_event=scenario.goal_event or "",
        reentry=scenario.reentry, steps=json.dumps(scenario.steps, ensure_ascii=False),
        quiet_start="" if scenario.quiet_start is None else str(scenario.quiet_start),
        quiet_end="" if scenario.quiet_end is None else str(scenario.quiet_end))


def _segment_names(session: Session) -> dict[int, str]:
    return {s.id: s.name for s in segment_queries.list_segments(session=session)}


# --- the list ------------------------------------------------------------------------------


def _list(request: Request, session: Session, settings: Settings, user: str, *,
          status: int = 200, error: str | None = None) -> HTMLResponse:
    scenarios, names = service.list_scenarios(session=session), _segment_names(session)
    reports = service.reports(session=session, scenario_ids=[s.id for s in scenarios],
                              now=utcnow(), currency=settings.store_currency)
    rows = [(scenario, trigger_words(scenario.trigger, names), reports[scenario.id])
            for scenario in scenarios]
    created = {scenario.ready_made for scenario in scenarios}
    ready = {key: name for key, name in service.ready_made_names().items()
             if key not in created}
    return page(request, "scenarios.html", status=status, user=user, rows=rows, ready=ready,
                error=error)


@router.get("/scenarios", response_class=HTMLResponse)
def scenarios_page(request: Request, session: ReadSessionDep, settings: SettingsDep,
                   user: UserDep) -> HTMLResponse:
    return _list(request, session, settings, user)


@router.post("/scenarios/ready-made", response_class=HTMLResponse)
def create_ready_made(request: Request, session: SessionDep, settings: SettingsDep,
                      user: UserDep, key: Annotated[str, Form()] = "") -> Response:
    """One of the ready-made scenarios (switched off, its e-mails created with it)."""
    try:
        scenario = service.create_ready_made(session=session, key=key, name=None,
                                             now=utcnow())
    except ClientelaError as error:
        session.rollback()
        return _list(request, session, settings, user, status=error.status,
                     error=error.message)
    session.commit()
    return RedirectResponse(f"/scenarios/{scenario.id}", status_code=303)


@router.post("/scenarios/{scenario_id}/switch", response_class=HTMLResponse)
def switch_scenario(scenario_id: RowId, request: Request, session: SessionDep, user: UserDep,
                    active: Annotated[str, Form()] = "",
                    back: Annotated[str, Form()] = "") -> Response:
    """Switch on or off; htmx gets the switch back, a plain form the page it came from."""
    try:
        scenario = service.switch(session=session, scenario_id=scenario_id,
                                  active=active == "on", now=utcnow())
    except NotFound as error:
        return not_found(request, user, error.message)
    session.commit()
    if request.headers.get("hx-request"):
        return page(request, "_scenario_switch.html", s=scenario, back=back)
    return RedirectResponse("/scenarios" if back == "list" else f"/scenarios/{scenario_id}",
                            status_code=303)


# --- a scenario: the editor and the report -------------------------------------------------


def _report(session: Session, settings: Settings, scenario: Scenario) -> dict[str, Any]:
    """The scenario's figures, and each saved step in words with the customers waiting to
    run it next (any past the last step, after steps were removed, are counted apart)."""
    waiting = service.waiting_by_step(session=session, scenario_id=scenario.id)
    templates = {t.id: t.name for t in messaging_queries.list_templates(session=session)}
    count = len(scenario.steps)
    return {"report": service.report(session=session, scenario_id=scenario.id, now=utcnow(),
                                     currency=settings.store_currency),
            "steps_report": [(index + 1, step_words(step, count, templates),
                              waiting.get(index, 0))
                             for index, step in enumerate(scenario.steps)],
            "past_the_end": sum(n for index, n in waiting.items() if index >= count),
            "trigger_words": trigger_words(scenario.trigger, _segment_names(session))}


def _editor(request: Request, session: Session, settings: Settings, user: str,
            form: ScenarioForm, scenario: Scenario | None, *, status: int = 200,
            error: ClientelaError | None = None) -> HTMLResponse:
    templates = messaging_queries.list_templates(session=session)
    editor = {"templates": [{"id": t.id, "name": t.name, "subject": t.subject}
                            for t in templates],
              "kinds": STEPS, "rules": rule_vocabulary(session)}
    saved = _report(session, settings, scenario) if scenario else {}
    return page(request, "scenario.html", status=status, user=user, form=form,
                scenario=scenario, triggers=TRIGGERS, reentries=REENTRY,
                segments=segment_queries.list_segments(session=session),
                editor=json.dumps(editor), error=error.message if error else None, **saved)


@router.get("/scenarios/new", response_class=HTMLResponse)
def new_scenario_page(request: Request, session: ReadSessionDep, settings: SettingsDep,
                      user: UserDep) -> HTMLResponse:
    blank = ScenarioForm(trigger_type="subscribed", trigger_exit_on_leave="on")
    return _editor(request, session, settings, user, blank, None)


@router.post("/scenarios", response_class=HTMLResponse)
def create_scenario(request: Request, session: SessionDep, settings: SettingsDep,
                    user: UserDep, form: FormDep) -> Response:
    try:
        scenario = service.create_scenario(session=session, now=utcnow(),
                                           **vars(_definition(form)))
    except ClientelaError as error:
        session.rollback()
        return _editor(request, session, settings, user, form, None, status=error.status,
                       error=error)
    session.commit()
    return RedirectResponse(f"/scenarios/{scenario.id}", status_code=303)


def _found(session: Session, scenario_id: int) -> Scenario | None:
    try:
        return service.get_scenario(session=session, scenario_id=scenario_id)
    except NotFound:
        return None


def _missing(request: Request, user: str, scenario_id: int) -> HTMLResponse:
    return not_found(request, user, f"scenario {scenario_id} not found")


@router.get("/scenarios/{scenario_id}", response_class=HTMLResponse)
def scenario_page(scenario_id: RowId, request: Request, session: ReadSessionDep,
                  settings: SettingsDep, user: UserDep) -> HTMLResponse:
    scenario = _found(session, scenario_id)
    if scenario is None:
        return _missing(request, user, scenario_id)
    return _editor(request, session, settings, user, _form_of(scenario), scenario)


@router.post("/scenarios/{scenario_id}", response_class=HTMLResponse)
def update_scenario(scenario_id: RowId, request: Request, session: SessionDep,
                    settings: SettingsDep, user: UserDep, form: FormDep) -> Response:
    """Save the editor; on an error nothing is saved and the editor shows what was typed."""
    if _found(session, scenario_id) is None:
        return _missing(request, user, scenario_id)
    try:
        service.update_scenario(session=session, scenario_id=scenario_id, now=utcnow(),
                                **vars(_definition(form)))
    except ClientelaError as error:
        session.rollback()
        return _editor(request, session, settings, user, form,
                       _found(session, scenario_id), status=error.status, error=error)
    session.commit()
    return RedirectResponse(f"/scenarios/{scenario_id}", status_code=303)
