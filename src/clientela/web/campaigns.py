"""Dashboard pages for campaigns: the list, the editor (audience counted live, the message
previewed live, a test send, the schedule), and a campaign's page with its report."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from pydantic import BaseModel, Field
from sqlalchemy.orm import Session

from clientela.api.deps import ReadSessionDep, RowId, SessionDep, SettingsDep
from clientela.config import Settings
from clientela.core.clock import utcnow
from clientela.core.errors import ClientelaError, InvalidInput, NotFound
from clientela.customers.schemas import MAX_ID
from clientela.messaging import previews, queries
from clientela.messaging import service as messaging
from clientela.messaging.models import Campaign
from clientela.segments import queries as segment_queries
from clientela.web.mail import ID, checked_text, customer_of, failure, field_of, ids
from clientela.web.pages import UserDep, not_found, page

router = APIRouter(include_in_schema=False)
SCHEDULES = {"draft": "Keep as a draft", "now": "Send now", "at": "At a date and time",
             "best_hour": "At each recipient's best hour (within 24 hours)"}


class CampaignForm(BaseModel):
    """The editor's fields as the browser posts them (text, checked when read)."""

    name: str = ""
    subject: str = ""
    template_id: str = ""
    segment_ids: list[str] = []
    exclude_segment_ids: list[str] = []
    tracking: str = ""
    throttle_per_second: str = ""
    schedule: str = "draft"
    send_at: str = ""
    tz_offset: str = ""


FormDep = Annotated[CampaignForm, Form()]


@dataclass(frozen=True)
class _Fields:
    name: str
    subject: str
    template_id: int
    segment_ids: list[int]
    exclude_segment_ids: list[int]
    tracking: bool
    throttle_per_second: int | None


def _fields(form: CampaignForm) -> _Fields:
    """The form's values as the domain takes them; InvalidInput naming a bad field."""
    if not ID.fullmatch(form.template_id):
        raise InvalidInput("template_id: choose a template", code="invalid_campaign")
    throttle = form.throttle_per_second.strip()
    if throttle and not (ID.fullmatch(throttle) and 1 <= int(throttle) <= 100_000):
        raise InvalidInput("throttle_per_second: a whole number from 1 to 100000, or empty",
                           code="invalid_campaign")
    return _Fields(name=checked_text("name", form.name, limit=200).strip(),
                   subject=checked_text("subject", form.subject),
                   template_id=int(form.template_id),
                   segment_ids=ids("segment_ids", form.segment_ids),
                   exclude_segment_ids=ids("exclude_segment_ids", form.exclude_segment_ids),
                   tracking=bool(form.tracking),
                   throttle_per_second=int(throttle) if throttle else None)


def _send_at(form: CampaignForm) -> datetime:
    """The date and time typed in the editor, in the browser's time zone (its offset from
    UTC in minutes, as JavaScript gives it), or UTC without one."""
    try:
        typed = datetime.fromisoformat(form.send_at.strip())
        offset = int(form.tz_offset or 0)
    except ValueError:
        raise InvalidInput("send_at: must be a date and time", code="invalid_schedule") from None
    if typed.tzinfo is not None or not -1440 < offset < 1440:
        raise InvalidInput("send_at: must be a date and time", code="invalid_schedule")
    return typed.replace(tzinfo=UTC) + timedelta(minutes=offset)


def _schedule(session: Session, settings: Settings, campaign_id: int, form: CampaignForm,
              now: datetime) -> None:
    """Start or schedule the campaign as the form says (a draft is left as it is)."""
    if form.schedule == "draft":
        return
    if settings.env == "production" and not settings.public_url.startswith("https://"):
        # RFC 8058: one-click unsubscribe links must be https (as the API refuses it).
        raise InvalidInput("CLIENTELA_PUBLIC_URL: must be an https:// address to send "
                           "marketing e-mail in production", code="public_url_not_https")
    messaging.send_campaign(session=session, campaign_id=campaign_id, mode=form.schedule,
                            send_at=_send_at(form) if form.schedule == "at" else None,
                            now=now, currency=settings.store_currency)


# --- the list ------------------------------------------------------------------------------


@router.get("/campaigns", response_class=HTMLResponse)
def campaigns_page(request: Request, session: ReadSessionDep, settings: SettingsDep,
                   user: UserDep) -> HTMLResponse:
    campaigns = queries.list_campaigns(session=session)
    reports = queries.reports(session=session, campaigns=campaigns,
                              currency=settings.store_currency)
    rows = [(campaign, reports[campaign.id]) for campaign in campaigns]
    return page(request, "campaigns.html", user=user, rows=rows)


