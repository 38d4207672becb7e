"""Segment-compatible ingestion: /v1/identify, track, page, screen, group, alias, batch."""

from __future__ import annotations

import zlib
from typing import Any

import orjson
from fastapi import APIRouter, Request

from clientela.api.deps import KeyCache, basic_user
from clientela.api.responses import FastJSONResponse
from clientela.core.clock import utcnow
from clientela.core.errors import InvalidInput, Unauthorized
from clientela.ingest import EventSink
from clientela.tracking.schemas import MAX_BATCH_BYTES, MAX_EVENT_BYTES
from clientela.tracking.service import validated_batch, validated_event

router = APIRouter(tags=["ingestion"])
_BODY_DOC = {"requestBody": {"required": True, "content": {"application/json": {"schema": {
    "type": "object", "description": "A Segment call (or `{batch: [...]}` for /v1/batch)."}}}}}


def _too_large(limit: int) -> InvalidInput:
    return InvalidInput(f"body: larger than {limit} bytes", code="payload_too_large")


async def _read_body(request: Request, limit: int) -> bytes:
    """The request body, inflated if gzip, refused as soon as it passes `limit` bytes."""
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise _too_large(limit)
        chunks.append(chunk)
    body = b"".join(chunks)
    encoding = request.headers.get("content-encoding", "identity").strip().lower()
    if encoding in ("", "identity"):
        return body
    if encoding != "gzip":
        raise InvalidInput("Content-Encoding: only gzip is accepted", code="unsupported_encoding")
    inflater = zlib.decompressobj(wbits=31)
    try:
        inflated = inflater.decompress(body, limit + 1)
    except zlib.error:
        raise InvalidInput("body: not valid gzip", code="invalid_gzip") from None
    if len(inflated) > limit or inflater.unconsumed_tail:
        raise _too_large(limit)
    if not inflater.eof:
        raise InvalidInput("body: gzip data is truncated", code="invalid_gzip")
    return inflated


def _json(body: bytes) -> Any:
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError as error:
        raise InvalidInput(f"body: invalid JSON ({error})", code="invalid_json") from None


async def _source(request: Request, body: Any) -> int:
    """The write key's id: from HTTP Basic (user, empty password) or `writeKey` in the body."""
    key = basic_user(request)
    if key is None and isinstance(body, dict) and isinstance(body.get("writeKey"), str):
        key = body["writeKey"]
    if not key:
        raise Unauthorized("write key: send it as the HTTP Basic user or as writeKey",
                           code="missing_write_key")
    cache: KeyCache = request.app.state.key_cache
    source_id = await cache.lookup(key, "write")
    if source_id is None:
        raise Unauthorized("write key: not a valid write key", code="invalid_write_key")
    return source_id


def _currency(request: Request) -> str:
    currency: str = request.app.state.settings.store_currency
    return currency


def _writer(request: Request) -> EventSink:
    writer: EventSink = request.app.state.ingest_writer
    return writer


async def _single(request: Request, kind: str) -> FastJSONResponse:
    received_at = utcnow()
    body = _json(await _read_body(request, MAX_EVENT_BYTES))
    source_id = await _source(request, body)
    event = validated_event(body, kind=kind, received_at=received_at,
                            currency=_currency(request))
    await _writer(request).submit(source_id, [event])
    return FastJSONResponse({"success": True})


@router.post("/v1/batch", openapi_extra=_BODY_DOC)
@router.post("/v1/import", openapi_extra=_BODY_DOC, include_in_schema=False)
async def batch(request: Request) -> FastJSONResponse:
    """Many calls at once; invalid ones are listed in `rejected`, the others stored."""
    received_at = utcnow()
    raw = await _read_body(request, MAX_BATCH_BYTES)
    body = _json(raw)
    source_id = await _source(request, body)
    accepted, rejected = validated_batch(body, received_at=received_at, body_bytes=len(raw),
                                         currency=_currency(request))
    if accepted:
        await _writer(request).submit(source_id, accepted)
    return FastJSONResponse({
        "success": True,
        "rejected": [{"index": r.index, "code": r.code, "message": r.message} for r in rejected],
    })


# The short paths Segment's analytics.js posts to.
SHORT_PATHS = {"identify": "i", "track": "t", "page": "p", "group": "g", "alias": "a"}


def _route(kind: str) -> None:
    async def endpoint(request: Request) -> FastJSONResponse:
        return await _single(request, kind)

    endpoint.__name__ = kind
    endpoint.__doc__ = f"One `{kind}` call (Segment HTTP Tracking API)."
    router.add_api_route(f"/v1/{kind}", endpoint, methods=["POST"], openapi_extra=_BODY_DOC)
    if kind in SHORT_PATHS:
        router.add_api_route(f"/v1/{SHORT_PATHS[kind]}", endpoint, methods=["POST"],
                             include_in_schema=False)


for _kind in ("identify", "track", "page", "screen", "group", "alias"):
    _route(_kind)
