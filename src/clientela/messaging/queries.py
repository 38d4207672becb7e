"""Read-side SQL of messaging: lists and campaign reports."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence

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
    """How the campaign's messages fared (see `reports`)."""
    return reports(session=session, campaigns=[campaign], currency=currency,
                   attribution_days=attribution_days)[campaign.id]


def reports(*, session: Session, campaigns: Sequence[Campaign], currency: str,
            attribution_days: int = 5) -> dict[int, ReportOut]:
    """Each campaign's report, by id: counted from its deliveries, and the orders its
    recipients placed within `attribution_days` of first engaging with it. Three grouped
    queries, however many campaigns."""
    d = Delivery
    ids = [campaign.id for campaign in campaigns]
    counts: dict[int, dict[str, int]] = defaultdict(dict)
    for campaign_id, status, n in session.execute(select(
            d.campaign_id, d.status, func.count()).where(d.campaign_id.in_(ids)).group_by(
            d.campaign_id, d.status)).tuples():
        counts[int(campaign_id or 0)][status] = n
    engagement = {row[0]: tuple(int(value) for value in row[1:]) for row in session.execute(
        select(d.campaign_id, *(func.count(column) for column in (
            d.opened_at, d.clicked_at, d.unsubscribed_at, d.bounced_at, d.complained_at)),
            func.count(case((d.bounce == "hard", 1))),
            func.count(case((and_(d.machine_opened_at.is_not(None), d.opened_at.is_(None)),
                             1)))).where(d.campaign_id.in_(ids)).group_by(d.campaign_id))}
    attributed = _attributed(session, ids, attribution_days)
    return {campaign.id: _report(campaign, counts[campaign.id],
                                 engagement.get(campaign.id, (0,) * 7),
                                 attributed.get(campaign.id, (0, 0)), attribution_days,
                                 currency) for campaign in campaigns}


def _report(campaign: Campaign, counts: dict[str, int], engagement: tuple[int, ...],
            attributed: tuple[int, int], attribution_days: int, currency: str) -> ReportOut:
    opened, clicked, unsubscribed, bounced, complaints, hard, machine_only = engagement
    orders, revenue = attributed
    sent = counts.get("sent", 0)
    return ReportOut(
        campaign_id=campaign.id, status=campaign.status, audience=sum(counts.values()),
        pending=counts.get("pending", 0) + counts.get("sending", 0), sent=sent,
        delivered=sent - bounced, bounced=bounced, hard_bounced=hard, complaints=complaints,
        failed=counts.get("failed", 0), skipped=counts.get("skipped", 0),
        unconfirmed=counts.get("unconfirmed", 0), opened=opened, machine_opened=machine_only,
        clicked=clicked, unsubscribed=unsubscribed, attribution_days=attribution_days,
        orders=orders, revenue=str(as_decimal(revenue, currency)), currency=currency)


def _attributed(session: Session, campaign_ids: list[int], days: int
                ) -> dict[int, tuple[int, int]]:
    """Per campaign, (orders, net revenue in minor units) placed by engaged recipients
    within `days` of their first click, or else their first open."""
    engaged = func.coalesce(Delivery.clicked_at, Delivery.opened_at)
    if session.get_bind().dialect.name == "postgresql":
        until = engaged + func.make_interval(0, 0, 0, days)
    else:
        until = func.strftime("%Y-%m-%d %H:%M:%f", engaged, f"+{days} days")
    rows = session.execute(
        select(Delivery.campaign_id, func.count(Order.id),
               func.coalesce(func.sum(Order.net_store_cents), 0))
        .join(Delivery, Delivery.customer_id == Order.customer_id)
        .where(Delivery.campaign_id.in_(campaign_ids), engaged.is_not(None),
               Order.status.not_in(("cancelled", "refunded")), Order.placed_at >= engaged,
               Order.placed_at < until).group_by(Delivery.campaign_id)).tuples()
    return {campaign_id: (int(orders or 0), int(revenue or 0))
            for campaign_id, orders, revenue in rows if campaign_id is not None}
