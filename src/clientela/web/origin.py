"""Cross-site request forgery, refused: a request that changes something and carries the
dashboard's session cookie must come from the dashboard's own pages.

The cookie is SameSite=Lax, so browsers already leave it off cross-site form posts; this
also covers other origins of the same site (a shop's subdomain serving user content) and
old browsers. Browsers say where a request comes from in `Sec-Fetch-Site` and `Origin`;
either, when present, must name this server (its Host, or CLIENTELA_PUBLIC_URL behind a
proxy). Requests without the cookie (the APIs with their keys, one-click unsubscribes
from mail providers) are not the dashboard's and pass.
"""

from __future__ import annotations

from urllib.parse import urlsplit

import orjson
from starlette.types import ASGIApp, Receive, Scope, Send

SAFE = frozenset({"GET", "HEAD", "OPTIONS"})
SAME = frozenset({"same-origin", "none"})  # "none": typed or bookmarked by the user


def _origin_of(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}".lower()


class SameOriginOnly:
    """ASGI middleware: 403 for a cookie-carrying unsafe request from elsewhere."""

    def __init__(self, app: ASGIApp, *, cookie: str, public_url: str) -> None:
        self.app, self.cookie, self.public = app, cookie, _origin_of(public_url)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] in SAFE or self._allowed(scope):
            await self.app(scope, receive, send)
            return
        body = orjson.dumps({"code": "cross_origin", "message": (
            "Origin: a dashboard form must be sent from this dashboard's own pages")})
        await send({"type": "http.response.start", "status": 403, "headers": [
            (b"content-type", b"application/json"),
            (b"content-length", str(len(body)).encode())]})
        await send({"type": "http.response.body", "body": body})

    def _allowed(self, scope: Scope) -> bool:
        headers = {name.decode("latin-1"): value.decode("latin-1")
                   for name, value in scope["headers"]}
        cookies = (part.strip() for part in headers.get("cookie", "").split(";"))
        if not any(cookie.startswith(f"{self.cookie}=") for cookie in cookies):
            return True
        site = headers.get("sec-fetch-site")
        if site is not None and site not in SAME:
            return False
        origin = headers.get("origin")
        if origin is None:
            return True
        # The Host alone: behind a proxy that ends TLS the scheme here is http.
        same_host = urlsplit(origin).netloc.lower() == headers.get("host", "").lower()
        return same_host or _origin_of(origin) == self.public
