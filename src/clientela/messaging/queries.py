"""Read-side SQL of messaging: lists and campaign reports."""

from __future__ import annotations

from sqlalchemy import and_, case, func, select
from sqlalchemy.orm import Session

from clientela.commerce.models import Order
from clientela.core.money import as_decimal
from clientela.messaging.models import Campaign, Delivery, Template
from clientela.messaging.schemas import ReportOut


def list_templates(*, session: Session) -> list[Template]:
    return list(session.scalars(select(Template).order_by(Template.name)))


def list_campaigns(*, session: Session) -> list[Campaign]:
    return list(session.scalars(select(Campaign).order_by(Campaign.created_at.desc(),
                                                          Campaign.id.desc())))


def report(*, session: Session, campaign: Campaign, currency: str,
           attribution_days: int = 5) -> ReportOut:
    """How the campaign's messages fared, counted from its deliveries, and the orders its
    recipients placed within `attribution_days` of first engaging with it."""
    d = Delivery
    counts = dict(session.execute(select(d.status, func.count()).where(
        d.campaign_id == campaign.id).group_by(d.status)).tuples().all())
    row = session.execute(select(*(func.count(column) for column in (
        d.opened_at, d.machine_opened_at, d.clicked_at, d.unsubscribed_at, d.bounced_at,
        d.complained_at)), func.count(case((d.bounce == "hard", 1))),
        func.count(case((and_(d.machine_opened_at.is_not(None), d.opened_at.is_(None)), 1))),
    ).where(d.campaign_id == campaign.id)).one()
    opened, _machine_any, clicked, unsubscribed, bounced, complaints, hard, machine_only = (
        int(value) for value in row)
    orders, revenue = _attributed(session, campaign.id, attribution_days)
    sent = counts.get("sent", 0)
    return ReportOut(
        campaign_id=campaign.id, status=campaign.status, audience=sum(counts.values()),
        pending=counts.get("pending", 0) + counts.get("sending", 0), sent=sent,
        delivered=sent - bounced, bounced=bounced, hard_bounced=hard, complaints=complaints,
        failed=counts.get("failed", 0), skipped=counts.get("skipped", 0),
        unconfirmed=counts.get("unconfirmed", 0), opened=opened, machine_opened=machine_only,
        clicked=clicked, unsubscribed=unsubscribed, attribution_days=attribution_days,
        orders=orders, revenue=str(as_decimal(revenue, currency)), currency=currency)


def _attributed(session: Session, campaign_id: int, days: int) -> tuple[int, int]:
    """(orders, net revenue in minor units) placed by engaged recipients within `days` of
    their first click, or else their first open."""
    engaged = func.coalesce(Delivery.clicked_at, Delivery.opened_at)
    if session.get_bind().dialect.name == "postgresql":
        until = engaged + func.make_interval(0, 0, 0, days)
    else:
        until = func.strftime("%Y-%m-%d %H:%M:%f", engaged, f"+{days} days")
    orders, revenue = session.execute(
        select(func.count(Order.id), func.coalesce(func.sum(Order.net_store_cents), 0))
        .join(Delivery, Delivery.customer_id == Order.customer_id)
        .where(Delivery.campaign_id == campaign_id, engaged.is_not(None),
               Order.status.not_in(("cancelled", "refunded")), Order.placed_at >= engaged,
               Order.placed_at < until)).one()
    return int(orders or 0), int(revenue or 0)
