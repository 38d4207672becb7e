"""The messaging API's contracts."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from pydantic import AwareDatetime, BaseModel, Field, StringConstraints

from clientela.customers.schemas import MAX_ID

Name = Annotated[str, StringConstraints(min_length=1, max_length=200, strip_whitespace=True,
                                        pattern=r"^[^\x00]*$")]
Subject = Annotated[str, StringConstraints(min_length=1, max_length=500, pattern=r"^[^\x00]*$")]
Body = Annotated[str, StringConstraints(min_length=1, max_length=500_000,
                                        pattern=r"^[^\x00]*$")]
Ids = Annotated[list[Annotated[int, Field(ge=1, le=MAX_ID)]], Field(max_length=100)]


class TemplateIn(BaseModel):
    name: Name
    subject: Subject
    html: Body
    text: Body | None = Field(None, description="Plain-text part; derived from the HTML "
                                                "when absent.")


class TemplatePatch(BaseModel):
    name: Name | None = None
    subject: Subject | None = None
    html: Body | None = None
    text: Body | None = None


class TemplateOut(BaseModel):
    id: int
    name: str
    subject: str
    html: str
    text: str | None
    created_at: datetime
    updated_at: datetime


class PreviewIn(BaseModel):
    customer_id: int | None = Field(None, ge=1, le=MAX_ID,
                                    description="Whose data fills the merge fields; a sample "
                                                "customer when absent.")


class PreviewOut(BaseModel):
    subject: str
    html: str
    text: str


class CampaignIn(BaseModel):
    name: Name
    subject: Subject
    template_id: int = Field(ge=1, le=MAX_ID)
    segment_ids: Ids = Field(min_length=1)
    exclude_segment_ids: Ids = Field(default_factory=list)
    tracking: bool = True
    throttle_per_second: int | None = Field(None, ge=1, le=100_000)


class CampaignOut(BaseModel):
    id: int
    name: str
    subject: str
    template_id: int
    segment_ids: list[int]
    exclude_segment_ids: list[int]
    tracking: bool
    throttle_per_second: int | None
    status: str
    send_mode: str
    send_at: datetime | None
    audience_size: int | None
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None


class SendIn(BaseModel):
    mode: Literal["now", "at", "best_hour"] = "now"
    send_at: AwareDatetime | None = None


class TestSendIn(BaseModel):
    email: Annotated[str, StringConstraints(min_length=3, max_length=320)]
    customer_id: int | None = Field(None, ge=1, le=MAX_ID)


class ReportOut(BaseModel):
    campaign_id: int
    status: str
    audience: int
    pending: int
    sent: int
    delivered: int = Field(description="Sent and not bounced.")
    bounced: int = Field(description="Hard and soft bounces.")
    hard_bounced: int
    complaints: int
    failed: int
    skipped: int
    unconfirmed: int
    opened: int = Field(description="Recipients who opened it (people, not mail proxies).")
    machine_opened: int = Field(description="Recipients whose mail proxy fetched the pixel "
                                            "without a person's open.")
    clicked: int
    unsubscribed: int
    attribution_days: int
    orders: int = Field(description="Orders recipients placed within `attribution_days` "
                                    "after their first click or open.")
    revenue: str = Field(description="Their net revenue, in the store currency.")
    currency: str
