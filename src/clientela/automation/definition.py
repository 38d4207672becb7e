"""What a scenario is made of, checked: its trigger and its steps (JSON in the database and
the API), with errors that name the field."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError

from clientela.core.errors import InvalidInput
from clientela.customers.schemas import MAX_ID

Text = Annotated[str, Field(min_length=1, max_length=255)]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class OnEvent(_Strict):
    """Each time the customer does `event` (e.g. Order Completed)."""
    type: Literal["event"]
    event: Text


class NotFollowed(_Strict):
    """`event` (e.g. Checkout Started, Product Viewed) not followed by `followed_by` (e.g.
    Order Completed, Product Added) within `within_hours`. It fires when that window closes,
    for the last `event` of a burst (one done again inside the window waits for the later
    one); a `followed_by` at any time before the check counts."""
    type: Literal["event_not_followed"]
    event: Text
    followed_by: Text
    within_hours: float = Field(gt=0, le=24 * 30)


class FirstOrder(_Strict):
    type: Literal["first_order"]


class CartAbandoned(_Strict):
    """A cart with items left alone for CLIENTELA_CART_ABANDON_MINUTES with no order."""
    type: Literal["cart_abandoned"]


class SegmentChanged(_Strict):
    type: Literal["segment_entered", "segment_left"]
    segment_id: int = Field(ge=1, le=MAX_ID)
    exit_on_leave: bool = True  # for segment_entered: leaving the segment ends it


class Subscribed(_Strict):
    """A customer newly subscribed to marketing e-mail."""
    type: Literal["subscribed"]


class OnDate(_Strict):
    """Birthdays, anniversaries of the first order."""
    type: Literal["birthday", "first_order_anniversary"]


class Quiet(_Strict):
    """Exactly `days` whole days since the last order."""
    type: Literal["days_since_last_order"]
    days: int = Field(ge=1, le=3650)


class Inactive(_Strict):
    """The predictions flag the customer inactive for their own rhythm."""
    type: Literal["inactive"]


Trigger = Annotated[OnEvent | NotFollowed | FirstOrder | CartAbandoned | SegmentChanged
                    | Subscribed | OnDate | Quiet | Inactive, Field(discriminator="type")]


class Wait(_Strict):
    """A pause: a duration, until the next time of day (UTC hour), or until the customer's
    best hour (`best_hour`: true; see messaging.best_hour), within 24 hours."""
    type: Literal["wait"]
    hours: float | None = Field(None, gt=0, le=24 * 366)
    days: float | None = Field(None, gt=0, le=366)
    until_hour: int | None = Field(None, ge=0, le=23)
    best_hour: Literal[True] | None = None

    def model_post_init(self, _context: Any) -> None:
        given = (self.hours, self.days, self.until_hour, self.best_hour)
        if sum(value is not None for value in given) != 1:
            raise ValueError("give exactly one of hours, days, until_hour or best_hour")


class Email(_Strict):
    """Send a template; `coupon`, when given, is the template's {{ coupon }}."""
    type: Literal["email"]
    template_id: int = Field(ge=1, le=MAX_ID)
    subject: Annotated[str, Field(min_length=1, max_length=500)]
    coupon: Annotated[str, Field(min_length=1, max_length=100, pattern=r"^\S+$")] | None = None


class Branch(_Strict):
    """Go on when the customer matches `rule` (a segment rule), else jump to step `else_step`
    (past the last step: the scenario ends)."""
    type: Literal["branch"]
    rule: dict[str, Any]
    else_step: int = Field(ge=0)


class Tag(_Strict):
    type: Literal["tag"]
    add: Text | None = None
    remove: Text | None = None

    def model_post_init(self, _context: Any) -> None:
        if (self.add is None) == (self.remove is None):
            raise ValueError("give exactly one of add or remove")


class SetTrait(_Strict):
    type: Literal["trait"]
    key: Annotated[str, Field(min_length=1, max_length=100, pattern=r"^[A-Za-z_][\w.-]*$")]
    value: str | int | float | bool | None


class Webhook(_Strict):
    """POST the customer and the step, signed (X-Clientela-Signature: base64 HMAC-SHA256 of
    the body with CLIENTELA_SECRET_KEY's webhook key)."""
    type: Literal["webhook"]
    url: Annotated[str, Field(pattern=r"^https?://[^\s]+$", max_length=2000)]


Step = Annotated[Wait | Email | Branch | Tag | SetTrait | Webhook, Field(discriminator="type")]
_TRIGGER: TypeAdapter[Trigger] = TypeAdapter(Trigger)
_STEPS: TypeAdapter[list[Step]] = TypeAdapter(list[Step])


def _problem(field: str, error: ValidationError) -> InvalidInput:
    first = error.errors()[0]
    where = ".".join([field, *(str(part) for part in first["loc"])])
    message = first["msg"].removeprefix("Value error, ")
    return InvalidInput(f"{where}: {message}", code="invalid_scenario")


def trigger_of(value: Any) -> Trigger:
    try:
        return _TRIGGER.validate_python(value)
    except ValidationError as error:
        raise _problem("trigger", error) from None


def steps_of(value: Any) -> list[Step]:
    try:
        steps = _STEPS.validate_python(value)
    except ValidationError as error:
        raise _problem("steps", error) from None
    if not steps or len(steps) > 50:
        raise InvalidInput("steps: from 1 to 50 steps", code="invalid_scenario")
    for index, step in enumerate(steps):
        if isinstance(step, Branch) and step.else_step <= index:
            raise InvalidInput(f"steps.{index}.else_step: must jump forward (past {index})",
                               code="invalid_scenario")
    return steps
