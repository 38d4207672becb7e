"""Saving segments and computing who is in them, recording who entered and who left."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

import numpy as np
from numpy.typing import NDArray
from sqlalchemy import Select, delete, func, select
from sqlalchemy.orm import Session

from clientela.core.errors import Conflict, InvalidInput, NotFound
from clientela.core.types import db_time
from clientela.customers.models import Customer
from clientela.db import driver_executemany, flush_named
from clientela.segments.compiler import Compiler
from clientela.segments.models import Segment, SegmentChange, SegmentMember, SegmentSize
from clientela.segments.rules import Rule, parse_rule
from clientela.tracking.models import Event

C = Customer.__table__.c


def compiler(*, session: Session, now: datetime, currency: str) -> Compiler:
    """A compiler for this session's database, reading saved segments' rules from it."""
    def segment_rule(segment_id: int) -> Rule:
        rule = session.scalar(select(Segment.rule).where(Segment.id == segment_id))
        if rule is None:
            raise InvalidInput(f"rule: there is no segment {segment_id}", code="invalid_rule")
        return parse_rule(rule)

    return Compiler(dialect=session.get_bind().dialect.name, now=now, currency=currency,
                    segment_rule=segment_rule)


def members_of(*, session: Session, rule: Any, now: datetime, currency: str) -> Select[Any]:
    """SELECT of the ids of the live customers the rule (JSON) matches."""
    compiled = compiler(session=session, now=now, currency=currency)
    return select(C.id).where(compiled.live(), compiled.condition(parse_rule(rule)))


def create_segment(*, session: Session, name: str, rule: Any, description: str | None,
                   now: datetime, currency: str) -> Segment:
    """A new segment (its rule checked by compiling it); compute it with `recompute`."""
    members_of(session=session, rule=rule, now=now, currency=currency)
    segment = Segment(name=name, description=description, rule=rule, created_at=now,
                      updated_at=now)
    session.add(segment)
    flush_named(session, "segment", name)
    return segment


def update_segment(*, session: Session, segment_id: int, now: datetime, currency: str,
                   name: str | None = None, rule: Any = None,
                   description: str | None = None) -> Segment:
    """Change a segment's name, description or rule (a rule may not include the segment
    itself, directly or through others)."""
    segment = get_segment(session=session, segment_id=segment_id)
    if rule is not None:
        parsed = parse_rule(rule)
        check = compiler(session=session, now=now, currency=currency)
        check.condition(parsed, (segment_id,))
        segment.rule = rule
    if name is not None:
        segment.name = name
    if description is not None:
        segment.description = description
    segment.updated_at = now
    flush_named(session, "segment", segment.name)
    return segment



def get_segment(*, session: Session, segment_id: int) -> Segment:
    segment = session.get(Segment, segment_id)
    if segment is None:
        raise NotFound(f"segment {segment_id} not found", code="segment_not_found")
    return segment


def delete_segment(*, session: Session, segment_id: int) -> None:
    """Delete a segment that no other segment's rule names."""
    segment = get_segment(session=session, segment_id=segment_id)
    for other_id, other_name, rule in session.execute(
            select(Segment.id, Segment.name, Segment.rule).where(Segment.id != segment_id)):
        if segment_id in _named_segments(rule):
            raise Conflict(f"segment {segment_id} is part of segment {other_id} "
                           f"({other_name!r}); change that one first", code="segment_in_use")
    session.execute(delete(SegmentMember).where(SegmentMember.segment_id == segment_id))
    session.execute(delete(SegmentChange).where(SegmentChange.segment_id == segment_id))
    session.execute(delete(SegmentSize).where(SegmentSize.segment_id == segment_id))
    session.delete(segment)
    session.flush()


def _named_segments(rule: Any) -> set[int]:
    if isinstance(rule, dict):
        found = {rule["segment"]} if isinstance(rule.get("segment"), int) else set()
        for value in rule.values():
            found |= _named_segments(value)
        return found
    if isinstance(rule, list):
        return set().union(*(_named_segments(item) for item in rule)) if rule else set()
    return set()


@dataclass(frozen=True, slots=True)
class Recomputed:
    segment_id: int
    size: int
    entered: int
    left: int


@dataclass(frozen=True)
class Evaluation:
    """Who a segment's rule matches at `now`: everyone, or among some customers only."""

    segment_id: int
    now: datetime
    members: NDArray[np.int64]
    seen_event_id: int  # the events the evaluation could see
    among: NDArray[np.int64] | None = None


