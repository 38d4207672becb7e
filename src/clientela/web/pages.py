"""What every dashboard page shares: templates, the signed-in user, rendering."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

from fastapi import Depends, Request
from fastapi.responses import HTMLResponse
from fastapi.templating import Jinja2Templates

from clientela.api.deps import ReadSessionDep
from clientela.team import service as team

HERE = Path(__file__).parent
templates = Jinja2Templates(directory=HERE / "templates")


class SignInRequired(Exception):
    """Raised by pages when nobody is signed in; answered with a redirect to /login."""


def signed_in_user(request: Request, session: ReadSessionDep) -> str:
    """The signed-in user's e-mail; a cookie naming a user who no longer exists is void."""
    email = request.session.get("user")
    if not email or team.find_user(session=session, email=str(email)) is None:
        request.session.clear()
        raise SignInRequired
    return str(email)


UserDep = Annotated[str, Depends(signed_in_user)]


def page(request: Request, template: str, status: int = 200, **context: Any) -> HTMLResponse:
    return templates.TemplateResponse(request, template, context, status_code=status)


def not_found(request: Request, user: str, message: str, status: int = 404) -> HTMLResponse:
    """The dashboard's page for something that is not there, saying what."""
    return page(request, "not_found.html", status=status, user=user, message=message)
