"""Where messages go: an SMTP relay (`smtp.SmtpSession`, connections reused, a bounded
number at once) or, with no relay configured, `.eml` files in the outbox folder."""

from __future__ import annotations

import asyncio
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from clientela.config import Settings
from clientela.messaging.compose import Outgoing
from clientela.messaging.smtp import TIMEOUT, Refused, SmtpSession


@dataclass(frozen=True)
class Outcome:
    """What became of one message: taken, or refused for good (`permanent`) or for now, or
    handed over with no answer (`unconfirmed`: it may have been delivered)."""

    sent: bool
    permanent: bool = False
    detail: str | None = None
    unconfirmed: bool = False


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
    messages; a session that breaks before the message is handed over is opened again once
    before the message counts as failed for now."""

    def __init__(self, settings: Settings) -> None:
        if settings.smtp_host is None:
            raise ValueError("no SMTP relay configured")
        self.settings = settings
        self.idle: asyncio.Queue[SmtpSession | None] = asyncio.Queue()
        for _ in range(settings.smtp_connections):
            self.idle.put_nowait(None)

    async def send(self, message: Outgoing) -> Outcome:
        session, answer = await self._hand_over(message)
        if isinstance(answer, Outcome):
            return answer
        try:
            async with asyncio.timeout(TIMEOUT):
                await asyncio.shield(answer)  # the session reads it, whoever waits
            return Outcome(sent=True)
        except Refused as refusal:
            return Outcome(False, permanent=refusal.code >= 500, detail=str(refusal))
        except (ConnectionError, TimeoutError) as error:
            if session is not None:
                session.close()  # it may have been delivered: never again
            return Outcome(False, unconfirmed=True, detail="connection lost after the "
                           f"message was sent: {_named(error)}")

    async def _hand_over(self, message: Outgoing
                         ) -> tuple[SmtpSession | None, asyncio.Future[None] | Outcome]:
        """(the session, the server's answer to come) once the message is handed over, or
        what became of it when it could not be. The session goes back to the idle ones at
        once, so that the next message can go right behind this one."""
        session = await self.idle.get()
        try:
            for attempt in (1, 2):
                if session is None or session.closed:
                    session = await SmtpSession.open(self.settings)
                try:
                    async with asyncio.timeout(TIMEOUT):
                        return session, await session.hand_over(message)
                except Refused as refusal:
                    return session, Outcome(False, permanent=refusal.code >= 500,
                                            detail=str(refusal))
                except (ConnectionError, TimeoutError) as error:
                    session.close()  # not handed over: sent again on a new connection once
                    if attempt == 2:
                        return session, Outcome(False, detail=f"connection lost: {_named(error)}")
            raise AssertionError("the second attempt returns")
        except Refused as refusal:  # opening the session: greeting, EHLO, STARTTLS, AUTH
            session = None
            return None, Outcome(False, permanent=refusal.code >= 500, detail=str(refusal))
        except (OSError, TimeoutError) as error:
            session = None
            return None, Outcome(False, detail=_named(error))
        finally:
            self.idle.put_nowait(session)

    async def close(self) -> None:
        while not self.idle.empty():
            session = self.idle.get_nowait()
            if session is not None:
                await session.quit()


def _named(error: Exception) -> str:
    return f"{type(error).__name__}: {error}".rstrip(": ")


def transport_for(settings: Settings) -> Transport:
    """The relay if one is configured, the outbox otherwise."""
    if settings.smtp_host:
        return Smtp(settings)
    return Outbox(outbox_folder(settings))
