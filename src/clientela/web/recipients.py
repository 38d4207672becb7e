"""What e-mail recipients reach from links in messages, with no sign-in: one-click
unsubscribe (RFC 8058), the preference page, and the open pixel and click redirects."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from clientela.api.deps import ReadSessionDep, SessionDep, SettingsDep
from clientela.core.clock import utcnow
from clientela.core.errors import ClientelaError
from clientela.customers import service as customers
from clientela.messaging import service as messaging
from clientela.messaging.drafts import RECIPIENT
from clientela.messaging.tokens import unsign
from clientela.messaging.tracking import PIXEL, clicked, is_machine, opened
from clientela.web.pages import page

router = APIRouter(include_in_schema=False)


def _masked(email: str) -> str:
    """a***@example.com: enough to recognise one's address, not to harvest it."""
    name, _, domain = email.partition("@")
    return f"{name[:1]}***@{domain}"


def _delivery_id(settings: SettingsDep, token: str) -> int:
    return int(unsign(secret=settings.secret_key, purpose=RECIPIENT, token=token))


def _problem(request: Request, error: ClientelaError) -> HTMLResponse:
    return page(request, "recipient.html", status=error.status, state="invalid",
                message=error.message)


@router.get("/u/{token}", response_class=HTMLResponse)
def confirm_unsubscribe(request: Request, token: str, session: ReadSessionDep,
                        settings: SettingsDep) -> HTMLResponse:
    """Asks before unsubscribing: link scanners fetch every URL in a message."""
    try:
        delivery = messaging.delivery_of(session=session,
                                         delivery_id=_delivery_id(settings, token))
    except ClientelaError as error:
        return _problem(request, error)
    return page(request, "recipient.html", state="confirm", token=token,
                email=_masked(delivery.email), shop=settings.shop_name)


@router.post("/u/{token}", response_class=HTMLResponse)
async def unsubscribe(request: Request, token: str, session: SessionDep,
                      settings: SettingsDep) -> HTMLResponse:
    """One click: a mail client's POST with `List-Unsubscribe=One-Click` (or the button on
    the page, which sends the same) unsubscribes at once, with no redirect."""
    form = await request.form()
    if form.get("List-Unsubscribe") != "One-Click":
        return page(request, "recipient.html", status=400, state="invalid",
                    message="The request must carry List-Unsubscribe=One-Click.")
    try:
        delivery = messaging.unsubscribe(session=session,
                                         delivery_id=_delivery_id(settings, token),
                                         source="unsubscribe link", now=utcnow())
    except ClientelaError as error:
        return _problem(request, error)
    session.commit()
    return page(request, "recipient.html", state="unsubscribed", token=token,
                email=_masked(delivery.email), shop=settings.shop_name)


@router.get("/u/{token}/preferences", response_class=HTMLResponse)
def preferences(request: Request, token: str, session: ReadSessionDep,
                settings: SettingsDep) -> HTMLResponse:
    try:
        delivery = messaging.delivery_of(session=session,
                                         delivery_id=_delivery_id(settings, token))
        customer = customers.get_customer(session=session, customer_id=customers.surviving_id(
            session=session, customer_id=delivery.customer_id))
    except ClientelaError as error:
        return _problem(request, error)
    return page(request, "recipient.html", state="preferences", token=token,
                email=_masked(delivery.email), shop=settings.shop_name,
                subscribed=customer.email_marketing == "subscribed")


@router.post("/u/{token}/preferences", response_class=HTMLResponse)
async def change_preferences(request: Request, token: str, session: SessionDep,
                             settings: SettingsDep) -> HTMLResponse:
    form = await request.form()
    wanted = form.get("email_marketing")
    if wanted not in ("subscribed", "unsubscribed"):
        return page(request, "recipient.html", status=400, state="invalid",
                    message="email_marketing: must be subscribed or unsubscribed.")
    try:
        delivery_id, now = _delivery_id(settings, token), utcnow()
        delivery = (messaging.resubscribe(session=session, delivery_id=delivery_id, now=now)
                    if wanted == "subscribed" else messaging.unsubscribe(
                        session=session, delivery_id=delivery_id, source="preference page",
                        now=now))
    except ClientelaError as error:
        return _problem(request, error)
    session.commit()
    return page(request, "recipient.html", state="preferences", token=token, saved=True,
                email=_masked(delivery.email), shop=settings.shop_name,
                subscribed=wanted == "subscribed")


@router.get("/t/o/{token}.gif")
def open_pixel(request: Request, token: str, session: SessionDep,
               settings: SettingsDep) -> Response:
    """A 1×1 GIF, never cached, that counts the message as opened."""
    try:
        messaging.record_open(session=session, delivery_id=opened(settings, token),
                              at=utcnow(), machine=is_machine(request.headers.get("user-agent")))
        session.commit()
    except ClientelaError:
        session.rollback()  # a forged or stale pixel still gets its image, and counts nothing
    return Response(PIXEL, media_type="image/gif", headers={"Cache-Control": "no-store"})


@router.get("/t/c/{token}")
def click(request: Request, token: str, session: SessionDep, settings: SettingsDep
          ) -> Response:
    """Counts the click and sends the reader on, only to a link that was in the message."""
    try:
        delivery_id, target = clicked(settings, token)
        messaging.record_click(session=session, delivery_id=delivery_id, url=target,
                               at=utcnow(), machine=is_machine(request.headers.get("user-agent")))
    except ClientelaError as error:
        session.rollback()
        return _problem(request, error)
    session.commit()
    return RedirectResponse(target, status_code=302, headers={"Cache-Control": "no-store"})
