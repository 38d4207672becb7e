"""Open and click tracking: the links of both parts of a message rewritten to signed
redirects, a 1×1 pixel, and telling people from machines (mail proxies that fetch every
image the moment a message arrives, security scanners that follow every link).

A click token carries the message (delivery id) and the address it leads to, signed: only
links that were in that message redirect, so the endpoint is no open redirect.
"""

from __future__ import annotations

import html
import re
from dataclasses import replace

from clientela.config import Settings
from clientela.messaging.templates import Rendered
from clientela.messaging.tokens import sign, unsign

OPEN, CLICK = "open", "click"
PIXEL = (b"GIF89a\x01\x00\x01\x00\x80\x00\x00\x00\x00\x00\xff\xff\xff!\xf9\x04\x01\x00\x00"
         b"\x00\x00,\x00\x00\x00\x00\x01\x00\x01\x00\x00\x02\x02D\x01\x00;")
_LINK = re.compile(r'(<a\b[^>]*?\bhref=")(https?://[^"]+)(")', re.IGNORECASE)
_TEXT_LINK = re.compile(r"""https?://[^\s<>"]+""")
_TRAILING = ".,;:!?'\""
# Apple Mail Privacy Protection fetches with a bare "Mozilla/5.0"; Yahoo's proxy names
# itself; the rest are link scanners of mail gateways and plain HTTP libraries.
_MACHINES = re.compile(r"^Mozilla/5\.0$|YahooMailProxy|Barracuda|Mimecast|Proofpoint|"
                       r"bitdefender|python-requests|python-httpx|curl/|Wget|bot\b|spider",
                       re.IGNORECASE)


def is_machine(user_agent: str | None) -> bool:
    """Whether a request comes from a proxy or scanner rather than a person reading."""
    return not user_agent or not user_agent.strip() or bool(_MACHINES.search(user_agent))


def _base(settings: Settings) -> str:
    return settings.public_url.rstrip("/")


def tracked(rendered: Rendered, *, settings: Settings, delivery_id: int) -> Rendered:
    """The message with every web link of its HTML and text parts (but the recipient's own
    unsubscribe and preference links) going through a signed click redirect, and an open
    pixel at the end of the HTML."""
    redirects = _Redirects(settings, delivery_id)
    html = _LINK.sub(redirects.in_html, rendered.html)
    text = _TEXT_LINK.sub(redirects.in_text, rendered.text)
    return replace(rendered, html=_with_pixel(html, settings, delivery_id), text=text)


class _Redirects:
    """The click redirect of each link of one message, signed once per address (the two
    parts carry the same links)."""

    def __init__(self, settings: Settings, delivery_id: int) -> None:
        self.settings, self.delivery_id = settings, delivery_id
        self.own = f"{_base(settings)}/u/"
        self.made: dict[str, str] = {}

    def url(self, target: str) -> str | None:
        """The redirect to `target`; None for the recipient's own links."""
        if target.startswith(self.own):
            return None
        if target not in self.made:
            token = sign(secret=self.settings.secret_key, purpose=CLICK,
                         value=f"{self.delivery_id} {target}")
            self.made[target] = f"{_base(self.settings)}/t/c/{token}"
        return self.made[target]

    def in_html(self, match: re.Match[str]) -> str:
        redirect = self.url(html.unescape(match.group(2)))
        return match.group(0) if redirect is None else f"{match[1]}{redirect}{match[3]}"

    def in_text(self, match: re.Match[str]) -> str:
        found = match.group()
        end = _url_end(found)
        redirect = self.url(found[:end])
        return found if redirect is None else redirect + found[end:]


def _url_end(found: str) -> int:
    """Where an address written in text ends: punctuation after it is the sentence's, and a
    closing parenthesis is its own only when the address opened one ("Ofertas
    (https://loja.example/ofertas)." but "https://pt.wikipedia.org/wiki/Loja_(comércio)")."""
    end = len(found)
    while end and (found[end - 1] in _TRAILING or (
            found[end - 1] == ")" and found.count("(", 0, end) < found.count(")", 0, end))):
        end -= 1
    return end


def _with_pixel(body: str, settings: Settings, delivery_id: int) -> str:
    token = sign(secret=settings.secret_key, purpose=OPEN, value=str(delivery_id))
    pixel = (f'<img src="{_base(settings)}/t/o/{token}.gif" width="1" height="1" alt="" '
             'style="display:block;border:0;width:1px;height:1px">')
    closing = body.rfind("</body>")  # as the layout writes it; else in any case
    if closing < 0:
        closing = body.lower().rfind("</body>")
    if closing < 0:
        return body + pixel
    return body[:closing] + pixel + body[closing:]


def opened(settings: Settings, token: str) -> int:
    """The delivery an open pixel token stands for (InvalidInput when forged)."""
    return int(unsign(secret=settings.secret_key, purpose=OPEN, token=token))


def clicked(settings: Settings, token: str) -> tuple[int, str]:
    """(delivery, address) of a click token (InvalidInput when forged)."""
    delivery, _, target = unsign(secret=settings.secret_key, purpose=CLICK,
                                 token=token).partition(" ")
    return int(delivery), target