# --- the editor ----------------------------------------------------------------------------


def _form_of(campaign: Campaign) -> CampaignForm:
    return CampaignForm(
        name=campaign.name, subject=campaign.subject, template_id=str(campaign.template_id),
        segment_ids=[str(i) for i in campaign.segment_ids],
        exclude_segment_ids=[str(i) for i in campaign.exclude_segment_ids],
        tracking="on" if campaign.tracking else "",
        throttle_per_second=str(campaign.throttle_per_second or ""))


def _editor(request: Request, session: Session, user: str, form: CampaignForm,
            campaign: Campaign | None, *, status: int = 200,
            error: ClientelaError | None = None) -> HTMLResponse:
    return page(request, "campaign_edit.html", status=status, user=user, form=form,
                campaign=campaign, schedules=SCHEDULES,
                templates=queries.list_templates(session=session),
                segments=segment_queries.list_segments(session=session),
                error=error.message if error else None,
                error_field=field_of(error) if error else None)


@router.get("/campaigns/new", response_class=HTMLResponse)
def new_campaign_page(request: Request, session: ReadSessionDep, user: UserDep
                      ) -> HTMLResponse:
    return _editor(request, session, user, CampaignForm(tracking="on"), None)


class AudienceIn(BaseModel):
    segment_ids: list[Annotated[int, Field(ge=1, le=MAX_ID)]] = Field(default_factory=list,
                                                                      max_length=100)
    exclude_segment_ids: list[Annotated[int, Field(ge=1, le=MAX_ID)]] = Field(
        default_factory=list, max_length=100)


@router.post("/campaigns/audience")
def audience(body: AudienceIn, session: ReadSessionDep, settings: SettingsDep,
             _user: UserDep) -> JSONResponse:
    """The live count as the editor changes: who would receive it if it started now."""
    try:
        count = messaging.audience_count(session=session, segment_ids=body.segment_ids,
                                         exclude_segment_ids=body.exclude_segment_ids,
                                         now=utcnow(), currency=settings.store_currency)
    except ClientelaError as error:
        return failure(error)
    return JSONResponse({"count": count})


class TestIn(BaseModel):
    template_id: int = Field(ge=1, le=MAX_ID)
    subject: str = Field("", max_length=500)
    email: str = Field("", max_length=320)
    customer: str = Field("", max_length=320)


@router.post("/campaigns/test")
def test_from_editor(body: TestIn, session: ReadSessionDep, settings: SettingsDep,
                     _user: UserDep) -> JSONResponse:
    """A test send of what the editor shows, saved or not."""
    try:
        template = messaging.get_template(session=session, template_id=body.template_id)
        message_id = previews.send_test(
            session=session, settings=settings, email=body.email, now=utcnow(),
            parts=messaging.parts_of(template, checked_text("subject", body.subject)),
            customer_id=customer_of(session, body.customer), label=f"t{template.id}")
    except ClientelaError as error:
        return failure(error)
    return JSONResponse({"message_id": message_id})


@router.post("/campaigns", response_class=HTMLResponse)
def create_campaign(request: Request, session: SessionDep, settings: SettingsDep,
                    user: UserDep, form: FormDep) -> Response:
    now = utcnow()
    try:
        fields = _fields(form)
        campaign = messaging.create_campaign(session=session, now=now, **vars(fields))
        _schedule(session, settings, campaign.id, form, now)
    except ClientelaError as error:
        session.rollback()
        return _editor(request, session, user, form, None, status=400, error=error)
    session.commit()
    return RedirectResponse(f"/campaigns/{campaign.id}", status_code=303)


def _found(session: Session, campaign_id: int) -> Campaign | None:
    try:
        return messaging.get_campaign(session=session, campaign_id=campaign_id)
    except NotFound:
        return None


def _missing(request: Request, user: str, campaign_id: int) -> HTMLResponse:
    return not_found(request, user, f"campaign {campaign_id} not found")


@router.get("/campaigns/{campaign_id}/edit", response_class=HTMLResponse)
def edit_campaign_page(campaign_id: RowId, request: Request, session: ReadSessionDep,
                       user: UserDep) -> Response:
    campaign = _found(session, campaign_id)
    if campaign is None:
        return _missing(request, user, campaign_id)
    if campaign.status != "draft":
        return RedirectResponse(f"/campaigns/{campaign_id}", status_code=303)
    return _editor(request, session, user, _form_of(campaign), campaign)


