"""What the dashboard's e-mail pages share: reading their forms, finding the customer a
preview is for, and the live preview itself (a template being edited, or a campaign's
template under the campaign's subject), as that customer or the sample one would get it."""

from __future__ import annotations

import re
from typing import Any

from fastapi import APIRouter
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field
from sqlalchemy.orm import Session

from clientela.api.deps import ReadSessionDep, SettingsDep
from clientela.core.clock import utcnow
from clientela.core.errors import ClientelaError, InvalidInput
from clientela.customers import service as customers
from clientela.customers.normalize import normalize_email
from clientela.customers.schemas import MAX_ID
from clientela.messaging import previews
from clientela.messaging import service as messaging
from clientela.messaging.templates import TemplateParts
from clientela.web.pages import UserDep

router = APIRouter(include_in_schema=False)
_FIELD = re.compile(r"([a-z_]+):")
ID = re.compile(r"[0-9]{1,18}")


def field_of(error: ClientelaError) -> str | None:
    """The form field an error message names ("html: line 2: ..." names `html`)."""
    named = _FIELD.match(error.message)
    return named.group(1) if named else None


def checked_text(field: str, value: str, *, required: bool = True, limit: int = 500) -> str:
    """A text field as the domain takes it: NUL is refused (no database stores it)."""
    if "\x00" in value:
        raise InvalidInput(f"{field}: must not contain NUL characters", code="invalid")
    if required and not value.strip():
        raise InvalidInput(f"{field}: is required", code="invalid")
    if len(value) > limit:
        raise InvalidInput(f"{field}: at most {limit} characters", code="invalid")
    return value


def ids(field: str, values: list[str]) -> list[int]:
    """Row ids from a multi-select."""
    if not all(ID.fullmatch(value) for value in values):
        raise InvalidInput(f"{field}: must be ids", code="invalid")
    return [int(value) for value in values]


def customer_of(session: Session, wanted: str) -> int | None:
    """The customer a preview is for: an id, an e-mail address, or nobody (the sample)."""
    wanted = wanted.strip()
    if not wanted:
        return None
    if ID.fullmatch(wanted):
        customers.ensure_exists(session=session, customer_id=int(wanted))
        return customers.surviving_id(session=session, customer_id=int(wanted))
    address = normalize_email(wanted)
    owner = None if address is None else customers.identity_owner(
        session=session, kind="email", value=address)
    if owner is None:
        raise InvalidInput(f"customer: no customer has the id or e-mail address "
                           f"{wanted[:100]!r}", code="customer_not_found")
    return customers.surviving_id(session=session, customer_id=owner)


class PreviewIn(BaseModel):
    """A template being edited (subject, html, text), or a saved one (template_id) with a
    campaign's subject; `customer` is an id or an e-mail address, empty for the sample."""

    template_id: int | None = Field(None, ge=1, le=MAX_ID)
    subject: str = Field("", max_length=500)
    html: str = Field("", max_length=500_000)
    text: str | None = Field(None, max_length=500_000)
    customer: str = Field("", max_length=320)


def parts_of(session: Session, body: PreviewIn) -> TemplateParts:
    if body.template_id is not None:
        template = messaging.get_template(session=session, template_id=body.template_id)
        return messaging.parts_of(template, body.subject.strip() or None)
    words = checked_text("text", body.text, limit=500_000) if body.text else None
    return TemplateParts(subject=checked_text("subject", body.subject),
                         html=checked_text("html", body.html, limit=500_000), text=words)


def failure(error: ClientelaError) -> JSONResponse:
    """A live check's answer to bad input: the domain's message and the field it names."""
    return JSONResponse({"error": error.message, "field": field_of(error)}, status_code=400)


@router.post("/mail/preview")
def preview(body: PreviewIn, session: ReadSessionDep, settings: SettingsDep,
            _user: UserDep) -> JSONResponse:
    """The message rendered as it changes in an editor: subject, HTML and text."""
    try:
        rendered = previews.preview(session=session, settings=settings,
                                    parts=parts_of(session, body),
                                    customer_id=customer_of(session, body.customer),
                                    now=utcnow())
    except ClientelaError as error:
        return failure(error)
    answer: dict[str, Any] = {"subject": rendered.subject, "html": rendered.html,
                              "text": rendered.text}
    return JSONResponse(answer)
