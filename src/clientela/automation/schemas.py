"""The scenarios API's contracts."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, Field, StringConstraints

Name = Annotated[str, StringConstraints(min_length=1, max_length=200, strip_whitespace=True,
                                        pattern=r"^[^\x00]*$")]


class ScenarioIn(BaseModel):
    """Either `ready_made` (and optionally a name), or a whole definition."""

    ready_made: Literal["abandoned_cart", "welcome", "post_purchase", "win_back",
                        "birthday"] | str | None = None
    name: Name | None = None
    trigger: dict[str, Any] | None = None
    steps: list[dict[str, Any]] | None = Field(None, max_length=50)
    goal_event: Annotated[str, StringConstraints(min_length=1, max_length=255)] | None = None
    reentry: Literal["never", "after_exit", "always"] = "always"
    quiet_hours: tuple[Annotated[int, Field(ge=0, le=23)],
                       Annotated[int, Field(ge=0, le=23)]] | None = None


class ScenarioDefinition(BaseModel):
    """A whole definition, replacing the scenario's own (PUT); `active` is left as it is."""

    name: Name
    trigger: dict[str, Any]
    steps: list[dict[str, Any]] = Field(max_length=50)
    goal_event: Annotated[str, StringConstraints(min_length=1, max_length=255)] | None = None
    reentry: Literal["never", "after_exit", "always"] = "always"
    quiet_hours: tuple[Annotated[int, Field(ge=0, le=23)],
                       Annotated[int, Field(ge=0, le=23)]] | None = None


class ScenarioPatch(BaseModel):
    active: bool


class ScenarioOut(BaseModel):
    id: int
    name: str
    ready_made: str | None
    trigger: dict[str, Any]
    steps: list[dict[str, Any]]
    goal_event: str | None
    reentry: str
    quiet_start: int | None
    quiet_end: int | None
    active: bool
    active_since: datetime | None
    created_at: datetime


class ScenarioReport(BaseModel):
    scenario_id: int
    entered: int
    active: int = Field(description="In progress.")
    completed: int
    converted: int = Field(description="Reached the goal.")
    exited: int = Field(description="Left early: unsubscribed, left the segment, merged.")
    messages: int = Field(description="E-mails sent.")
    orders: int = Field(description="Orders placed while enrolled (the converting one too).")
    revenue: str
    currency: str
