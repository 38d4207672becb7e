"""/api/v1/segments: saved segments, previews of unsaved rules, members, sizes."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from typing import Annotated

from fastapi import APIRouter, Query, Request, Response
from fastapi.responses import StreamingResponse

from clientela.api.deps import Limit, ReadSessionDep, RowId, SecretKeyDep, SessionDep, SettingsDep
from clientela.core.clock import utcnow
from clientela.core.errors import InvalidInput
from clientela.db import session_scope
from clientela.segments import queries, service
from clientela.segments.models import Segment
from clientela.segments.schemas import (
    MemberPage,
    PreviewIn,
    PreviewOut,
    RecomputedOut,
    SegmentIn,
    SegmentOut,
    SegmentPatch,
    SizeOut,
)

router = APIRouter(prefix="/api/v1", tags=["segments"])
SegmentId = RowId


def _out(segment: Segment) -> SegmentOut:
    return SegmentOut.model_validate(segment, from_attributes=True)


@router.get("/segments", response_model=list[SegmentOut])
def list_segments(session: ReadSessionDep, _key: SecretKeyDep) -> list[SegmentOut]:
    """Every segment, by name, with its size as last computed."""
    return [_out(segment) for segment in queries.list_segments(session=session)]


@router.post("/segments", response_model=SegmentOut, status_code=201)
def create_segment(body: SegmentIn, session: SessionDep, settings: SettingsDep,
                   _key: SecretKeyDep) -> SegmentOut:
    """Save a segment and compute its members."""
    now = utcnow()
    segment = service.create_segment(session=session, name=body.name, rule=body.rule,
                                     description=body.description, now=now,
                                     currency=settings.store_currency)
    service.recompute(session=session, segment_id=segment.id, now=now,
                      currency=settings.store_currency)
    session.commit()
    return _out(segment)


@router.post("/segments/preview", response_model=PreviewOut)
def preview(body: PreviewIn, session: ReadSessionDep, settings: SettingsDep,
            _key: SecretKeyDep) -> PreviewOut:
    """How many customers an unsaved rule matches now, and the first of them."""
    return queries.preview(session=session, rule=body.rule, now=utcnow(),
                           currency=settings.store_currency, limit=body.limit)


@router.get("/segments/{segment_id}", response_model=SegmentOut)
def get_segment(segment_id: SegmentId, session: ReadSessionDep,
                _key: SecretKeyDep) -> SegmentOut:
    return _out(service.get_segment(session=session, segment_id=segment_id))


@router.patch("/segments/{segment_id}", response_model=SegmentOut)
def update_segment(segment_id: SegmentId, body: SegmentPatch, session: SessionDep,
                   settings: SettingsDep, _key: SecretKeyDep) -> SegmentOut:
    """Rename, describe or change the rule; a new rule is computed at once."""
    now = utcnow()
    segment = service.update_segment(session=session, segment_id=segment_id, now=now,
                                     currency=settings.store_currency, name=body.name,
                                     rule=body.rule, description=body.description)
    if body.rule is not None:
        service.recompute(session=session, segment_id=segment_id, now=now,
                          currency=settings.store_currency)
    session.commit()
    return _out(segment)


@router.delete("/segments/{segment_id}", status_code=204)
def delete_segment(segment_id: SegmentId, session: SessionDep, _key: SecretKeyDep) -> Response:
    service.delete_segment(session=session, segment_id=segment_id)
    session.commit()
    return Response(status_code=204)


@router.post("/segments/{segment_id}/compute", response_model=RecomputedOut)
def compute(segment_id: SegmentId, session: SessionDep, settings: SettingsDep,
            _key: SecretKeyDep) -> RecomputedOut:
    """Recompute the members now; answers the size and who entered and left."""
    done = service.recompute(session=session, segment_id=segment_id, now=utcnow(),
                             currency=settings.store_currency)
    session.commit()
    return RecomputedOut(size=done.size, entered=done.entered, left=done.left)


@router.get("/segments/{segment_id}/members", response_model=MemberPage)
def members(segment_id: SegmentId, session: ReadSessionDep, settings: SettingsDep,
            _key: SecretKeyDep, cursor: Annotated[str | None, Query(max_length=40)] = None,
            limit: Limit = 50) -> MemberPage:
    """Members as last computed, by customer id; `next_cursor` leads to the next page."""
    after = _cursor(cursor)
    rows = queries.members(session=session, segment_id=segment_id, after=after,
                           limit=limit + 1, currency=settings.store_currency)
    more = len(rows) > limit
    rows = rows[:limit]
    return MemberPage(items=rows, next_cursor=str(rows[-1].id) if more else None)


def _cursor(cursor: str | None) -> int | None:
    if cursor is None:
        return None
    if not cursor.isascii() or not cursor.isdigit() or len(cursor) > 19:
        raise InvalidInput("cursor: must be a next_cursor value returned by this API",
                           code="invalid_cursor")
    return int(cursor)


@router.get("/segments/{segment_id}/members.csv", response_class=StreamingResponse)
def members_csv(segment_id: SegmentId, request: Request, session: ReadSessionDep,
                settings: SettingsDep, _key: SecretKeyDep) -> StreamingResponse:
    """Every member as CSV (one header row), streamed."""
    service.get_segment(session=session, segment_id=segment_id)
    engine = request.app.state.engine

    def lines() -> Iterator[str]:
        buffer = io.StringIO()
        writer = csv.writer(buffer)
        writer.writerow(queries.CSV_COLUMNS)
        with session_scope(engine, writes=False) as reading:
            for row in queries.member_rows(session=reading, segment_id=segment_id,
                                           currency=settings.store_currency):
                writer.writerow(row)
                if buffer.tell() > 64 * 1024:
                    yield buffer.getvalue()
                    buffer.seek(0)
                    buffer.truncate()
        yield buffer.getvalue()

    return StreamingResponse(lines(), media_type="text/csv; charset=utf-8", headers={
        "Content-Disposition": f'attachment; filename="segment-{segment_id}.csv"'})


@router.get("/segments/{segment_id}/sizes", response_model=list[SizeOut])
def sizes(segment_id: SegmentId, session: ReadSessionDep, _key: SecretKeyDep
          ) -> list[SizeOut]:
    """The size at each computation, oldest first."""
    return queries.sizes(session=session, segment_id=segment_id)
