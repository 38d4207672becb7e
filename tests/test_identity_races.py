"""Merges and splits committed by another writer between this write's identity look-up and
its commit (PostgreSQL, where the look-up takes no locks; SQLite's write lock rules these
interleavings out). The write is retried and lands where the identities now point."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from sqlalchemy import select

from clientela.core.clock import utcnow
from clientela.core.money import Exchange
from clientela.customers.models import Customer, CustomerMerge, Identity
from clientela.db import session_scope
from clientela.tracking import identity
from clientela.tracking.merging import unmerge
from clientela.tracking.schemas import parse_event
from clientela.tracking.service import record_events
from clientela.tracking.store import pending
from tests.helpers import send

pytestmark = pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)


def _after_first_lookup(monkeypatch: pytest.MonkeyPatch, action: Callable[[], None]) -> None:
    """Run `action` (another writer, committing) right after the next identity look-up."""
    original = identity.IdentityResolver.prefetch

    def prefetch_then_act(self: identity.IdentityResolver, events: object) -> None:
        original(self, events)  # type: ignore[arg-type]
        monkeypatch.setattr(identity.IdentityResolver, "prefetch", original)
        action()

    monkeypatch.setattr(identity.IdentityResolver, "prefetch", prefetch_then_act)


def _record(engine, source_id: int, **call: object) -> None:
    with session_scope(engine) as session:
        record_events(session=session, source_id=source_id, default_region="BR",
                      exchange=Exchange(),
                      events=[pending(parse_event(call, kind=None, received_at=utcnow()))])


def _owners(engine) -> dict[str, int]:
    with session_scope(engine, writes=False) as session:
        return dict(session.execute(select(Identity.value, Identity.customer_id)).all())


def test_a_merge_committed_meanwhile_is_not_undone(database_url, client, write_key, engine,
                                                   monkeypatch):
    send(client, write_key, "identify", userId="ua", traits={"phone": "+5511987654321"})
    send(client, write_key, "identify", anonymousId="xb")
    _after_first_lookup(monkeypatch, lambda: _record(
        engine, 1, type="alias", previousId="xb", userId="ua", messageId="other-writer"))
    response = send(client, write_key, "identify", anonymousId="xb",
                    traits={"email": "new@example.com", "phone": "+5511987654321"})
    assert response.status_code == 200, response.text
    assert _owners(engine) == {"ua": 1, "+5511987654321": 1, "xb": 1, "new@example.com": 1}
    with session_scope(engine, writes=False) as session:
        live = session.scalars(select(Customer.id).where(Customer.merged_into_id.is_(None)))
        assert list(live) == [1]
        assert len(list(session.scalars(select(CustomerMerge)))) == 1


def test_a_split_committed_meanwhile_sends_the_event_to_its_new_owner(
        database_url, client, write_key, api, engine, monkeypatch):
    send(client, write_key, "identify", userId="uc")
    send(client, write_key, "identify", anonymousId="xd")
    send(client, write_key, "alias", previousId="xd", userId="uc")
    with session_scope(engine, writes=False) as session:
        merge_id = session.scalars(select(CustomerMerge.id)).one()

    def split() -> None:
        with session_scope(engine) as session:
            unmerge(session=session, merge_id=merge_id, default_region="BR")

    _after_first_lookup(monkeypatch, split)
    response = send(client, write_key, "track", anonymousId="xd", event="After Split")
    assert response.status_code == 200, response.text
    assert _owners(engine)["xd"] == 2
    events = api.get("/api/v1/customers/2/events").json()["items"]
    assert events[0]["event"] == "After Split"
