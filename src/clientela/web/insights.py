"""Dashboard pages about the whole shop: the overview (aggregate views), RFM, segments
(list, builder with a live count, a segment with its members and size over time)."""

from __future__ import annotations

import csv
import io
import json
from datetime import date
from typing import Annotated, Any

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response

from clientela.analytics import queries as analytics_queries
from clientela.analytics import reports, rfm
from clientela.api.deps import ReadSessionDep, SessionDep, SettingsDep
from clientela.core.clock import utcnow
from clientela.core.errors import ClientelaError, NotFound
from clientela.segments import queries as segment_queries
from clientela.segments import service as segments
from clientela.segments.rules import CONSENT_STATES, FIELDS, OPS, RFM_GROUPS
from clientela.web.pages import UserDep, not_found, page

router = APIRouter(include_in_schema=False)
MEMBERS_SHOWN = 50


def _day(text: str) -> date | None:
    try:
        return date.fromisoformat(text) if text else None
    except ValueError:
        return None


@router.get("/overview", response_class=HTMLResponse)
def overview_page(request: Request, session: ReadSessionDep, settings: SettingsDep,
                  user: UserDep, start: str = "", end: str = "") -> HTMLResponse:
    currency, first, last = settings.store_currency, _day(start), _day(end)
    months = reports.over_time(session=session, currency=currency, interval="month",
                               start=first, end=last)
    return page(
        request, "overview.html", user=user, currency=currency, start=first, end=last,
        overview=reports.overview(session=session, currency=currency, start=first, end=last),
        revenue_chart=[{"label": row.period.strftime("%Y-%m"), "value": row.revenue_total}
                       for row in months],
        new_buyers_chart=[{"label": row.period.strftime("%Y-%m"), "value": row.new_buyers}
                          for row in months],
        revenue_buckets=[{"label": _bucket(b.low, b.high, "{:,.0f}"), "value": b.customers}
                         for b in reports.distribution(session=session, currency=currency,
                                                       by="revenue")],
        order_buckets=[{"label": _bucket(b.low, b.high, "{:.0f}"), "value": b.customers}
                       for b in reports.distribution(session=session, currency=currency,
                                                     by="orders")],
        cohorts=reports.cohorts(session=session, cohorts=12, months=6, until=utcnow()),
        products=reports.top_products(session=session, exchange=settings.exchange,
                                      by="product", limit=10, start=first, end=last),
        categories=reports.top_products(session=session, exchange=settings.exchange,
                                        by="category", limit=10, start=first, end=last),
        countries=reports.countries(session=session, currency=currency, limit=10))


def _bucket(low: float, high: float | None, number: str) -> str:
    if high is None:
        return number.format(low) + "+"
    if number == "{:.0f}" and low == high:
        return number.format(low)
    return number.format(low) + "–" + number.format(high)


@router.get("/rfm", response_class=HTMLResponse)
def rfm_page(request: Request, session: ReadSessionDep, settings: SettingsDep,
             user: UserDep) -> HTMLResponse:
    summary = analytics_queries.rfm(session=session, currency=settings.store_currency)
    return page(request, "rfm.html", user=user, summary=summary, grid=rfm.GRID,
                currency=settings.store_currency)


@router.get("/segments", response_class=HTMLResponse)
def segments_page(request: Request, session: ReadSessionDep, user: UserDep) -> HTMLResponse:
    return page(request, "segments.html", user=user,
                segments=segment_queries.list_segments(session=session))


def rule_vocabulary(session: Any) -> dict[str, Any]:
    """What the rule builder (static/segments.js) offers: fields, operators, RFM groups,
    consent states and the segments a rule may name."""
    return {"fields": {name: {"kind": field.kind, "values": list(field.values)}
                       for name, field in FIELDS.items()},
            "ops": {kind: list(ops) for kind, ops in OPS.items()},
            "rfm_groups": list(RFM_GROUPS), "consent": list(CONSENT_STATES),
            "segments": [{"id": other.id, "name": other.name}
                         for other in segment_queries.list_segments(session=session)]}


def _builder(request: Request, session: Any, user: str, *, status: int = 200,
             **context: Any) -> HTMLResponse:
    """The segment page: the builder (with what it needs to know) and, for a saved
    segment, its members and size over time."""
    return page(request, "segment.html", status=status, user=user,
                vocabulary=json.dumps(rule_vocabulary(session)), **context)


@router.get("/segments/new", response_class=HTMLResponse)
def new_segment_page(request: Request, session: ReadSessionDep, user: UserDep) -> HTMLResponse:
    return _builder(request, session, user, segment=None, name="", description="",
                    rule=json.dumps({"all": []}), error=None)


