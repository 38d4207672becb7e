"""CORS for the ingestion endpoints only: a shop's pages post events from their own origin.

The write key is public by design (it can only add events), so any origin may send; the
API under /api/v1 and the dashboard get no CORS headers at all.
"""

from __future__ import annotations

from starlette.datastructures import Headers, MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

INGESTION_PREFIX = "/v1/"
_PREFLIGHT = {
    "access-control-allow-origin": "*",
    "access-control-allow-methods": "POST, OPTIONS",
    "access-control-allow-headers": "Authorization, Content-Type, Content-Encoding",
    "access-control-max-age": "86400",
}


class IngestionCORS:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not scope["path"].startswith(INGESTION_PREFIX):
            await self.app(scope, receive, send)
            return
        headers = Headers(scope=scope)
        if scope["method"] == "OPTIONS" and "access-control-request-method" in headers:
            await _preflight(send)
            return
        if "origin" not in headers:
            await self.app(scope, receive, send)
            return

        async def send_with_cors(message: Message) -> None:
            if message["type"] == "http.response.start":
                MutableHeaders(scope=message)["access-control-allow-origin"] = "*"
            await send(message)

        await self.app(scope, receive, send_with_cors)


async def _preflight(send: Send) -> None:
    await send({"type": "http.response.start", "status": 204,
                "headers": [(k.encode(), v.encode()) for k, v in _PREFLIGHT.items()]})
    await send({"type": "http.response.body", "body": b""})
