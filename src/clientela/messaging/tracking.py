"""Open and click tracking: links in a message rewritten to signed redirects, a 1×1 pixel,
and telling people from machines (mail proxies that fetch every image the moment a message
arrives, security scanners that follow every link).

A click token carries the message (delivery id) and the address it leads to, signed: only
links that were in that message redirect, so the endpoint is no open redirect.
"""

from __future__ import annotations

import html
import re

from clientela.config import Settings
from clientela.messaging.tokens import sign, unsign

OPEN, CLICK = "open", "click"
PIXEL = (b"GIF89a\x01\x00\x01\x00\x80\x00\x00\x00\x00\x00\xff\xff\xff!\xf9\x04\x01\x00\x00"
         b"\x00\x00,\x00\x00\x00\x00\x01\x00\x01\x00\x00\x02\x02D\x01\x00;")
_LINK = re.compile(r'(<a\b[^>]*?\bhref=")(https?://[^"]+)(")', re.IGNORECASE)
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


def tracked(body: str, *, settings: Settings, delivery_id: int) -> str:
    """The HTML with every web link (but the recipient's own unsubscribe and preference
    links) going through a signed click redirect, and an open pixel at the end."""
    own = f"{_base(settings)}/u/"

    def redirect(match: re.Match[str]) -> str:
        target = html.unescape(match.group(2))
        if target.startswith(own):
            return match.group(0)
        token = sign(secret=settings.secret_key, purpose=CLICK, value=f"{delivery_id} {target}")
        return f"{match.group(1)}{_base(settings)}/t/c/{token}{match.group(3)}"

    token = sign(secret=settings.secret_key, purpose=OPEN, value=str(delivery_id))
    pixel = (f'<img src="{_base(settings)}/t/o/{token}.gif" width="1" height="1" alt="" '
             'style="display:block;border:0;width:1px;height:1px">')
    rewritten = _LINK.sub(redirect, body)
    closing = rewritten.lower().rfind("</body>")
    if closing < 0:
        return rewritten + pixel
    return rewritten[:closing] + pixel + rewritten[closing:]


def opened(settings: Settings, token: str) -> int:
    """The delivery an open pixel token stands for (InvalidInput when forged)."""
    return int(unsign(secret=settings.secret_key, purpose=OPEN, token=token))


def clicked(settings: Settings, token: str) -> tuple[int, str]:
    """(delivery, address) of a click token (InvalidInput when forged)."""
    delivery, _, target = unsign(secret=settings.secret_key, purpose=CLICK,
                                 token=token).partition(" ")
    return int(delivery), target
