"""Sending a campaign: due deliveries are claimed a batch at a time, checked again (consent,
suppression, the weekly cap), rendered, handed to the transport, and their outcome recorded.

Exactly once: a delivery is claimed ("sending", with this sender's run id) and committed
before its message goes out, and marked sent after. A sender that dies in between leaves
rows in "sending"; once their lease has passed, the next sender marks them "unconfirmed"
and never sends them again, so nobody receives a campaign twice.
"""

from __future__ import annotations

import asyncio
import secrets
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import ColumnElement, Engine, and_, func, or_, select, update
from sqlalchemy.orm import Session

from clientela.config import Settings
from clientela.core.errors import InvalidInput
from clientela.core.switching import responsive_switching
from clientela.core.types import db_time
from clientela.customers import service as customers
from clientela.customers.models import Customer
from clientela.db import driver_executemany, session_scope, unindexed
from clientela.messaging import service
from clientela.messaging.compose import Outgoing
from clientela.messaging.context import FIELDS, BestSellers, customer_contexts
from clientela.messaging.drafts import Draft, make
from clientela.messaging.models import Campaign, Delivery
from clientela.messaging.templates import TemplateParts, names_read
from clientela.messaging.transport import Outcome, Transport

MAX_ATTEMPTS = 5


@dataclass(frozen=True)
class Sender:
    """One sending run: where messages go, the clock, and this run's id."""

    settings: Settings
    engine: Engine
    transport: Transport
    now: Callable[[], datetime]
    run: str = field(default_factory=lambda: secrets.token_hex(8))
    batch: int = 200
    lease: timedelta = timedelta(minutes=10)


@dataclass
class Tally:
    sent: int = 0
    failed: int = 0
    retrying: int = 0
    skipped: int = 0
    unconfirmed: int = 0


@dataclass(frozen=True)
class _Claimed:
    delivery_id: int
    customer_id: int
    email: str
    attempts: int  # this one included
    template_id: int
    subject: str
    tracking: bool
    coupon: str | None


def deliver_campaign(sender: Sender, campaign_id: int | None) -> Tally:
    """Send everything of the campaign (None: of the scenarios) that is due now; returns
    what happened."""
    async def run() -> Tally:
        try:
            return await deliver(sender, campaign_id)
        finally:
            await sender.transport.close()
    # The event loop answers the relay while a thread makes the next batch.
    with responsive_switching():
        return asyncio.run(run())


async def deliver(sender: Sender, campaign_id: int | None) -> Tally:
    """Send what is due of one campaign, or (None) of the scenarios' messages."""
    tally = Tally()
    throttle = None
    with session_scope(sender.engine) as session:
        tally.unconfirmed = _give_up_stale(session, sender, campaign_id)
        if campaign_id is not None:
            throttle = service.get_campaign(session=session,
                                            campaign_id=campaign_id).throttle_per_second
    await _pipeline(sender, campaign_id, tally, throttle,
                    BestSellers(as_of=sender.now()))  # ranked once for the whole run
    if campaign_id is not None:
        with session_scope(sender.engine) as session:
            service.finish_if_done(session=session, campaign_id=campaign_id, now=sender.now())
    return tally


async def _pipeline(sender: Sender, campaign_id: int | None, tally: Tally,
                    throttle: int | None, best_sellers: BestSellers) -> None:
    """The next batch is claimed and made (in a thread) while this one is on the wire, so
    the relay's time and ours overlap."""
    # A task, so that the thread starts now: a bare `to_thread` coroutine waits for its
    # `await`, and batches were made and sent one after the other.
    upcoming = asyncio.create_task(
        asyncio.to_thread(_next_batch, sender, campaign_id, best_sellers))
    while True:
        started = time.monotonic()
        claimed, messages, skipped = await upcoming
        tally.skipped += skipped
        if not claimed and not skipped:
            break
        sending = asyncio.gather(*(_send(sender.transport, message) for message in messages))
        upcoming = asyncio.create_task(
            asyncio.to_thread(_next_batch, sender, campaign_id, best_sellers))
        outcomes = await sending
        with session_scope(sender.engine) as session:
            _record(session, sender, claimed, messages, outcomes, tally)
        if throttle and claimed:
            await asyncio.sleep(max(0.0, len(claimed) / throttle
                                    - (time.monotonic() - started)))


