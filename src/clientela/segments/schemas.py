"""The segments API's contracts."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from pydantic import BaseModel, Field, StringConstraints

Name = Annotated[str, StringConstraints(min_length=1, max_length=200, strip_whitespace=True,
                                        pattern=r"^[^\x00]*$")]
Description = Annotated[str, StringConstraints(max_length=2000, pattern=r"^[^\x00]*$")]
RuleJson = Annotated[dict[str, Any], Field(description="A rule tree: see the README's "
                                                        "segment rule language.")]


class SegmentIn(BaseModel):
    name: Name
    description: Description | None = None
    rule: RuleJson


class SegmentPatch(BaseModel):
    name: Name | None = None
    description: Description | None = None
    rule: RuleJson | None = None


class SegmentOut(BaseModel):
    id: int
    name: str
    description: str | None
    rule: dict[str, Any]
    size: int | None = Field(description="Members as of `computed_at`.")
    computed_at: datetime | None
    created_at: datetime
    updated_at: datetime


class PreviewIn(BaseModel):
    rule: RuleJson
    limit: int = Field(20, ge=1, le=200)


class MemberOut(BaseModel):
    id: int
    email: str | None
    first_name: str | None
    last_name: str | None
    city: str | None
    country: str | None
    email_marketing: str
    orders_count: int
    revenue_total: float = Field(description="In the store currency, exact to the cent.")
    last_order_at: datetime | None
    rfm_group: str | None


class PreviewOut(BaseModel):
    count: int
    items: list[MemberOut]


class MemberPage(BaseModel):
    items: list[MemberOut]
    next_cursor: str | None


class SizeOut(BaseModel):
    at: datetime
    size: int


class RecomputedOut(BaseModel):
    size: int
    entered: int
    left: int
