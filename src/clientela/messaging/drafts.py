"""Each claimed delivery made into the message that goes out: rendered for its customer,
its links tracked, composed to bytes. Pure work on plain data (`Draft`): the database is
read before, by the sender."""

from __future__ import annotations

import random
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from clientela.config import Settings
from clientela.core.errors import InvalidInput
from clientela.messaging.compose import Envelope, Outgoing, compose, sender_domain
from clientela.messaging.templates import Brand, TemplateParts, render
from clientela.messaging.tokens import sign
from clientela.messaging.tracking import tracked
from clientela.messaging.transport import Outcome

RECIPIENT = "recipient"  # the purpose of the token in unsubscribe and preference links


@dataclass(frozen=True)
class Draft:
    """One message to make: to whom, from which template, with which merge fields."""

    delivery_id: int
    email: str
    parts: TemplateParts
    context: Mapping[str, Any]
    tracking: bool


def recipient_links(settings: Settings, delivery_id: int) -> tuple[str, str]:
    """(unsubscribe URL, preferences URL) of one delivery."""
    token = sign(secret=settings.secret_key, purpose=RECIPIENT, value=str(delivery_id))
    base = settings.public_url.rstrip("/")
    return f"{base}/u/{token}", f"{base}/u/{token}/preferences"


def brand_of(settings: Settings) -> Brand:
    return Brand(shop_name=settings.shop_name, color=settings.shop_color,
                 logo_url=settings.shop_logo_url, address=settings.shop_address)


def make(settings: Settings, now: datetime, draft: Draft) -> Outgoing | Outcome:
    """The message of one draft, or the failure that kept it from being made (a template
    that breaks on this customer's data fails that message alone)."""
    unsubscribe_url, preferences_url = recipient_links(settings, draft.delivery_id)
    try:
        rendered = render(draft.parts, draft.context, brand=brand_of(settings),
                          unsubscribe_url=unsubscribe_url, preferences_url=preferences_url)
    except InvalidInput as error:
        return Outcome(False, permanent=True, detail=error.message)
    if draft.tracking:
        rendered = tracked(rendered, settings=settings, delivery_id=draft.delivery_id)
    domain = sender_domain(settings.mail_from)
    # Unique by the delivery id; the random tail (not secret: see compose) tells attempts apart.
    message_id = f"<d{draft.delivery_id}.{random.getrandbits(32):08x}@{domain}>"
    return compose(rendered, Envelope(sender=settings.mail_from, to=draft.email,
                                      message_id=message_id, unsubscribe_url=unsubscribe_url,
                                      date=now))
