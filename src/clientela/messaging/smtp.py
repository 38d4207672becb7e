"""A lean SMTP client session on asyncio streams, for sending many messages over one
connection: EHLO (STARTTLS, AUTH) once, then per message MAIL, RCPT and DATA, the three
written at once when the server offers PIPELINING (RFC 2920), right behind the previous
message's end of data: one round trip per message instead of two.

aiosmtplib spent about a fifth of a campaign's CPU per message on locks, timers and
parsing around each command; here a message is one timer (the caller's) and four short
reads. Outgoing messages are CRLF lines (`compose` writes them so).
"""

from __future__ import annotations

import asyncio
import base64
import socket
import ssl
from functools import cache

from clientela.config import Settings
from clientela.messaging.compose import Outgoing

TIMEOUT = 30.0  # seconds for opening a session, or for one message


class Refused(Exception):
    """The server answered a command with a 4xx or 5xx reply (or something unexpected)."""

    def __init__(self, code: int, text: str) -> None:
        super().__init__(f"{code} {text}")
        self.code = code


class SmtpSession:
    """One open connection to the relay, greeted, secured and logged in."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer
        self.extensions: dict[str, str] = {}
        # The server's answer to the last message handed over, while it is still read.
        self._answer: asyncio.Future[None] | None = None

    @classmethod
    async def open(cls, settings: Settings) -> SmtpSession:
        """Connect, read the greeting, EHLO (HELO if refused), STARTTLS and AUTH as set."""
        assert settings.smtp_host is not None
        async with asyncio.timeout(TIMEOUT):
            reader, writer = await asyncio.open_connection(
                settings.smtp_host, settings.smtp_port,
                ssl=ssl.create_default_context() if settings.smtp_tls == "tls" else None)
            session = cls(reader, writer)
            try:
                await session._expect(220)
                await session._hello()
                if settings.smtp_tls == "starttls":
                    await session._start_tls(settings.smtp_host)
                if settings.smtp_username:
                    await session._log_in(settings.smtp_username, settings.smtp_password or "")
            except BaseException:
                session.close()
                raise
        return session

    @property
    def closed(self) -> bool:
        return self.writer.is_closing() or self.reader.at_eof()

    async def hand_over(self, message: Outgoing) -> asyncio.Future[None]:
        """Send one message, up to its end of data. Raises Refused when the server refuses
        the envelope (which is then reset) and ConnectionError when the connection is lost:
        either way the message was not handed over. Returns the server's answer to come:
        awaiting it raises Refused if the server refuses the message, ConnectionError if
        the connection is lost first (the message may have been delivered). The session
        can take the next message before that answer has arrived."""
        size = f" SIZE={len(message.data)}" if "SIZE" in self.extensions else ""
        commands = (f"MAIL FROM:<{message.mail_from}>{size}", f"RCPT TO:<{message.to}>", "DATA")
        if "PIPELINING" in self.extensions:
            # Behind the last message's end of data (RFC 2920 lets DATA's content open a
            # group), so that one round trip answers both.
            self.writer.write("".join(f"{line}\r\n" for line in commands).encode())
            await self._settled()
            replies = [await self._reply() for _ in commands]
        else:
            await self._settled()
            replies = []
            for line in commands:
                replies.append(await self._command(line))
                if replies[-1][0] >= 400:
                    break
        if not _accepted(replies):
            await self._refused(replies)
        self.writer.write(_dot_stuffed(message.data) + b".\r\n")
        self._answer = asyncio.ensure_future(self._expect(250))
        return self._answer

    async def _settled(self) -> None:
        """Wait until the answer to the last message has been read: its sender hears what
        it says; here only the order of replies matters."""
        if self._answer is not None:
            await asyncio.wait([self._answer])
            self._answer = None

    async def quit(self) -> None:
        """QUIT, then close; a session already broken is just closed."""
        try:
            if not self.closed:
                async with asyncio.timeout(5):
                    await self._settled()
                    await self._command("QUIT")
        except (ConnectionError, TimeoutError, Refused):
            pass
        finally:
            self.close()

    def close(self) -> None:
        self.writer.close()

    async def _refused(self, replies: list[tuple[int, str]]) -> None:
        """Raise the first refusal, after ending whatever the server took: an accepted
        DATA (a pipelined one after a refused RCPT) gets an empty end, then RSET."""
        if replies[-1][0] == 354:
            self.writer.write(b".\r\n")
            await self._reply()
        await self._command("RSET")
        code, text = next((code, text) for code, text in replies if code not in (250, 251, 354))
        raise Refused(code, text)

    async def _hello(self) -> None:
        code, text = await self._command(f"EHLO {_local_name()}")
        if code == 250:
            self.extensions = _extensions(text)
            return
        self.extensions = {}
        code, text = await self._command(f"HELO {_local_name()}")
        if code != 250:
            raise Refused(code, text)

    async def _start_tls(self, hostname: str) -> None:
        await self._expect_reply_to("STARTTLS", 220)
        await self.writer.start_tls(ssl.create_default_context(), server_hostname=hostname)
        await self._hello()

    async def _log_in(self, username: str, password: str) -> None:
        """AUTH PLAIN, else LOGIN, as the server offers (both only on a secured connection
        unless the operator chose "none")."""
        methods = self.extensions.get("AUTH", "").upper().split()
        if "PLAIN" in methods or "LOGIN" not in methods:
            secret = _b64(f"\0{username}\0{password}")
            await self._expect_reply_to(f"AUTH PLAIN {secret}", 235)
            return
        await self._expect_reply_to("AUTH LOGIN", 334)
        await self._expect_reply_to(_b64(username), 334)
        await self._expect_reply_to(_b64(password), 235)

    async def _expect_reply_to(self, line: str, expected: int) -> None:
        code, text = await self._command(line)
        if code != expected:
            raise Refused(code, text)

    async def _expect(self, expected: int) -> None:
        code, text = await self._reply()
        if code != expected:
            raise Refused(code, text)

    async def _command(self, line: str) -> tuple[int, str]:
        self.writer.write(f"{line}\r\n".encode())
        return await self._reply()

    async def _reply(self) -> tuple[int, str]:
        """(code, text) of one reply; the lines of a multi-line reply joined by newlines."""
        lines = []
        while True:
            line = await self.reader.readline()
            if not line.endswith(b"\n"):
                raise ConnectionResetError("the server closed the connection")
            lines.append(line[4:].strip().decode("utf-8", "replace"))
            if line[3:4] != b"-":
                break
        if not line[:3].isdigit():
            raise ConnectionResetError(f"not an SMTP reply: {line[:80]!r}")
        return int(line[:3]), "\n".join(lines)


def _accepted(replies: list[tuple[int, str]]) -> bool:
    """Whether MAIL, RCPT and DATA were all taken (RCPT: 251 is "will forward")."""
    codes = [code for code, _text in replies]
    return len(codes) == 3 and codes[0] == 250 and codes[1] in (250, 251) and codes[2] == 354


def _extensions(ehlo: str) -> dict[str, str]:
    """The extensions an EHLO reply offers ({"SIZE": "33554432", "PIPELINING": ""}); its
    first line is the server's name."""
    offered = {}
    for line in ehlo.split("\n")[1:]:
        keyword, _, value = line.partition(" ")
        offered[keyword.upper()] = value
    return offered


def _dot_stuffed(data: bytes) -> bytes:
    """The message with a dot doubled at the start of each line (RFC 5321 4.5.2) and
    ending with CRLF, ready to be followed by the lone dot."""
    stuffed = data.replace(b"\r\n.", b"\r\n..")
    if stuffed.startswith(b"."):
        stuffed = b"." + stuffed
    return stuffed if stuffed.endswith(b"\r\n") else stuffed + b"\r\n"


def _b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


@cache  # may ask the resolver: once per process
def _local_name() -> str:
    return socket.getfqdn() or "localhost"
