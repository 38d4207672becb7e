"""Webhooks: from store platforms (/integrations/shopify/webhooks,
/integrations/woocommerce/webhooks) and from mail relays (/integrations/email/events)."""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from typing import Any

import orjson
from fastapi import APIRouter, Request
from starlette.concurrency import run_in_threadpool

from clientela.api.responses import FastJSONResponse
from clientela.commerce import woocommerce
from clientela.commerce.payloads import signed
from clientela.commerce.webhooks import receive_shopify, receive_woocommerce
from clientela.config import Settings
from clientela.core.clock import utcnow
from clientela.core.errors import InvalidInput, NotFound, Unauthorized
from clientela.db import session_scope
from clientela.messaging import service as messaging
from clientela.messaging.bounces import mail_report

router = APIRouter(prefix="/integrations", tags=["integrations"], include_in_schema=False)
MAX_WEBHOOK_BYTES = 5 * 1024 * 1024


@router.post("/shopify/webhooks")
async def shopify_webhook(request: Request) -> FastJSONResponse:
    """A Shopify webhook: verified before it is read, applied once per delivery id."""
    settings: Settings = request.app.state.settings
    secret = settings.shopify_webhook_secret
    if not secret:
        raise NotFound("Shopify webhooks are not configured (CLIENTELA_SHOPIFY_WEBHOOK_SECRET)",
                       code="not_configured")
    body = await _body(request)
    if not signed(body, request.headers.get("x-shopify-hmac-sha256"), secret):
        raise Unauthorized("X-Shopify-Hmac-Sha256: does not match the body",
                           code="invalid_signature")
    topic = request.headers.get("x-shopify-topic")
    delivery = request.headers.get("x-shopify-event-id") or \
        request.headers.get("x-shopify-webhook-id")
    if not topic or not delivery:
        raise InvalidInput("X-Shopify-Topic and X-Shopify-Webhook-Id: both are required",
                           code="invalid_webhook")
    return await _receive(request, partial(receive_shopify, topic=topic, delivery_id=delivery,
                                           payload=_object(body)))


@router.post("/woocommerce/webhooks")
async def woocommerce_webhook(request: Request) -> FastJSONResponse:
    """A WooCommerce webhook: verified before it is read, applied once per change."""
    settings: Settings = request.app.state.settings
    secret = settings.woocommerce_webhook_secret
    if not secret:
        raise NotFound("WooCommerce webhooks are not configured "
                       "(CLIENTELA_WOOCOMMERCE_WEBHOOK_SECRET)", code="not_configured")
    body = await _body(request)
    signature = request.headers.get("x-wc-webhook-signature")
    if signature is None and woocommerce.is_ping(body):
        return FastJSONResponse({"success": True})  # sent unsigned when the hook is created
    if not signed(body, signature, secret):
        raise Unauthorized("X-WC-Webhook-Signature: does not match the body",
                           code="invalid_signature")
    topic = request.headers.get("x-wc-webhook-topic")
    if not topic or "." not in topic:
        raise InvalidInput("X-WC-Webhook-Topic: required, as resource.event",
                           code="invalid_webhook")
    return await _receive(request, partial(receive_woocommerce, topic=topic,
                                           payload=_object(body)))


@router.post("/email/events")
async def email_events(request: Request) -> FastJSONResponse:
    """Bounces and complaints from a mail relay, signed like Shopify's webhooks (base64
    HMAC-SHA256 of the body in X-Clientela-Signature): `{"message_id", "type":
    "hard_bounce" | "soft_bounce" | "complaint", "detail"?}`, or `{"events": [...]}`."""
    settings: Settings = request.app.state.settings
    if not settings.mail_events_secret:
        raise NotFound("e-mail events are not configured (CLIENTELA_MAIL_EVENTS_SECRET)",
                       code="not_configured")
    body = await _body(request)
    if not signed(body, request.headers.get("x-clientela-signature"),
                  settings.mail_events_secret):
        raise Unauthorized("X-Clientela-Signature: does not match the body",
                           code="invalid_signature")
    payload = _object(body)
    reports = payload.get("events", [payload])
    if not isinstance(reports, list) or not 0 < len(reports) <= 1000:
        raise InvalidInput("events: must be a list of 1 to 1000 reports", code="invalid_report")
    parsed = [mail_report(report, f"events[{index}]") for index, report in enumerate(reports)]
    engine = request.app.state.engine

    def apply() -> int:
        with session_scope(engine) as session:
            for report in parsed:
                messaging.record_bounce(session=session, message_id=report.message_id,
                                        kind=report.kind, at=utcnow(), detail=report.detail)
        return len(parsed)

    return FastJSONResponse({"success": True, "recorded": await run_in_threadpool(apply)})


async def _receive(request: Request, receive: Callable[..., bool]) -> FastJSONResponse:
    """Apply a verified webhook in a transaction of its own; whether it was seen before."""
    settings: Settings = request.app.state.settings
    engine = request.app.state.engine

    def apply() -> bool:
        with session_scope(engine) as session:
            return receive(session=session, exchange=settings.exchange,
                           default_region=settings.default_country)

    new = await run_in_threadpool(apply)
    return FastJSONResponse({"success": True, "duplicate": not new})


async def _body(request: Request) -> bytes:
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > MAX_WEBHOOK_BYTES:
            raise InvalidInput(f"body: larger than {MAX_WEBHOOK_BYTES} bytes",
                               code="payload_too_large")
        chunks.append(chunk)
    return b"".join(chunks)


def _object(body: bytes) -> dict[str, Any]:
    try:
        payload = orjson.loads(body)
    except orjson.JSONDecodeError as error:
        raise InvalidInput(f"body: invalid JSON ({error})", code="invalid_json") from None
    if not isinstance(payload, dict):
        raise InvalidInput("body: must be a JSON object", code="invalid_webhook")
    return payload