async def _send(transport: Transport, message: Outgoing | Outcome) -> Outcome:
    """Send a message; one that could not be made (an Outcome already) stays as it is."""
    if isinstance(message, Outcome):
        return message
    return await transport.send(message)


def _next_batch(sender: Sender, campaign_id: int | None, best_sellers: BestSellers
                ) -> tuple[list[_Claimed], list[Outgoing | Outcome], int]:
    """Claim the next due deliveries and make their messages: (claimed, their messages,
    how many were skipped instead)."""
    with session_scope(sender.engine) as session:
        claimed, skipped = _claim(session, sender, campaign_id)
    settings, now = sender.settings, sender.now()
    return claimed, [make(settings, now, draft)
                     for draft in _drafts(sender, claimed, best_sellers)], skipped


def _of(campaign_id: int | None) -> ColumnElement[bool]:
    """The deliveries of a campaign, or (None) of the scenarios."""
    if campaign_id is None:
        return Delivery.campaign_id.is_(None)
    return Delivery.campaign_id == campaign_id


def _give_up_stale(session: Session, sender: Sender, campaign_id: int | None) -> int:
    """Deliveries another sender claimed and never reported on, past their lease: it may
    have sent them, so they are not sent again."""
    result = session.execute(update(Delivery).where(
        _of(campaign_id), Delivery.status == "sending",
        Delivery.claimed_at <= sender.now() - sender.lease,
    ).values(status="unconfirmed", detail="the sender stopped while sending it"))
    return int(result.rowcount or 0)  # type: ignore[attr-defined]


def _claim(session: Session, sender: Sender, campaign_id: int | None
           ) -> tuple[list[_Claimed], int]:
    """Claim the next due deliveries; those whose customer may no longer receive marketing
    e-mail, or reached the weekly cap, are skipped instead. (claimed, how many skipped)"""
    now = sender.now()
    due = select(Delivery.id, Delivery.customer_id, Delivery.attempts, Delivery.template_id,
                 Delivery.subject, Delivery.tracking, Delivery.coupon).where(
        _of(campaign_id), Delivery.status == "pending",
        Delivery.due_at <= now).order_by(Delivery.due_at, Delivery.id).limit(sender.batch)
    if session.get_bind().dialect.name == "postgresql":
        due = due.with_for_update(skip_locked=True)
    rows = session.execute(due).all()
    if not rows:
        return [], 0
    ids = [row.customer_id for row in rows]
    reachable = {cid: str(email) for cid, email in session.execute(
        select(Customer.id, Customer.email).where(
            # by id: SQLite read every unmerged customer through the merged_into_id index
            Customer.id.in_(ids), unindexed(Customer.merged_into_id).is_(None),
            customers.reachable_by_email())).tuples()}
    capped = _at_weekly_cap(session, ids, now, sender.settings.marketing_cap_per_week)
    claimed, skipped = [], []
    for row in rows:
        if row.customer_id not in reachable:
            skipped.append((row.id, "no longer reachable: no consent or address"))
        elif row.customer_id in capped:
            skipped.append((row.id, "weekly cap reached"))
        else:
            claimed.append(_Claimed(row.id, row.customer_id, reachable[row.customer_id],
                                    row.attempts + 1, row.template_id, row.subject,
                                    row.tracking, row.coupon))
    for delivery_id, why in skipped:
        session.execute(update(Delivery).where(Delivery.id == delivery_id)
                        .values(status="skipped", detail=why))
    if claimed:
        session.execute(update(Delivery).where(
            Delivery.id.in_([c.delivery_id for c in claimed])).values(
            status="sending", claimed_at=now, claimed_by=sender.run,
            attempts=Delivery.attempts + 1))
    return claimed, len(skipped)


