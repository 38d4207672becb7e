"""Webhooks from store platforms: /integrations/shopify/webhooks and
/integrations/woocommerce/webhooks."""

from __future__ import annotations

from typing import Any

import orjson
from fastapi import APIRouter, Request
from starlette.concurrency import run_in_threadpool

from clientela.api.responses import FastJSONResponse
from clientela.commerce import shopify, woocommerce
from clientela.commerce.webhooks import receive_shopify, receive_woocommerce
from clientela.config import Settings
from clientela.core.errors import InvalidInput, NotFound, Unauthorized
from clientela.db import session_scope

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
    if not shopify.signed(body, request.headers.get("x-shopify-hmac-sha256"), secret):
        raise Unauthorized("X-Shopify-Hmac-Sha256: does not match the body",
                           code="invalid_signature")
    topic = request.headers.get("x-shopify-topic")
    delivery = request.headers.get("x-shopify-event-id") or \
        request.headers.get("x-shopify-webhook-id")
    if not topic or not delivery:
        raise InvalidInput("X-Shopify-Topic and X-Shopify-Webhook-Id: both are required",
                           code="invalid_webhook")
    payload = _object(body)
    engine = request.app.state.engine

    def receive() -> bool:
        with session_scope(engine) as session:
            return receive_shopify(session=session, topic=topic, delivery_id=delivery,
                                   payload=payload, exchange=settings.exchange,
                                   default_region=settings.default_country)

    new = await run_in_threadpool(receive)
    return FastJSONResponse({"success": True, "duplicate": not new})


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
    if not woocommerce.signed(body, signature, secret):
        raise Unauthorized("X-WC-Webhook-Signature: does not match the body",
                           code="invalid_signature")
    topic = request.headers.get("x-wc-webhook-topic")
    if not topic or "." not in topic:
        raise InvalidInput("X-WC-Webhook-Topic: required, as resource.event",
                           code="invalid_webhook")
    payload = _object(body)
    engine = request.app.state.engine

    def receive() -> bool:
        with session_scope(engine) as session:
            return receive_woocommerce(session=session, topic=topic, payload=payload,
                                       exchange=settings.exchange,
                                       default_region=settings.default_country)

    new = await run_in_threadpool(receive)
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
