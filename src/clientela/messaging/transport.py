"""Where messages go: an SMTP relay (aiosmtplib, connections reused, a bounded number at
once) or, with no relay configured, `.eml` files in the outbox folder."""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import aiosmtplib

from clientela.config import Settings
from clientela.messaging.compose import Outgoing


@dataclass(frozen=True)
class Outcome:
    """What became of one message: taken, or refused for good (`permanent`) or for now."""

    sent: bool
    permanent: bool = False
    detail: str | None = None


class Transport(Protocol):
    async def send(self, message: Outgoing) -> Outcome: ...

    async def close(self) -> None: ...


def outbox_folder(settings: Settings) -> Path:
    return settings.data_dir / "outbox"


class Outbox:
    """Each message as `<message id>.eml`, written whole (a temporary file renamed), so a
    message written twice is still one file."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        folder.mkdir(parents=True, exist_ok=True)

    async def send(self, message: Outgoing) -> Outcome:
        name = re.sub(r"[^A-Za-z0-9._@-]", "_", message.message_id.strip("<>"))
        target = self.folder / f"{name}.eml"
        partial = target.with_suffix(".part")
        partial.write_bytes(message.data)
        os.replace(partial, target)
        return Outcome(sent=True)

    async def close(self) -> None:
        return None


class Smtp:
    """Up to `connections` SMTP sessions, each opened on first use and kept for the next
    messages; a session that breaks is opened again once before a message counts as failed."""

    def __init__(self, settings: Settings) -> None:
        if settings.smtp_host is None:
            raise ValueError("no SMTP relay configured")
        self.settings = settings
        self.idle: asyncio.Queue[aiosmtplib.SMTP | None] = asyncio.Queue()
        for _ in range(settings.smtp_connections):
            self.idle.put_nowait(None)

    def _client(self) -> aiosmtplib.SMTP:
        s = self.settings
        return aiosmtplib.SMTP(hostname=s.smtp_host, port=s.smtp_port,
                               username=s.smtp_username, password=s.smtp_password,
                               use_tls=s.smtp_tls == "tls", start_tls=s.smtp_tls == "starttls",
                               timeout=30)

    async def _open(self) -> aiosmtplib.SMTP:
        client = self._client()
        await client.connect()
        if client.last_ehlo_response is None and client.last_helo_response is None:
            try:
                await client.ehlo()
            except aiosmtplib.SMTPHeloError:
                await client.helo()
        return client

    async def send(self, message: Outgoing) -> Outcome:
        client = await self.idle.get()
        try:
            for attempt in range(2):
                if client is None or not client.is_connected:
                    client = await self._open()
                try:
                    await _transaction(client, message)
                    return Outcome(sent=True)
                except aiosmtplib.SMTPResponseException as error:
                    detail = (str(error) if isinstance(error, aiosmtplib.SMTPRecipientRefused)
                              else f"{error.code} {error.message}")
                    return Outcome(False, permanent=error.code >= 500, detail=detail)
                except (aiosmtplib.SMTPServerDisconnected, aiosmtplib.SMTPConnectError,
                        ConnectionError) as error:
                    client = None
                    if attempt:
                        return Outcome(False, detail=f"connection lost: {error}")
            return Outcome(False, detail="not sent")
        except (aiosmtplib.SMTPException, OSError) as error:
            client = None
            return Outcome(False, detail=str(error))
        finally:
            self.idle.put_nowait(client)

    async def close(self) -> None:
        while not self.idle.empty():
            client = self.idle.get_nowait()
            if client is not None and client.is_connected:
                try:
                    await client.quit()
                except aiosmtplib.SMTPException:
                    client.close()


async def _transaction(client: aiosmtplib.SMTP, message: Outgoing) -> None:
    """MAIL, RCPT and DATA of one message, the envelope reset when the relay refuses it.
    (`sendmail` parses both addresses twice and the whole message once more to size it:
    half of aiosmtplib's time per message. Our addresses are checked when a customer's
    address is stored, and `compose` writes CRLF lines, so the size is the length.)"""
    size = [f"SIZE={len(message.data)}"] if client.supports_extension("size") else []
    try:
        await client.mail(message.mail_from, options=size)
        await client.rcpt(message.to)
        await client.data(message.data)
    except aiosmtplib.SMTPResponseException:
        with contextlib.suppress(ConnectionError, aiosmtplib.SMTPException):
            await client.rset()
        raise


def transport_for(settings: Settings) -> Transport:
    """The relay if one is configured, the outbox otherwise."""
    if settings.smtp_host:
        return Smtp(settings)
    return Outbox(outbox_folder(settings))
