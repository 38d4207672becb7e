"""The API's view of a customer, and the changes it accepts."""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated, Any, Literal

import orjson
from pydantic import AfterValidator, BaseModel, ConfigDict, Field, StrictInt, field_validator

from clientela.core.types import json_has_nul

ConsentState = Literal["subscribed", "unsubscribed", "unknown"]
MAX_ID = 2**63 - 1
# Traits the profile fields own: they are set through those fields, which check identities.
FIELD_TRAITS = {"email": "email", "phone": "phone"}


def _no_nul(value: str) -> str:
    if "\x00" in value:
        raise ValueError("must not contain NUL characters")
    return value


Text = Annotated[str, AfterValidator(_no_nul)]


class IdentityOut(BaseModel):
    kind: str
    value: str


class ConsentOut(BaseModel):
    email_marketing: ConsentState
    email_marketing_source: str | None
    email_marketing_at: datetime | None


class AggregatesOut(BaseModel):
    events: dict[str, int]
    events_total: int
    orders_count: int
    revenue_total: float = Field(description="In the store currency, exact to the cent.")
    average_order_value: float | None
    first_order_at: datetime | None
    last_order_at: datetime | None


class ScoresOut(BaseModel):
    """RFM and predictions as last computed (null before, or without purchases)."""

    rfm_recency: int | None
    rfm_frequency: int | None
    rfm_monetary: int | None
    rfm_group: str | None
    rfm_at: datetime | None
    p_alive: float | None = Field(description="Probability the customer is still active.")
    churn_risk: float | None
    expected_orders: float | None = Field(description="Over CLIENTELA_CLV_HORIZON_MONTHS.")
    predicted_value: float | None = Field(description="Discounted lifetime value over the "
                                                      "horizon, in the store currency.")
    inactive: bool | None
    predicted_at: datetime | None


class CustomerOut(BaseModel):
    id: int
    email: str | None
    phone: str | None
    first_name: str | None
    last_name: str | None
    gender: str | None
    birthday: date | None
    locale: str | None
    city: str | None
    region: str | None
    country: str | None
    created_at: datetime
    first_seen_at: datetime
    last_seen_at: datetime
    identities: list[IdentityOut]
    traits: dict[str, Any]
    tags: list[str]
    consent: ConsentOut
    aggregates: AggregatesOut
    scores: ScoresOut


class CustomerPage(BaseModel):
    items: list[CustomerOut]
    next_cursor: str | None
    total: int | None = None


class ConsentIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    email_marketing: ConsentState
    source: Text = Field("api", max_length=100)


class ProfileIn(BaseModel):
    """Profile fields; each maps onto a Segment reserved trait."""

    model_config = ConfigDict(extra="forbid")
    email: Text | None = Field(None, max_length=320)
    phone: Text | None = Field(None, max_length=40)
    first_name: Text | None = Field(None, max_length=200)
    last_name: Text | None = Field(None, max_length=200)
    gender: Text | None = Field(None, max_length=32)
    birthday: date | None = None
    locale: Text | None = Field(None, max_length=35)
    city: Text | None = Field(None, max_length=200)
    region: Text | None = Field(None, max_length=200)
    country: Text | None = Field(None, max_length=100)
    traits: dict[str, Any] | None = None
    consent: ConsentIn | None = None

    @field_validator("traits")
    @classmethod
    def _storable_traits(cls, traits: dict[str, Any] | None) -> dict[str, Any] | None:
        for key in traits or {}:
            if key in FIELD_TRAITS:
                raise ValueError(f"{key} is set with the {FIELD_TRAITS[key]} field")
            if not 1 <= len(key) <= 200:
                raise ValueError("keys must be 1 to 200 characters")
        try:
            text = orjson.dumps(traits).decode()
        except orjson.JSONEncodeError:
            raise ValueError("cannot be stored (nested too deeply, or a number beyond "
                             "64 bits)") from None
        if json_has_nul(text):
            raise ValueError("must not contain NUL characters")
        return traits


class CustomerIn(ProfileIn):
    """Create, or update the customer already known by this user id or e-mail."""

    user_id: Text | None = Field(None, min_length=1, max_length=255)
    tags: list[Text] = Field(default_factory=list, max_length=100)


class TagsIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    tags: list[Text] = Field(min_length=1, max_length=100)


class MergeIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    customer_id: StrictInt = Field(ge=1, le=MAX_ID,
                                   description="The other customer; the older one survives.")
    reason: Text = Field("manual merge", min_length=1, max_length=200)


class MergeOut(BaseModel):
    id: int
    kept_id: int
    dropped_id: int
    reason: str
    created_at: datetime
    undone_at: datetime | None


class ConflictOut(BaseModel):
    id: int
    customer_id: int
    other_customer_id: int
    kind: str
    value: str
    reason: str
    created_at: datetime


class EventOut(BaseModel):
    id: int
    type: str
    event: str | None
    message_id: str
    user_id: str | None
    anonymous_id: str | None
    timestamp: datetime
    original_timestamp: datetime | None
    sent_at: datetime | None
    received_at: datetime
    properties: dict[str, Any]
    traits: dict[str, Any]
    context: dict[str, Any]


class EventPage(BaseModel):
    items: list[EventOut]
    next_cursor: str | None
