"""Dashboard pages for e-mail templates: the list, and the editor (name, subject, HTML,
optional text) with a live preview; a template's errors are shown by the field they name."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from sqlalchemy.orm import Session

from clientela.api.deps import ReadSessionDep, RowId, SessionDep
from clientela.core.clock import utcnow
from clientela.core.errors import ClientelaError, NotFound
from clientela.messaging import queries
from clientela.messaging import service as messaging
from clientela.messaging.models import Template
from clientela.web.mail import checked_text, field_of
from clientela.web.pages import UserDep, not_found, page

router = APIRouter(include_in_schema=False)
Text = Annotated[str, Form()]
STARTER = ("<p>Hello {{ customer.first_name | default('there') }},</p>\n"
           "<p>Write your message here.</p>\n"
           "{% if recommended %}<ul>{% for p in recommended %}"
           "<li><a href=\"{{ p.url }}\">{{ p.name }}</a> {{ p.price }}</li>"
           "{% endfor %}</ul>{% endif %}\n")


@router.get("/templates", response_class=HTMLResponse)
def templates_page(request: Request, session: ReadSessionDep, user: UserDep) -> HTMLResponse:
    return page(request, "mail_templates.html", user=user,
                templates=queries.list_templates(session=session))


def _editor(request: Request, user: str, template: Template | None, *, status: int = 200,
            error: ClientelaError | None = None, **values: Any) -> HTMLResponse:
    if template is not None and not values:
        values = {"name": template.name, "subject": template.subject, "html": template.html,
                  "text": template.text or ""}
    return page(request, "mail_template.html", status=status, user=user, message_template=template,
                error=error.message if error else None,
                error_field=field_of(error) if error else None, **values)


@router.get("/templates/new", response_class=HTMLResponse)
def new_template_page(request: Request, user: UserDep) -> HTMLResponse:
    return _editor(request, user, None, name="", subject="", html=STARTER, text="")


def _fields(name: str, subject: str, html: str, text: str) -> dict[str, Any]:
    """The form's values as the domain takes them (a blank text part is derived)."""
    return {"name": checked_text("name", name, limit=200).strip(),
            "subject": checked_text("subject", subject),
            "html": checked_text("html", html, limit=500_000),
            "text": checked_text("text", text, required=False, limit=500_000) or None}


@router.post("/templates", response_class=HTMLResponse)
def create_template(request: Request, session: SessionDep, user: UserDep, name: Text = "",
                    subject: Text = "", html: Text = "", text: Text = "") -> Response:
    try:
        template = messaging.create_template(session=session, now=utcnow(),
                                             **_fields(name, subject, html, text))
    except ClientelaError as error:
        session.rollback()
        return _editor(request, user, None, status=400, error=error, name=name,
                       subject=subject, html=html, text=text)
    session.commit()
    return RedirectResponse(f"/templates/{template.id}", status_code=303)


def _found(session: Session, template_id: int) -> Template | None:
    try:
        return messaging.get_template(session=session, template_id=template_id)
    except NotFound:
        return None


def _missing(request: Request, user: str, template_id: int) -> HTMLResponse:
    return not_found(request, user, f"template {template_id} not found")


@router.get("/templates/{template_id}", response_class=HTMLResponse)
def template_page(template_id: RowId, request: Request, session: ReadSessionDep,
                  user: UserDep) -> HTMLResponse:
    template = _found(session, template_id)
    if template is None:
        return _missing(request, user, template_id)
    return _editor(request, user, template)


@router.post("/templates/{template_id}", response_class=HTMLResponse)
def update_template(template_id: RowId, request: Request, session: SessionDep, user: UserDep,
                    name: Text = "", subject: Text = "", html: Text = "",
                    text: Text = "") -> Response:
    if _found(session, template_id) is None:
        return _missing(request, user, template_id)
    try:
        messaging.update_template(session=session, template_id=template_id, now=utcnow(),
                                  changes=_fields(name, subject, html, text))
    except ClientelaError as error:
        session.rollback()
        return _editor(request, user, _found(session, template_id), status=400, error=error,
                       name=name, subject=subject, html=html, text=text)
    session.commit()
    return RedirectResponse(f"/templates/{template_id}", status_code=303)


@router.post("/templates/{template_id}/delete", response_class=HTMLResponse)
def delete_template(template_id: RowId, request: Request, session: SessionDep,
                    user: UserDep) -> Response:
    template = _found(session, template_id)
    if template is None:
        return _missing(request, user, template_id)
    try:
        messaging.delete_template(session=session, template_id=template_id)
    except ClientelaError as error:
        session.rollback()
        return _editor(request, user, _found(session, template_id), status=error.status,
                       error=error)
    session.commit()
    return RedirectResponse("/templates", status_code=303)