def _at_weekly_cap(session: Session, customer_ids: list[int], now: datetime, cap: int
                   ) -> set[int]:
    """Those of `customer_ids` sent `cap` messages in the last 7 days, counting the ones on
    the wire now (claimed by this sender's previous batch, or by another sender)."""
    sent = session.execute(select(Delivery.customer_id).where(
        Delivery.customer_id.in_(customer_ids),
        or_(and_(Delivery.status == "sent", Delivery.sent_at > now - timedelta(days=7)),
            Delivery.status == "sending")).group_by(Delivery.customer_id)
        .having(func.count() >= cap)).scalars().all()
    return set(sent)


def _drafts(sender: Sender, claimed: list[_Claimed], best_sellers: BestSellers
            ) -> list[Draft]:
    """The draft of each claimed delivery: its template and its customer's merge fields."""
    parts: dict[tuple[int, str], TemplateParts] = {}
    with session_scope(sender.engine, writes=False) as session:
        for item in claimed:
            key = (item.template_id, item.subject)
            if key not in parts:
                parts[key] = service.parts_of(service.get_template(
                    session=session, template_id=item.template_id), item.subject)
        contexts = customer_contexts(session=session,
                                     customer_ids=[item.customer_id for item in claimed],
                                     store_currency=sender.settings.store_currency,
                                     now=sender.now(), best_sellers=best_sellers,
                                     fields=_fields_read(parts.values()))
    # claimed: live customers, so every context is there; a scenario step adds its coupon
    return [Draft(item.delivery_id, item.email, parts[(item.template_id, item.subject)],
                  _with_coupon(contexts[item.customer_id], item.coupon), item.tracking)
            for item in claimed]


def _fields_read(parts: Iterable[TemplateParts]) -> frozenset[str]:
    """The merge fields some of `parts` read; a template that cannot be read gets them all
    (its messages fail when rendered, with the template's error)."""
    try:
        return frozenset().union(*(names_read(part) for part in parts))
    except InvalidInput:
        return FIELDS


def _with_coupon(context: Mapping[str, Any], coupon: str | None) -> Mapping[str, Any]:
    return context if coupon is None else {**context, "coupon": coupon}


def _record(session: Session, sender: Sender, claimed: list[_Claimed],
            messages: list[Outgoing | Outcome], outcomes: list[Outcome], tally: Tally) -> None:
    moment = db_time(sender.now())
    sent, failed, later, unsure = [], [], [], []
    for item, message, outcome in zip(claimed, messages, outcomes, strict=True):
        if outcome.sent and isinstance(message, Outgoing):
            sent.append((moment, message.message_id, item.email, item.delivery_id))
        elif outcome.unconfirmed:  # it may have been delivered: never sent again
            unsure.append(((outcome.detail or "unconfirmed")[:500], item.delivery_id))
        elif outcome.permanent or item.attempts >= MAX_ATTEMPTS:
            failed.append(((outcome.detail or "refused")[:500], item.delivery_id))
        else:
            retry = db_time(sender.now() + service.retry_after(item.attempts))
            later.append(((outcome.detail or "refused for now")[:500], retry, item.delivery_id))
    driver_executemany(session, "UPDATE deliveries SET status = 'sent', sent_at = ?, "
                       "message_id = ?, email = ?, detail = NULL WHERE id = ?", sent)
    driver_executemany(session, "UPDATE deliveries SET status = 'failed', detail = ? "
                       "WHERE id = ?", failed)
    driver_executemany(session, "UPDATE deliveries SET status = 'pending', detail = ?, "
                       "due_at = ? WHERE id = ?", later)
    driver_executemany(session, "UPDATE deliveries SET status = 'unconfirmed', detail = ? "
                       "WHERE id = ?", unsure)
    tally.sent += len(sent)
    tally.failed += len(failed)
    tally.retrying += len(later)
    tally.unconfirmed += len(unsure)


def campaigns_to_send(*, session: Session, now: datetime) -> list[int]:
    """Campaigns that are sending and have deliveries due (or stale claims to settle)."""
    return list(session.scalars(select(Campaign.id).where(
        Campaign.status == "sending", Campaign.id.in_(select(Delivery.campaign_id).where(
            Delivery.status.in_(("pending", "sending")), Delivery.due_at <= now)))))
