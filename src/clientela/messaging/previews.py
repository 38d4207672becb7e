"""A message before it goes out: rendered for one customer (or the sample one), and sent as a
test to one address. Nothing is recorded: no delivery row, no engagement."""

from __future__ import annotations

import asyncio
import secrets
from datetime import datetime

from sqlalchemy.orm import Session

from clientela.config import Settings
from clientela.core.errors import InvalidInput
from clientela.customers.normalize import normalize_email
from clientela.messaging.compose import Envelope, compose, sender_domain
from clientela.messaging.context import customer_context, sample_context
from clientela.messaging.drafts import brand_of, recipient_links
from clientela.messaging.templates import Rendered, TemplateParts, render
from clientela.messaging.transport import transport_for

TEST_PREFIX = "[TESTE]"  # before the subject of a test message


def preview(*, session: Session, settings: Settings, parts: TemplateParts,
            customer_id: int | None, now: datetime) -> Rendered:
    """The message as `customer_id` (or, when None, a sample customer) would get it; its
    unsubscribe links lead nowhere (delivery 0)."""
    context = sample_context() if customer_id is None else customer_context(
        session=session, customer_id=customer_id, store_currency=settings.store_currency,
        now=now)
    unsubscribe_url, preferences_url = recipient_links(settings, 0)
    return render(parts, context, brand=brand_of(settings), unsubscribe_url=unsubscribe_url,
                  preferences_url=preferences_url)


def send_test(*, session: Session, settings: Settings, parts: TemplateParts, email: str,
              customer_id: int | None, now: datetime, label: str) -> str:
    """Send the message, its subject marked as a test, to one address through the relay (or
    the outbox); its Message-ID. `label` names what is tested in that id ("c12")."""
    address = normalize_email(email)
    if address is None:
        raise InvalidInput("email: must be an e-mail address", code="invalid_email")
    rendered = preview(session=session, settings=settings, customer_id=customer_id, now=now,
                       parts=TemplateParts(subject=f"{TEST_PREFIX} {parts.subject}",
                                           html=parts.html, text=parts.text))
    unsubscribe_url, _ = recipient_links(settings, 0)
    message_id = (f"<test.{label}.{int(now.timestamp())}.{secrets.token_hex(4)}"
                  f"@{sender_domain(settings.mail_from)}>")  # unique even within a second
    message = compose(rendered, Envelope(sender=settings.mail_from, to=address,
                                         message_id=message_id,
                                         unsubscribe_url=unsubscribe_url, date=now))

    async def send() -> None:
        transport = transport_for(settings)
        try:
            outcome = await transport.send(message)
        finally:
            await transport.close()
        if not outcome.sent:
            raise InvalidInput(f"email: the relay refused it: {outcome.detail}",
                               code="test_send_refused")

    asyncio.run(send())
    return message_id