@router.post("/campaigns/{campaign_id}/edit", response_class=HTMLResponse)
def update_campaign(campaign_id: RowId, request: Request, session: SessionDep,
                    settings: SettingsDep, user: UserDep, form: FormDep) -> Response:
    campaign, now = _found(session, campaign_id), utcnow()
    if campaign is None:
        return _missing(request, user, campaign_id)
    try:
        messaging.update_campaign(session=session, campaign_id=campaign_id, now=now,
                                  **vars(_fields(form)))
        _schedule(session, settings, campaign_id, form, now)
    except ClientelaError as error:
        session.rollback()
        return _editor(request, session, user, form, _found(session, campaign_id),
                       status=error.status, error=error)
    session.commit()
    return RedirectResponse(f"/campaigns/{campaign_id}", status_code=303)


# --- a campaign ------------------------------------------------------------------------------


def _campaign_page(request: Request, session: Session, settings: Settings, user: str,
                   campaign: Campaign, *, status: int = 200, **notes: Any) -> HTMLResponse:
    names = {s.id: s.name for s in segment_queries.list_segments(session=session)}
    return page(request, "campaign.html", status=status, user=user, campaign=campaign,
                message_template=messaging.get_template(session=session,
                                                template_id=campaign.template_id),
                included=[names.get(i, f"#{i}") for i in campaign.segment_ids],
                excluded=[names.get(i, f"#{i}") for i in campaign.exclude_segment_ids],
                report=queries.report(session=session, campaign=campaign,
                                      currency=settings.store_currency),
                schedules=SCHEDULES, **{"error": None, "notice": None, **notes})


@router.get("/campaigns/{campaign_id}", response_class=HTMLResponse)
def campaign_page(campaign_id: RowId, request: Request, session: ReadSessionDep,
                  settings: SettingsDep, user: UserDep) -> HTMLResponse:
    campaign = _found(session, campaign_id)
    if campaign is None:
        return _missing(request, user, campaign_id)
    return _campaign_page(request, session, settings, user, campaign)


@router.post("/campaigns/{campaign_id}/send", response_class=HTMLResponse)
def send_campaign(campaign_id: RowId, request: Request, session: SessionDep,
                  settings: SettingsDep, user: UserDep, form: FormDep) -> Response:
    """Start or schedule a draft from its page."""
    return _on_campaign(request, session, settings, user, campaign_id, lambda: _schedule(
        session, settings, campaign_id, form, utcnow()))


@router.post("/campaigns/{campaign_id}/cancel", response_class=HTMLResponse)
def cancel_campaign(campaign_id: RowId, request: Request, session: SessionDep,
                    settings: SettingsDep, user: UserDep) -> Response:
    return _on_campaign(request, session, settings, user, campaign_id,
                        lambda: messaging.cancel_campaign(session=session,
                                                          campaign_id=campaign_id, now=utcnow()))


def _on_campaign(request: Request, session: Session, settings: Settings, user: str,
                 campaign_id: int, act: Callable[[], object]) -> Response:
    """Do `act` to the campaign and go back to its page; refused, the page says why and
    nothing of it is kept."""
    campaign = _found(session, campaign_id)
    if campaign is None:
        return _missing(request, user, campaign_id)
    try:
        act()
    except ClientelaError as error:
        session.rollback()
        return _campaign_page(request, session, settings, user, campaign, status=error.status,
                              error=error.message)
    session.commit()
    return RedirectResponse(f"/campaigns/{campaign_id}", status_code=303)


@router.post("/campaigns/{campaign_id}/test", response_class=HTMLResponse)
def test_campaign(campaign_id: RowId, request: Request, session: ReadSessionDep,
                  settings: SettingsDep, user: UserDep, email: Annotated[str, Form()] = "",
                  customer: Annotated[str, Form()] = "") -> HTMLResponse:
    """The campaign's message to one address, as from the API (nothing is recorded)."""
    campaign = _found(session, campaign_id)
    if campaign is None:
        return _missing(request, user, campaign_id)
    try:
        template = messaging.get_template(session=session, template_id=campaign.template_id)
        message_id = previews.send_test(
            session=session, settings=settings, email=email, now=utcnow(),
            parts=messaging.parts_of(template, campaign.subject),
            customer_id=customer_of(session, customer), label=f"c{campaign_id}")
    except ClientelaError as error:
        return _campaign_page(request, session, settings, user, campaign, status=400,
                              error=error.message)
    return _campaign_page(request, session, settings, user, campaign,
                          notice=f"Test sent to {email.strip()} ({message_id}).")