def evaluate(*, session: Session, segment_id: int, now: datetime, currency: str,
             among: NDArray[np.int64] | None = None) -> Evaluation:
    """Run the segment's rule (reads only: on SQLite, run it in a reading session so that
    writers are not held up while it runs)."""
    segment = get_segment(session=session, segment_id=segment_id)
    seen = _last_event_id(session)
    query = members_of(session=session, rule=segment.rule, now=now, currency=currency)
    members = _ids(session, query, C.id, among)
    return Evaluation(segment_id, now, np.unique(members), seen, among)


def _ids(session: Session, query: Select[Any], column: Any,
         among: NDArray[np.int64] | None) -> NDArray[np.int64]:
    """The ids `query` selects, among `among` only if given (asked a chunk at a time)."""
    if among is None:
        return np.fromiter(session.scalars(query), dtype=np.int64)
    return np.concatenate([np.zeros(0, np.int64), *(
        np.fromiter(session.scalars(query.where(column.in_(
            [int(cid) for cid in among[start:start + _AMONG]]))), dtype=np.int64)
        for start in range(0, len(among), _AMONG))])


def apply(*, session: Session, evaluation: Evaluation) -> Recomputed:
    """Store an evaluation: who entered and who left (at its `now`), the size, and for a
    whole evaluation the size's history."""
    segment = get_segment(session=session, segment_id=evaluation.segment_id)
    stored = _ids(session, select(SegmentMember.customer_id).where(
        SegmentMember.segment_id == segment.id), SegmentMember.customer_id, evaluation.among)
    entered = np.setdiff1d(evaluation.members, stored)
    left = np.setdiff1d(stored, evaluation.members)
    at = db_time(evaluation.now)
    driver_executemany(session, _LEAVE, [(segment.id, int(cid)) for cid in left])
    driver_executemany(session, _ENTER, [(segment.id, int(cid), at) for cid in entered])
    driver_executemany(session, _CHANGE, [(segment.id, int(cid), "entered", at)
                                          for cid in entered]
                       + [(segment.id, int(cid), "left", at) for cid in left])
    segment.seen_event_id = max(segment.seen_event_id or 0, evaluation.seen_event_id)
    if evaluation.among is None:
        segment.size, segment.computed_at = len(evaluation.members), evaluation.now
        session.execute(delete(SegmentSize).where(SegmentSize.segment_id == segment.id,
                                                  SegmentSize.at == evaluation.now))
        session.add(SegmentSize(segment_id=segment.id, at=evaluation.now,
                                size=len(evaluation.members)))
    else:
        segment.size = (segment.size or 0) + len(entered) - len(left)
    session.flush()
    return Recomputed(segment.id, segment.size or 0, len(entered), len(left))


def recompute(*, session: Session, segment_id: int, now: datetime, currency: str
              ) -> Recomputed:
    """Evaluate the segment whole and store the result, in this one session."""
    return apply(session=session, evaluation=evaluate(
        session=session, segment_id=segment_id, now=now, currency=currency))


def touched_since(*, session: Session) -> dict[int, NDArray[np.int64]]:
    """For each computed segment behind the newest event: the customers with events it has
    not seen (the ones whose membership may have changed)."""
    seen = _last_event_id(session)
    behind = session.execute(select(Segment.id, Segment.seen_event_id).where(
        Segment.seen_event_id.is_not(None), Segment.seen_event_id < seen)
        .order_by(Segment.id)).all()
    found: dict[int, NDArray[np.int64]] = {}
    by_since: dict[int, NDArray[np.int64]] = {}
    for segment_id, last_seen in behind:
        since = int(last_seen or 0)
        if since not in by_since:
            by_since[since] = np.unique(np.fromiter(session.scalars(
                select(Event.customer_id).where(Event.id > since, Event.id <= seen)),
                dtype=np.int64))
        found[segment_id] = by_since[since]
    return found


def recompute_all(*, session: Session, now: datetime, currency: str) -> list[Recomputed]:
    """Recompute every segment, in id order, in this one session."""
    ids = list(session.scalars(select(Segment.id).order_by(Segment.id)))
    return [recompute(session=session, segment_id=segment_id, now=now, currency=currency)
            for segment_id in ids]


def _last_event_id(session: Session) -> int:
    return int(session.scalar(select(func.max(Event.id))) or 0)


def count(*, session: Session, rule: Any, now: datetime, currency: str) -> int:
    """How many live customers the rule matches now."""
    query = members_of(session=session, rule=rule, now=now, currency=currency)
    return int(session.scalar(select(func.count()).select_from(query.subquery())) or 0)


_LEAVE = "DELETE FROM segment_members WHERE segment_id = ? AND customer_id = ?"
_ENTER = "INSERT INTO segment_members (segment_id, customer_id, entered_at) VALUES (?, ?, ?)"
_CHANGE = ("INSERT INTO segment_changes (segment_id, customer_id, change, at) "
           "VALUES (?, ?, ?, ?)")
_AMONG = 5000
