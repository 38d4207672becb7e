"""The receiving end of bench/send.py: aiosmtpd's Sink (messages discarded), offering
PIPELINING (RFC 2920) as production relays do; aiosmtpd takes pipelined commands but does
not offer the extension by itself."""

from __future__ import annotations

from typing import Any

from aiosmtpd.handlers import Sink


class PipeliningSink(Sink):
    async def handle_EHLO(self, server: Any, session: Any, envelope: Any, hostname: str,
                          responses: list[str]) -> list[str]:
        session.host_name = hostname
        responses.insert(-1, "250-PIPELINING")
        return responses
