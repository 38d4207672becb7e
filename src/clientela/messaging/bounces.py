"""Reports of what became of sent messages: signed JSON from a relay, and delivery status
notifications (RFC 3464) or feedback reports (RFC 5965, complaints) dropped as e-mails into
the bounce folder `DATA_DIR/bounces/`."""

from __future__ import annotations

import os
from dataclasses import dataclass
from email import message_from_bytes, policy
from email.message import Message
from pathlib import Path
from typing import Any

from sqlalchemy import Engine

from clientela.config import Settings
from clientela.core.clock import utcnow
from clientela.core.errors import ClientelaError, InvalidInput
from clientela.db import session_scope
from clientela.messaging import service


@dataclass(frozen=True)
class MailReport:
    message_id: str
    kind: str  # hard_bounce, soft_bounce or complaint
    detail: str | None = None


def mail_report(value: Any, where: str) -> MailReport:
    """A report posted as JSON: {"message_id", "type", "detail"?}."""
    if not isinstance(value, dict):
        raise InvalidInput(f"{where}: must be an object", code="invalid_report")
    message_id, kind, detail = value.get("message_id"), value.get("type"), value.get("detail")
    if not isinstance(message_id, str) or not 3 <= len(message_id) <= 255:
        raise InvalidInput(f"{where}.message_id: must be the Message-ID of a sent message",
                           code="invalid_report")
    if kind not in service.BOUNCE_KINDS:
        raise InvalidInput(f"{where}.type: must be one of {', '.join(service.BOUNCE_KINDS)}",
                           code="invalid_report")
    if detail is not None and not isinstance(detail, str):
        raise InvalidInput(f"{where}.detail: must be text", code="invalid_report")
    return MailReport(message_id, kind, detail[:500] if detail else None)


def read_report_mail(raw: bytes) -> list[MailReport]:
    """The reports in a DSN (RFC 3464: failed with a 5.x.x status is a hard bounce, a delay
    or a 4.x.x status a soft one) or an abuse feedback report (RFC 5965: a complaint)."""
    message = message_from_bytes(raw, policy=policy.default)
    if message.get_content_type() != "multipart/report":
        return []
    original = _original_message_id(message)
    if original is None:
        return []
    report_type = message.get_param("report-type", header="content-type")
    if report_type == "feedback-report":
        return [MailReport(original, "complaint", "feedback report")]
    if report_type != "delivery-status":
        return []
    return [report for block in _recipient_blocks(message)
            if (report := _bounce(original, block)) is not None]


def _parts(message: Message) -> list[Message]:
    return [part for part in message.walk() if part is not message]


def _original_message_id(message: Message) -> str | None:
    for part in _parts(message):
        if part.get_content_type() == "message/rfc822":
            inner = part.get_payload(0)
            if isinstance(inner, Message) and inner.get("Message-ID"):
                return str(inner["Message-ID"]).strip()
        if part.get_content_type() == "text/rfc822-headers":
            payload = part.get_payload(decode=True)
            headers = message_from_bytes(payload if isinstance(payload, bytes) else b"",
                                         policy=policy.default)
            if headers.get("Message-ID"):
                return str(headers["Message-ID"]).strip()
    return None


def _recipient_blocks(message: Message) -> list[Message]:
    for part in _parts(message):
        if part.get_content_type() == "message/delivery-status":
            blocks = part.get_payload()
            if isinstance(blocks, list):
                return [block for block in blocks[1:] if isinstance(block, Message)]
    return []


def _bounce(original: str, block: Message) -> MailReport | None:
    action = str(block.get("Action", "")).strip().lower()
    status = str(block.get("Status", "")).strip()
    detail = " ".join(str(block.get("Diagnostic-Code", status)).split())[:500] or None
    if action == "failed" and status.startswith("5"):
        return MailReport(original, "hard_bounce", detail)
    if action in ("failed", "delayed"):
        return MailReport(original, "soft_bounce", detail)
    return None


def bounce_folder(settings: Settings) -> Path:
    return settings.data_dir / "bounces"


def read_bounce_folder(*, engine: Engine, settings: Settings) -> int:
    """Record the reports of every mail in the bounce folder; each file then moves to
    `done/` (or `unread/` when it holds no report about a message sent from here)."""
    folder = bounce_folder(settings)
    if not folder.is_dir():
        return 0
    recorded = 0
    for path in sorted(folder.glob("*.eml")):
        reports = read_report_mail(path.read_bytes())
        with session_scope(engine) as session:
            known = 0
            for report in reports:
                try:
                    with session.begin_nested():
                        service.record_bounce(session=session, message_id=report.message_id,
                                              kind=report.kind, at=utcnow(),
                                              detail=report.detail)
                    known += 1
                except ClientelaError:  # about a message not sent from here
                    continue
        recorded += known
        _move(path, folder / ("done" if known else "unread"))
    return recorded


def _move(path: Path, folder: Path) -> None:
    folder.mkdir(exist_ok=True)
    os.replace(path, folder / path.name)

