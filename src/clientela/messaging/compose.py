"""A rendered message made into an e-mail with the headers mail providers expect.

Written straight to bytes (multipart/alternative, UTF-8, quoted-printable, CRLF lines): the
standard library's `EmailMessage` parses every header it is given and costs more than the
rest of sending a message.
"""

from __future__ import annotations

import binascii
import random
from dataclasses import dataclass
from datetime import datetime
from email.utils import format_datetime, formataddr, getaddresses
from functools import lru_cache

from clientela.messaging.templates import Rendered


@dataclass(frozen=True)
class Envelope:
    sender: str  # "Shop <news@shop.example>"
    to: str
    message_id: str  # "<...@domain>"
    unsubscribe_url: str
    date: datetime


@dataclass(frozen=True)
class Outgoing:
    """A message ready for the wire: who it is from and to (the SMTP envelope) and its
    bytes."""

    message_id: str
    mail_from: str  # the envelope sender, where bounces go
    to: str
    data: bytes


def sender_domain(sender: str) -> str:
    """The domain of the sender's address, for Message-IDs."""
    return sender_address(sender).rpartition("@")[2] or "localhost"


# The sender is the same on every message of a campaign: parsed once, not per message.
@lru_cache(maxsize=64)
def sender_address(sender: str) -> str:
    return getaddresses([sender])[0][1]


def _header(value: str) -> str:
    """A header value: as is when ASCII, else RFC 2047 encoded words (base64 of at most 39
    bytes of whole characters each: 64 characters, a line within 76 with the header's
    name), one per folded line. (`email.header.Header` took a fifth of composing.)"""
    if value.isascii():
        return value
    words, chunk = [], b""
    for character in value:
        encoded = character.encode()
        if len(chunk) + len(encoded) > 39:
            words.append(chunk)
            chunk = b""
        chunk += encoded
    words.append(chunk)
    return "\r\n ".join(f"=?utf-8?b?{binascii.b2a_base64(word, newline=False).decode()}?="
                         for word in words)


# A sending run stamps its messages with few distinct moments.
_date = lru_cache(maxsize=64)(format_datetime)


@lru_cache(maxsize=64)
def _mailbox(value: str) -> str:
    name, address = getaddresses([value])[0]
    return formataddr((name, address), charset="utf-8") if name else address


def _quoted_printable(text: str) -> bytes:
    normalized = text.replace("\r\n", "\n").replace("\r", "\n").encode()
    return binascii.b2a_qp(normalized, istext=True).replace(b"\n", b"\r\n")


def compose(rendered: Rendered, envelope: Envelope) -> Outgoing:
    """Text and HTML parts, with Message-ID and one-click unsubscribe (RFC 8058) headers."""
    # Unique, not secret: a boundary (and a Message-ID's tail) from `random`, which
    # `secrets` would read from the kernel, letting go of the GIL, twice a message.
    boundary = f"=_clientela_{random.getrandbits(96):024x}"
    headers = (
        f"From: {_mailbox(envelope.sender)}\r\n"
        f"To: {envelope.to}\r\n"
        f"Subject: {_header(rendered.subject)}\r\n"
        f"Date: {_date(envelope.date)}\r\n"
        f"Message-ID: {envelope.message_id}\r\n"
        f"List-Unsubscribe: <{envelope.unsubscribe_url}>\r\n"
        "List-Unsubscribe-Post: List-Unsubscribe=One-Click\r\n"
        "MIME-Version: 1.0\r\n"
        f'Content-Type: multipart/alternative; boundary="{boundary}"\r\n\r\n')
    part = ("--{boundary}\r\nContent-Type: text/{kind}; charset=utf-8\r\n"
            "Content-Transfer-Encoding: quoted-printable\r\n\r\n")
    data = b"".join((
        headers.encode("ascii"),
        part.format(boundary=boundary, kind="plain").encode("ascii"),
        _quoted_printable(rendered.text), b"\r\n",
        part.format(boundary=boundary, kind="html").encode("ascii"),
        _quoted_printable(rendered.html), b"\r\n",
        f"--{boundary}--\r\n".encode("ascii")))
    return Outgoing(message_id=envelope.message_id, mail_from=sender_address(envelope.sender),
                    to=envelope.to, data=data)
