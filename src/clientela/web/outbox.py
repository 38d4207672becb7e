"""The outbox in the dashboard: with no SMTP relay configured, messages are `.eml` files in
DATA_DIR/outbox; they are listed newest first, and one is shown with its headers and its
HTML part (in a sandboxed frame: it is a message, not part of the dashboard)."""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from email import message_from_bytes, policy
from email.message import EmailMessage
from email.parser import BytesHeaderParser
from email.utils import parsedate_to_datetime
from pathlib import Path

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse

from clientela.api.deps import SettingsDep
from clientela.messaging.transport import outbox_folder
from clientela.web.pages import UserDep, not_found, page

router = APIRouter(include_in_schema=False)
SHOWN = 200
_NAME = re.compile(r"[A-Za-z0-9_@-][A-Za-z0-9._@-]{0,250}\.eml")  # as the outbox names files


@dataclass(frozen=True)
class Listed:
    name: str
    date: datetime | None
    to: str
    subject: str


def _newest(folder: Path) -> list[os.DirEntry[str]]:
    try:
        entries = [entry for entry in os.scandir(folder)
                   if _NAME.fullmatch(entry.name) and entry.is_file(follow_symlinks=False)]
        return sorted(entries, key=lambda entry: (entry.stat().st_mtime_ns, entry.name),
                      reverse=True)[:SHOWN]
    except FileNotFoundError:  # no outbox yet, or a file sent on meanwhile
        return []


def _date(value: str | None) -> datetime | None:
    try:
        return parsedate_to_datetime(value).astimezone(UTC) if value else None
    except (TypeError, ValueError):
        return None


def _listed(entry: os.DirEntry[str]) -> Listed:
    with open(entry.path, "rb") as file:
        headers = BytesHeaderParser(policy=policy.default).parse(file)
    return Listed(name=entry.name, date=_date(headers["Date"]), to=str(headers["To"] or ""),
                  subject=str(headers["Subject"] or ""))


@router.get("/outbox", response_class=HTMLResponse)
def outbox_page(request: Request, settings: SettingsDep, user: UserDep) -> HTMLResponse:
    folder = outbox_folder(settings)
    return page(request, "outbox.html", user=user, relay=settings.smtp_host, folder=folder,
                messages=[_listed(entry) for entry in _newest(folder)])


def _file(folder: Path, name: str) -> Path | None:
    """The outbox file called `name`; None for any name that could lead outside it."""
    if not _NAME.fullmatch(name):
        return None
    path = (folder / name).resolve()
    if path.parent != folder.resolve() or not path.is_file():
        return None
    return path


def _part(message: EmailMessage, subtype: str) -> str | None:
    part = message.get_body(preferencelist=(subtype,))
    return None if part is None else str(part.get_content())


@router.get("/outbox/{name}", response_class=HTMLResponse)
def outbox_message(name: str, request: Request, settings: SettingsDep,
                   user: UserDep) -> HTMLResponse:
    path = _file(outbox_folder(settings), name)
    if path is None:
        return not_found(request, user, "No such message in the outbox.")
    message = message_from_bytes(path.read_bytes(), policy=policy.default)
    assert isinstance(message, EmailMessage)
    return page(request, "outbox_message.html", user=user, name=name,
                headers=[(key, str(value)) for key, value in message.items()],
                subject=str(message["Subject"] or ""), html=_part(message, "html"),
                text=_part(message, "plain"))
