"""/api/v1/templates and /api/v1/campaigns: e-mail templates, campaigns, sending, reports."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Response

from clientela.api.deps import ReadSessionDep, RowId, SecretKeyDep, SessionDep, SettingsDep
from clientela.core.clock import utcnow
from clientela.core.errors import InvalidInput
from clientela.messaging import previews, queries, service
from clientela.messaging.models import Campaign, Template
from clientela.messaging.schemas import (
    CampaignIn,
    CampaignOut,
    PreviewIn,
    PreviewOut,
    ReportOut,
    SendIn,
    TemplateIn,
    TemplateOut,
    TemplatePatch,
    TestSendIn,
)

router = APIRouter(prefix="/api/v1", tags=["messaging"])


def _template(template: Template) -> TemplateOut:
    return TemplateOut.model_validate(template, from_attributes=True)


def _campaign(campaign: Campaign) -> CampaignOut:
    return CampaignOut.model_validate(campaign, from_attributes=True)


@router.get("/templates", response_model=list[TemplateOut])
def list_templates(session: ReadSessionDep, _key: SecretKeyDep) -> list[TemplateOut]:
    return [_template(t) for t in queries.list_templates(session=session)]


@router.post("/templates", response_model=TemplateOut, status_code=201)
def create_template(body: TemplateIn, session: SessionDep, _key: SecretKeyDep) -> TemplateOut:
    """Save a template (checked: it compiles and reaches nothing outside its data)."""
    template = service.create_template(session=session, name=body.name, subject=body.subject,
                                       html=body.html, text=body.text, now=utcnow())
    session.commit()
    return _template(template)


@router.get("/templates/{template_id}", response_model=TemplateOut)
def get_template(template_id: RowId, session: ReadSessionDep, _key: SecretKeyDep
                 ) -> TemplateOut:
    return _template(service.get_template(session=session, template_id=template_id))


@router.patch("/templates/{template_id}", response_model=TemplateOut)
def update_template(template_id: RowId, body: TemplatePatch, session: SessionDep,
                    _key: SecretKeyDep) -> TemplateOut:
    template = service.update_template(session=session, template_id=template_id, now=utcnow(),
                                       changes=body.model_dump(exclude_unset=True))
    session.commit()
    return _template(template)


@router.delete("/templates/{template_id}", status_code=204)
def delete_template(template_id: RowId, session: SessionDep, _key: SecretKeyDep) -> Response:
    service.delete_template(session=session, template_id=template_id)
    session.commit()
    return Response(status_code=204)


@router.post("/templates/{template_id}/preview", response_model=PreviewOut)
def preview_template(template_id: RowId, body: PreviewIn, session: ReadSessionDep,
                     settings: SettingsDep, _key: SecretKeyDep) -> PreviewOut:
    """The template rendered for a real customer (or a sample one)."""
    template = service.get_template(session=session, template_id=template_id)
    rendered = previews.preview(session=session, settings=settings,
                                parts=service.parts_of(template),
                                customer_id=body.customer_id, now=utcnow())
    return PreviewOut(subject=rendered.subject, html=rendered.html, text=rendered.text)


@router.get("/campaigns", response_model=list[CampaignOut])
def list_campaigns(session: ReadSessionDep, _key: SecretKeyDep) -> list[CampaignOut]:
    return [_campaign(c) for c in queries.list_campaigns(session=session)]


@router.post("/campaigns", response_model=CampaignOut, status_code=201)
def create_campaign(body: CampaignIn, session: SessionDep, _key: SecretKeyDep) -> CampaignOut:
    """A draft campaign: a subject, a template and the segments it goes to."""
    campaign = service.create_campaign(
        session=session, name=body.name, subject=body.subject, template_id=body.template_id,
        segment_ids=body.segment_ids, exclude_segment_ids=body.exclude_segment_ids,
        tracking=body.tracking, throttle_per_second=body.throttle_per_second, now=utcnow())
    session.commit()
    return _campaign(campaign)


@router.get("/campaigns/{campaign_id}", response_model=CampaignOut)
def get_campaign(campaign_id: RowId, session: ReadSessionDep, _key: SecretKeyDep
                 ) -> CampaignOut:
    return _campaign(service.get_campaign(session=session, campaign_id=campaign_id))


@router.post("/campaigns/{campaign_id}/send", response_model=CampaignOut)
def send_campaign(campaign_id: RowId, body: SendIn, session: SessionDep, settings: SettingsDep,
                  _key: SecretKeyDep) -> CampaignOut:
    """Send now (the audience is frozen at once and the worker sends within the minute) or
    at a time."""
    if settings.env == "production" and not settings.public_url.startswith("https://"):
        # RFC 8058: one-click unsubscribe links must be https.
        raise InvalidInput("CLIENTELA_PUBLIC_URL: must be an https:// address to send "
                           "marketing e-mail in production", code="public_url_not_https")
    campaign = service.send_campaign(session=session, campaign_id=campaign_id, mode=body.mode,
                                     send_at=body.send_at, now=utcnow(),
                                     currency=settings.store_currency)
    session.commit()
    return _campaign(campaign)


@router.post("/campaigns/{campaign_id}/cancel", response_model=CampaignOut)
def cancel_campaign(campaign_id: RowId, session: SessionDep, _key: SecretKeyDep
                    ) -> CampaignOut:
    campaign = service.cancel_campaign(session=session, campaign_id=campaign_id, now=utcnow())
    session.commit()
    return _campaign(campaign)


@router.post("/campaigns/{campaign_id}/test", status_code=202)
def test_send(campaign_id: RowId, body: TestSendIn, session: ReadSessionDep,
              settings: SettingsDep, _key: SecretKeyDep) -> dict[str, str]:
    """Send the campaign's message to one address (no delivery is recorded), personalised
    for a customer or the sample one."""
    campaign = service.get_campaign(session=session, campaign_id=campaign_id)
    template = service.get_template(session=session, template_id=campaign.template_id)
    message_id = previews.send_test(
        session=session, settings=settings, parts=service.parts_of(template, campaign.subject),
        email=body.email, customer_id=body.customer_id, now=utcnow(), label=f"c{campaign_id}")
    return {"status": "sent", "message_id": message_id}


@router.get("/campaigns/{campaign_id}/report", response_model=ReportOut)
def campaign_report(campaign_id: RowId, session: ReadSessionDep, settings: SettingsDep,
                    _key: SecretKeyDep,
                    attribution_days: Annotated[int, Query(ge=1, le=90)] = 5) -> ReportOut:
    """Sent, delivered, bounced, opened (people), clicked, unsubscribed, complaints, and
    the orders placed within `attribution_days` of a click or open."""
    campaign = service.get_campaign(session=session, campaign_id=campaign_id)
    return queries.report(session=session, campaign=campaign,
                          currency=settings.store_currency, attribution_days=attribution_days)
