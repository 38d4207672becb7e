"""/api/v1/scenarios: automated scenarios, ready-made or defined, switched on and off, with
their reports."""

from __future__ import annotations

from fastapi import APIRouter

from clientela.api.deps import ReadSessionDep, RowId, SecretKeyDep, SessionDep, SettingsDep
from clientela.automation import service
from clientela.automation.models import Scenario
from clientela.automation.schemas import (
    ScenarioDefinition,
    ScenarioIn,
    ScenarioOut,
    ScenarioPatch,
    ScenarioReport,
)
from clientela.core.clock import utcnow
from clientela.core.errors import InvalidInput

router = APIRouter(prefix="/api/v1", tags=["automation"])


def _out(scenario: Scenario) -> ScenarioOut:
    return ScenarioOut.model_validate(scenario, from_attributes=True)


@router.get("/scenarios", response_model=list[ScenarioOut])
def list_scenarios(session: ReadSessionDep, _key: SecretKeyDep) -> list[ScenarioOut]:
    return [_out(s) for s in service.list_scenarios(session=session)]


@router.post("/scenarios", response_model=ScenarioOut, status_code=201)
def create_scenario(body: ScenarioIn, session: SessionDep, _key: SecretKeyDep) -> ScenarioOut:
    """A scenario, switched off: a ready-made one (its e-mails created with it) or a whole
    definition (trigger, steps, goal, re-entry, quiet hours)."""
    now = utcnow()
    if body.ready_made is not None:
        scenario = service.create_ready_made(session=session, key=body.ready_made,
                                             name=body.name, now=now)
    else:
        if body.name is None or body.trigger is None or body.steps is None:
            raise InvalidInput("name, trigger and steps: required without ready_made",
                               code="invalid_scenario")
        scenario = service.create_scenario(
            session=session, name=body.name, trigger=body.trigger, steps=body.steps,
            goal_event=body.goal_event, reentry=body.reentry, quiet_hours=body.quiet_hours,
            now=now)
    session.commit()
    return _out(scenario)


@router.get("/scenarios/{scenario_id}", response_model=ScenarioOut)
def get_scenario(scenario_id: RowId, session: ReadSessionDep, _key: SecretKeyDep
                 ) -> ScenarioOut:
    return _out(service.get_scenario(session=session, scenario_id=scenario_id))


@router.put("/scenarios/{scenario_id}", response_model=ScenarioOut)
def update_scenario(scenario_id: RowId, body: ScenarioDefinition, session: SessionDep,
                    _key: SecretKeyDep) -> ScenarioOut:
    """Replace the definition (checked as on creation; switched on or off, it stays so).
    Customers already enrolled keep their step number: they run the step now at that
    place next."""
    scenario = service.update_scenario(
        session=session, scenario_id=scenario_id, name=body.name, trigger=body.trigger,
        steps=body.steps, goal_event=body.goal_event, reentry=body.reentry,
        quiet_hours=body.quiet_hours, now=utcnow())
    session.commit()
    return _out(scenario)


@router.patch("/scenarios/{scenario_id}", response_model=ScenarioOut)
def switch_scenario(scenario_id: RowId, body: ScenarioPatch, session: SessionDep,
                    _key: SecretKeyDep) -> ScenarioOut:
    """Switch on (from now on, what happens enrols customers) or off."""
    scenario = service.switch(session=session, scenario_id=scenario_id, active=body.active,
                              now=utcnow())
    session.commit()
    return _out(scenario)


@router.get("/scenarios/{scenario_id}/report", response_model=ScenarioReport)
def scenario_report(scenario_id: RowId, session: ReadSessionDep, settings: SettingsDep,
                    _key: SecretKeyDep) -> ScenarioReport:
    return service.report(session=session, scenario_id=scenario_id, now=utcnow(),
                          currency=settings.store_currency)
