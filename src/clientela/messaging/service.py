"""Templates and campaigns: creating them, and starting a campaign (its audience frozen into
one delivery row per recipient, which the sender then works through)."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func, insert, literal, select, update
from sqlalchemy.orm import Session

from clientela.core.errors import Conflict, InvalidInput, NotFound
from clientela.core.types import UTCDateTime
from clientela.customers import service as customers
from clientela.customers.models import Customer
from clientela.db import flush_named
from clientela.messaging.best_hour import schedule_at_best_hours
from clientela.messaging.models import Campaign, Delivery, Template
from clientela.messaging.templates import TemplateParts, check
from clientela.segments import service as segments
from clientela.team import service as team
from clientela.tracking import service as tracking

# --- templates ---------------------------------------------------------------------------


def create_template(*, session: Session, name: str, subject: str, html: str, text: str | None,
                    now: datetime) -> Template:
    """A new template, checked (it compiles, and reaches nothing it should not)."""
    check(TemplateParts(subject=subject, html=html, text=text))
    template = Template(name=name, subject=subject, html=html, text=text, created_at=now,
                        updated_at=now)
    session.add(template)
    flush_named(session, "template", name)
    return template


def get_template(*, session: Session, template_id: int) -> Template:
    template = session.get(Template, template_id)
    if template is None:
        raise NotFound(f"template {template_id} not found", code="template_not_found")
    return template


def update_template(*, session: Session, template_id: int, now: datetime,
                    changes: dict[str, Any]) -> Template:
    """Change a template's name, subject, HTML or text (checked again)."""
    template = get_template(session=session, template_id=template_id)
    for field in ("name", "subject", "html", "text"):
        if field in changes:
            setattr(template, field, changes[field])
    check(parts_of(template))
    template.updated_at = now
    flush_named(session, "template", template.name)
    return template


def delete_template(*, session: Session, template_id: int) -> None:
    """Delete a template no campaign uses."""
    template = get_template(session=session, template_id=template_id)
    used = session.scalar(select(Campaign.name).where(Campaign.template_id == template_id)
                          .limit(1))
    if used is not None:
        raise Conflict(f"template {template_id} is used by campaign {used!r}",
                       code="template_in_use")
    session.delete(template)
    session.flush()


def parts_of(template: Template, subject: str | None = None) -> TemplateParts:
    return TemplateParts(subject=subject or template.subject, html=template.html,
                         text=template.text)


# --- campaigns ---------------------------------------------------------------------------


def create_campaign(*, session: Session, name: str, subject: str, template_id: int,
                    segment_ids: list[int], exclude_segment_ids: list[int], tracking: bool,
                    throttle_per_second: int | None, now: datetime) -> Campaign:
    """A draft campaign to the members of `segment_ids` but not of `exclude_segment_ids`."""
    template = get_template(session=session, template_id=template_id)
    _check_segments(session, segment_ids, exclude_segment_ids)
    check(parts_of(template, subject))
    campaign = Campaign(name=name, subject=subject, template_id=template_id,
                        segment_ids=sorted(set(segment_ids)),
                        exclude_segment_ids=sorted(set(exclude_segment_ids)), tracking=tracking,
                        throttle_per_second=throttle_per_second, status="draft",
                        send_mode="now", created_at=now, updated_at=now)
    session.add(campaign)
    flush_named(session, "campaign", name)
    return campaign


def _check_segments(session: Session, segment_ids: list[int], excluded: list[int]) -> None:
    if not segment_ids:
        raise InvalidInput("segment_ids: at least one segment is needed",
                           code="invalid_campaign")
    for field, ids in (("segment_ids", segment_ids), ("exclude_segment_ids", excluded)):
        for segment_id in ids:
            try:
                segments.get_segment(session=session, segment_id=segment_id)
            except NotFound:
                raise InvalidInput(f"{field}: there is no segment {segment_id}",
                                   code="invalid_campaign") from None


def get_campaign(*, session: Session, campaign_id: int) -> Campaign:
    campaign = session.get(Campaign, campaign_id)
    if campaign is None:
        raise NotFound(f"campaign {campaign_id} not found", code="campaign_not_found")
    return campaign


def update_campaign(*, session: Session, campaign_id: int, name: str, subject: str,
                    template_id: int, segment_ids: list[int], exclude_segment_ids: list[int],
                    tracking: bool, throttle_per_second: int | None, now: datetime
                    ) -> Campaign:
    """Change a draft campaign (one that started or is scheduled is left as it is)."""
    campaign = get_campaign(session=session, campaign_id=campaign_id)
    if campaign.status != "draft":
        raise Conflict(f"campaign {campaign_id} is {campaign.status}: only a draft can change",
                       code="campaign_started")
    template = get_template(session=session, template_id=template_id)
    _check_segments(session, segment_ids, exclude_segment_ids)
    check(parts_of(template, subject))
    campaign.name, campaign.subject, campaign.template_id = name, subject, template_id
    campaign.segment_ids = sorted(set(segment_ids))
    campaign.exclude_segment_ids = sorted(set(exclude_segment_ids))
    campaign.tracking, campaign.throttle_per_second = tracking, throttle_per_second
    campaign.updated_at = now
    flush_named(session, "campaign", name)
    return campaign


