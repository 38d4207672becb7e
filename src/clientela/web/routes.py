"""Dashboard pages: sign in, customers (list, search, profile with orders, carts and
timeline) and products (list, search, a product with its sales and buyers); the shop's
overview, RFM and segments are in `insights`; e-mail in `campaigns`, `mail_templates` and
`outbox`; scenarios in `scenarios`."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, FastAPI, Form, Request
from fastapi.responses import FileResponse, HTMLResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from starlette.middleware.sessions import SessionMiddleware

from clientela.api.deps import ReadSessionDep, SessionDep, SettingsDep
from clientela.commerce import queries as commerce_queries
from clientela.config import Settings
from clientela.core.errors import NotFound
from clientela.customers import queries as customer_queries
from clientela.customers import service as customers
from clientela.team import service as team
from clientela.tracking import queries as event_queries
from clientela.web import (
    campaigns,
    insights,
    mail,
    mail_templates,
    outbox,
    recipients,
    scenarios,
)
from clientela.web.origin import SameOriginOnly
from clientela.web.pages import HERE, SignInRequired, UserDep, not_found, page

router = APIRouter(include_in_schema=False)
PAGE_SIZE = 50
TIMELINE_SIZE = 100
ORDERS_SHOWN = 20
SESSION_COOKIE = "clientela_session"


@router.get("/", response_class=HTMLResponse)
def home(_user: UserDep) -> Response:
    return RedirectResponse("/overview", status_code=303)


@router.get("/login", response_class=HTMLResponse)
def login_form(request: Request) -> HTMLResponse:
    return page(request, "login.html", error=None)


@router.post("/login", response_class=HTMLResponse)
def login(request: Request, reading: ReadSessionDep, session: SessionDep,
          email: Annotated[str, Form()] = "", password: Annotated[str, Form()] = "") -> Response:
    user = team.authenticate(session=reading, email=email, password=password)
    if user is None:
        return page(request, "login.html", status=401, error="Wrong e-mail or password.")
    team.record_sign_in(session=session, user_id=user.id)
    session.commit()
    request.session["user"] = user.email
    request.session["role"] = user.role
    return RedirectResponse("/overview", status_code=303)


@router.post("/logout")
def logout(request: Request) -> Response:
    request.session.clear()
    return RedirectResponse("/login", status_code=303)


@router.get("/customers", response_class=HTMLResponse)
def customers_page(request: Request, session: ReadSessionDep, user: UserDep,
                   q: str = "", identified: bool = False) -> HTMLResponse:
    # NUL can be typed into a URL but no database stores it: it is left out of the search.
    filters = customer_queries.CustomerFilter(q=q.replace("\x00", "").strip() or None,
                                              identified=identified)
    rows, _ = customer_queries.list_customers(session=session, filters=filters,
                                              sort="-last_seen_at", limit=PAGE_SIZE, after=None)
    total = customer_queries.count_customers(session=session, filters=filters)
    name = "_customer_rows.html" if request.headers.get("hx-request") else "customers.html"
    return page(request, name, user=user, customers=rows, q=q, total=total,
                 identified=identified)


@router.get("/customers/{customer_id}", response_class=HTMLResponse)
def customer_page(customer_id: int, request: Request, session: ReadSessionDep,
                  settings: SettingsDep, user: UserDep) -> HTMLResponse:
    try:
        customer = customers.get_customer(session=session, customer_id=customer_id)
    except NotFound as error:
        return not_found(request, user, error.message)
    profile = customer_queries.profiles(session=session, customers=[customer])[0]
    events = event_queries.customer_events(session=session, customer_id=customer_id,
                                           limit=TIMELINE_SIZE, before=None)
    orders = commerce_queries.orders(session=session, customer_id=customer_id, status=None,
                                     limit=ORDERS_SHOWN, before=None,
                                     store_currency=settings.store_currency)
    return page(request, "customer.html", user=user, customer=profile, events=events,
                 merges=customer_queries.merges_of(session=session, customer_id=customer_id),
                 conflicts=customer_queries.conflicts_of(session=session,
                                                         customer_id=customer_id),
                 orders=orders,
                 carts=commerce_queries.carts(session=session, customer_id=customer_id))


@router.get("/products", response_class=HTMLResponse)
def products_page(request: Request, session: ReadSessionDep, user: UserDep,
                  q: str = "") -> HTMLResponse:
    # NUL can be typed into a URL but no database stores it: it is left out of the search.
    rows = commerce_queries.products(session=session, q=q.replace("\x00", "").strip() or None,
                                     limit=PAGE_SIZE, after=None)
    return page(request, "products.html", user=user, products=rows, q=q)


@router.get("/products/{product_id}", response_class=HTMLResponse)
def product_page(product_id: int, request: Request, session: ReadSessionDep,
                 user: UserDep) -> HTMLResponse:
    try:
        product = commerce_queries.product(session=session, product_id=product_id)
    except NotFound as error:
        return not_found(request, user, error.message)
    buyers = customer_queries.profiles(session=session, customers=[
        customers.get_customer(session=session, customer_id=cid) for cid in product.top_buyers])
    return page(request, "product.html", user=user, product=product, buyers=buyers)


@router.get("/js/clientela.js")
def browser_tag() -> Response:
    """The first-party tag shops paste into their pages (see static/clientela.js)."""
    return FileResponse(HERE / "static" / "clientela.js", media_type="text/javascript",
                        headers={"Cache-Control": "public, max-age=3600"})


def install(app: FastAPI, settings: Settings) -> None:
    """Mount the dashboard, its static files and its session cookie on `app`."""
    app.add_middleware(SessionMiddleware, secret_key=settings.secret_key,
                       session_cookie=SESSION_COOKIE, same_site="lax",
                       https_only=settings.env == "production", max_age=14 * 24 * 3600)
    app.add_middleware(SameOriginOnly, cookie=SESSION_COOKIE, public_url=settings.public_url)
    app.mount("/static", StaticFiles(directory=HERE / "static"), name="static")
    app.include_router(router)
    app.include_router(insights.router)
    app.include_router(recipients.router)
    app.include_router(mail.router)
    app.include_router(campaigns.router)
    app.include_router(mail_templates.router)
    app.include_router(outbox.router)
    app.include_router(scenarios.router)

    @app.exception_handler(SignInRequired)
    async def _to_login(_request: Request, _error: Exception) -> Response:
        return RedirectResponse("/login", status_code=303)