@router.post("/segments/count")
async def count(request: Request, session: ReadSessionDep, settings: SettingsDep,
                _user: UserDep) -> JSONResponse:
    """The live count as the builder changes (the rule as JSON)."""
    try:
        body = await request.json()
        rule = body.get("rule") if isinstance(body, dict) else None
        total = segments.count(session=session, rule=rule, now=utcnow(),
                               currency=settings.store_currency)
    except ClientelaError as error:
        return JSONResponse({"error": error.message}, status_code=400)
    except ValueError:
        return JSONResponse({"error": "rule: not JSON"}, status_code=400)
    return JSONResponse({"count": total})


Text = Annotated[str, Form()]


def _rule(text: str) -> Any:
    try:
        return json.loads(text)
    except ValueError:
        return None


@router.post("/segments", response_class=HTMLResponse)
def create_segment(request: Request, session: SessionDep, settings: SettingsDep,
                   user: UserDep, name: Text = "", description: Text = "",
                   rule: Text = "") -> Response:
    now = utcnow()
    try:
        segment = segments.create_segment(
            session=session, name=name.strip()[:200], rule=_rule(rule) or {"all": []},
            description=description.strip() or None, now=now,
            currency=settings.store_currency)
        segments.recompute(session=session, segment_id=segment.id, now=now,
                           currency=settings.store_currency)
    except ClientelaError as error:
        session.rollback()
        return _builder(request, session, user, status=400, segment=None, name=name,
                        description=description, rule=rule, error=error.message)
    session.commit()
    return RedirectResponse(f"/segments/{segment.id}", status_code=303)


@router.get("/segments/{segment_id}", response_class=HTMLResponse)
def segment_page(segment_id: int, request: Request, session: ReadSessionDep,
                 settings: SettingsDep, user: UserDep) -> HTMLResponse:
    try:
        segment = segments.get_segment(session=session, segment_id=segment_id)
    except NotFound as error:
        return not_found(request, user, error.message)
    return _builder(request, session, user, segment=segment, name=segment.name,
                    description=segment.description or "", rule=json.dumps(segment.rule),
                    error=None,
                    members=segment_queries.members(session=session, segment_id=segment_id,
                                                    after=None, limit=MEMBERS_SHOWN,
                                                    currency=settings.store_currency),
                    sizes=[{"label": point.at.strftime("%d/%m %H:%M"), "value": point.size}
                           for point in segment_queries.sizes(session=session,
                                                              segment_id=segment_id,
                                                              limit=60)])


@router.get("/segments/{segment_id}/members.csv")
def members_csv(segment_id: int, request: Request, session: ReadSessionDep,
                settings: SettingsDep, _user: UserDep) -> Response:
    """Every member as CSV, for the signed-in user (the API has the same with a key)."""
    segments.get_segment(session=session, segment_id=segment_id)
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(segment_queries.CSV_COLUMNS)
    writer.writerows(segment_queries.member_rows(session=session, segment_id=segment_id,
                                                 currency=settings.store_currency))
    return Response(buffer.getvalue(), media_type="text/csv; charset=utf-8", headers={
        "Content-Disposition": f'attachment; filename="segment-{segment_id}.csv"'})


@router.post("/segments/{segment_id}", response_class=HTMLResponse)
def update_segment(segment_id: int, request: Request, session: SessionDep,
                   settings: SettingsDep, user: UserDep, name: Text = "",
                   description: Text = "", rule: Text = "") -> Response:
    now = utcnow()
    try:
        segments.update_segment(session=session, segment_id=segment_id, now=now,
                                currency=settings.store_currency, name=name.strip()[:200],
                                rule=_rule(rule) or {"all": []},
                                description=description.strip())
        segments.recompute(session=session, segment_id=segment_id, now=now,
                           currency=settings.store_currency)
    except ClientelaError as error:
        session.rollback()
        return _builder(request, session, user, status=400,
                        segment=segments.get_segment(session=session, segment_id=segment_id),
                        name=name, description=description, rule=rule, error=error.message)
    session.commit()
    return RedirectResponse(f"/segments/{segment_id}", status_code=303)


@router.post("/segments/{segment_id}/delete", response_class=HTMLResponse)
def delete_segment(segment_id: int, request: Request, session: SessionDep,
                   user: UserDep) -> Response:
    try:
        segments.delete_segment(session=session, segment_id=segment_id)
    except ClientelaError as error:
        session.rollback()
        return not_found(request, user, error.message, status=error.status)
    session.commit()
    return RedirectResponse("/segments", status_code=303)