def audience_rule(campaign: Campaign) -> dict[str, Any]:
    """The segment rule of a campaign's audience: in any of its segments, in none excluded."""
    return _audience_rule(campaign.segment_ids, campaign.exclude_segment_ids)


def _audience_rule(segment_ids: list[int], excluded: list[int]) -> dict[str, Any]:
    included: dict[str, Any] = {"any": [{"segment": sid} for sid in segment_ids]}
    if not excluded:
        return included
    return {"all": [included, {"not": {"any": [{"segment": sid} for sid in excluded]}}]}


def audience_count(*, session: Session, segment_ids: list[int],
                   exclude_segment_ids: list[int], now: datetime, currency: str) -> int:
    """How many would receive a campaign to these segments if it started now: members who
    may receive marketing e-mail (as `start_campaign` freezes them)."""
    _check_segments(session, segment_ids, exclude_segment_ids)
    members = segments.members_of(session=session, now=now, currency=currency,
                                  rule=_audience_rule(segment_ids, exclude_segment_ids))
    reachable = members.where(customers.reachable_by_email()).subquery()
    return int(session.scalar(select(func.count()).select_from(reachable)) or 0)


def send_campaign(*, session: Session, campaign_id: int, mode: str, send_at: datetime | None,
                  now: datetime, currency: str) -> Campaign:
    """Send now (the audience is frozen at once), at `send_at` (frozen then), or at each
    recipient's best hour within the next 24 hours (frozen now)."""
    campaign = get_campaign(session=session, campaign_id=campaign_id)
    if campaign.status not in ("draft", "scheduled"):
        raise Conflict(f"campaign {campaign_id} is already {campaign.status}",
                       code="campaign_started")
    if mode == "at":
        if send_at is None or send_at <= now:
            raise InvalidInput("send_at: must be a time in the future", code="invalid_schedule")
        campaign.status, campaign.send_mode, campaign.send_at = "scheduled", "at", send_at
    elif mode in ("now", "best_hour"):
        campaign.send_mode, campaign.send_at = mode, now
        start_campaign(session=session, campaign=campaign, now=now, currency=currency)
    else:
        raise InvalidInput("mode: must be now, at or best_hour", code="invalid_schedule")
    campaign.updated_at = now
    session.flush()
    return campaign


def start_campaign(*, session: Session, campaign: Campaign, now: datetime,
                   currency: str) -> int:
    """Freeze the audience: one pending delivery per member who may receive marketing
    e-mail now, due at once. Returns the audience size."""
    members = segments.members_of(session=session, rule=audience_rule(campaign), now=now,
                                  currency=currency)
    rows = members.where(customers.reachable_by_email()).with_only_columns(
        literal(campaign.id), Customer.id, Customer.email, literal("pending"),
        literal(now, UTCDateTime()), literal(0), literal(campaign.template_id),
        literal(campaign.subject), literal(campaign.tracking))
    session.execute(insert(Delivery).from_select(
        ["campaign_id", "customer_id", "email", "status", "due_at", "attempts", "template_id",
         "subject", "tracking"], rows))
    size = session.scalar(select(func.count()).where(Delivery.campaign_id == campaign.id)) or 0
    if campaign.send_mode == "best_hour":
        schedule_at_best_hours(session=session, campaign_id=campaign.id, now=now)
    campaign.status, campaign.audience_size, campaign.started_at = "sending", size, now
    session.flush()
    return size


def start_due_campaigns(*, session: Session, now: datetime, currency: str) -> list[int]:
    """Start the scheduled campaigns whose time has come; their ids."""
    due = session.scalars(select(Campaign).where(Campaign.status == "scheduled",
                                                 Campaign.send_at <= now)).all()
    for campaign in due:
        start_campaign(session=session, campaign=campaign, now=now, currency=currency)
    return [campaign.id for campaign in due]


def cancel_campaign(*, session: Session, campaign_id: int, now: datetime) -> Campaign:
    """Stop a campaign: what was not sent yet is not sent."""
    campaign = get_campaign(session=session, campaign_id=campaign_id)
    if campaign.status in ("sent", "cancelled"):
        raise Conflict(f"campaign {campaign_id} is already {campaign.status}",
                       code="campaign_finished")
    session.execute(update(Delivery).where(Delivery.campaign_id == campaign_id,
                                           Delivery.status == "pending")
                    .values(status="skipped", detail="campaign cancelled"))
    campaign.status, campaign.finished_at, campaign.updated_at = "cancelled", now, now
    session.flush()
    return campaign


def finish_if_done(*, session: Session, campaign_id: int, now: datetime) -> bool:
    """Mark a sending campaign sent once nothing of it waits or is in flight."""
    waiting = session.scalar(select(func.count()).where(
        Delivery.campaign_id == campaign_id, Delivery.status.in_(("pending", "sending"))))
    campaign = get_campaign(session=session, campaign_id=campaign_id)
    if waiting or campaign.status != "sending":
        return False
    campaign.status, campaign.finished_at = "sent", now
    session.flush()
    return True


# --- unsubscribe -------------------------------------------------------------------------


def delivery_of(*, session: Session, delivery_id: int) -> Delivery:
    delivery = session.get(Delivery, delivery_id)
    if delivery is None:
        raise NotFound("this link is no longer valid", code="delivery_not_found")
    return delivery


def unsubscribe(*, session: Session, delivery_id: int, source: str, now: datetime) -> Delivery:
    """The recipient of this message wants no more marketing e-mail: recorded at once (and
    on the message, for the campaign's report)."""
    delivery = delivery_of(session=session, delivery_id=delivery_id)
    customer_id = customers.surviving_id(session=session, customer_id=delivery.customer_id)
    customers.set_email_consent(session=session, customer_id=customer_id,
                                state="unsubscribed", source=source, at=now)
    if delivery.unsubscribed_at is None:
        delivery.unsubscribed_at = now
    session.flush()
    return delivery


def resubscribe(*, session: Session, delivery_id: int, now: datetime) -> Delivery:
    """The recipient asks for marketing e-mail again (from the preference page)."""
    delivery = delivery_of(session=session, delivery_id=delivery_id)
    customer_id = customers.surviving_id(session=session, customer_id=delivery.customer_id)
    customers.set_email_consent(session=session, customer_id=customer_id, state="subscribed",
                                source="preference page", at=now)
    session.flush()
    return delivery


def retry_after(attempts: int) -> timedelta:
    """When to try a message the relay refused for now again: 5, 10, 20... minutes."""
    return timedelta(minutes=5 * 2 ** max(attempts - 1, 0))


# --- engagement: opens, clicks, bounces, complaints ---------------------------------------

MAIL_SOURCE = "Clientela e-mail"  # the source of the events e-mail engagement records


def _engagement_event(session: Session, delivery: Delivery, event: str, at: datetime,
                      **properties: Any) -> None:
    source = team.internal_source(session=session, name=MAIL_SOURCE)
    stamp = at.strftime("%Y%m%dT%H%M%S%f")
    tracking.record_for_customer(
        session=session, source_id=source, customer_id=delivery.customer_id, event=event,
        properties={"campaign_id": delivery.campaign_id, "delivery_id": delivery.id,
                    **properties},
        at=at, message_id=f"{event.split()[-1].lower()}-{delivery.id}-{stamp}")


def record_open(*, session: Session, delivery_id: int, at: datetime, machine: bool) -> None:
    """The message's pixel was fetched: by a person (the first such open counts, and each
    becomes an "Email Opened" event on the profile) or by a mail proxy (kept apart)."""
    delivery = delivery_of(session=session, delivery_id=delivery_id)
    if machine:
        delivery.machine_opened_at = delivery.machine_opened_at or at
    else:
        delivery.opened_at = delivery.opened_at or at
        _engagement_event(session, delivery, "Email Opened", at)
    session.flush()


def record_click(*, session: Session, delivery_id: int, url: str, at: datetime,
                 machine: bool) -> None:
    """A link of the message was followed; a person's click also means it was opened."""
    delivery = delivery_of(session=session, delivery_id=delivery_id)
    if not machine:
        delivery.clicked_at = delivery.clicked_at or at
        delivery.opened_at = delivery.opened_at or at
        _engagement_event(session, delivery, "Email Link Clicked", at, url=url)
    session.flush()


BOUNCE_KINDS = ("hard_bounce", "soft_bounce", "complaint")


def record_bounce(*, session: Session, message_id: str, kind: str, at: datetime,
                  detail: str | None = None) -> Delivery:
    """What the relay or the recipient's provider said of a message we sent: a hard bounce
    or a complaint suppresses the address (a complaint also withdraws consent); a soft
    bounce is only counted."""
    if kind not in BOUNCE_KINDS:
        raise InvalidInput(f"type: must be one of {', '.join(BOUNCE_KINDS)}",
                           code="invalid_bounce")
    delivery = session.scalar(select(Delivery).where(
        Delivery.message_id == _bracketed(message_id)))
    if delivery is None:
        raise NotFound(f"message_id: no message {message_id!r} was sent from here",
                       code="message_not_found")
    if kind == "complaint":
        delivery.complained_at = delivery.complained_at or at
        customers.suppress(session=session, email=delivery.email, reason="complaint",
                           detail=detail, at=at)
        unsubscribe(session=session, delivery_id=delivery.id, source="complaint", now=at)
    else:
        hard = kind == "hard_bounce"
        if delivery.bounce != "hard":
            delivery.bounce, delivery.bounced_at = ("hard" if hard else "soft"), at
        if hard:
            customers.suppress(session=session, email=delivery.email, reason="hard_bounce",
                               detail=detail, at=at)
    session.flush()
    return delivery


def _bracketed(message_id: str) -> str:
    bare = message_id.strip().strip("<>")
    return f"<{bare}>"
