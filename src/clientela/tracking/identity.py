"""Identity resolution: which customer each incoming call belongs to, merging as it learns."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

from sqlalchemy.orm import Session

from clientela.core.errors import NotFound
from clientela.customers import merging as customer_merging
from clientela.customers import service as customers
from clientela.customers.models import IDENTITY_KINDS
from clientela.customers.normalize import normalize_email, normalize_phone
from clientela.db import driver_query, driver_query_in
from clientela.tracking.merging import merge_customers
from clientela.tracking.store import PendingEvent

Key = tuple[str, str]
# Naming every kind lets the (kind, value) index answer.
_OWNERS = ("SELECT kind, value, customer_id FROM identities WHERE kind IN ("
           + ", ".join(f"'{kind}'" for kind in IDENTITY_KINDS) + ") AND value IN ({marks})")
_USER_IDS = "SELECT value FROM identities WHERE kind = 'user_id' AND customer_id = ?"


def event_identities(event: PendingEvent, *, default_region: str) -> list[Key]:
    """The (kind, value) identities a call names, strongest first."""
    keys: list[Key] = []
    if event.user_id:
        keys.append(("user_id", event.user_id))
    if event.anonymous_id:
        keys.append(("anonymous_id", event.anonymous_id))
    if event.type == "identify":
        email = normalize_email(event.traits.get("email"))
        if email:
            keys.append(("email", email))
        phone = normalize_phone(event.traits.get("phone"), default_region=default_region)
        if phone:
            keys.append(("phone", phone))
    return keys


class IdentityResolver:
    """The identity map for one write, kept in step with the customers created and merged."""

    def __init__(self, *, session: Session, default_region: str) -> None:
        self.session = session
        self.default_region = default_region
        self.owner: dict[Key, int] = {}
        self.user_ids: dict[int, set[str]] = {}
        # Customers are created together when the write flushes: until then they have
        # negative placeholder ids, which `created` maps to the real ones afterwards.
        self.new_customers: list[tuple[int, datetime]] = []
        self.created: dict[int, int] = {}
        self.redirect: dict[int, int] = {}
        self.pending: list[tuple[int, str, str]] = []
        self.conflicts: set[tuple[int, int, str, str]] = set()
        self.looked_up: dict[Key, int] = {}

    def prefetch(self, events: Iterable[PendingEvent]) -> None:
        """Load, in a few queries, the owners of every identity these calls name."""
        values: set[str] = set()
        for event in events:
            values.update(value for _kind, value in
                          event_identities(event, default_region=self.default_region))
            if event.previous_id:
                values.add(event.previous_id)
        self.owner.update(self._owners(values))
        self.looked_up = dict(self.owner)

    def _user_ids_of(self, customer_id: int) -> set[str]:
        """The user ids of a customer, looked up the first time they matter: only a call
        that links or merges customers asks, so most writes never do."""
        found = self.user_ids.get(customer_id)
        if found is None:
            found = self.user_ids[customer_id] = {
                value for (value,) in driver_query(self.session, _USER_IDS, [customer_id])}
        return found

    def verify(self) -> None:
        """Raise CustomerMoved if an identity this write looked up has changed hands since
        (a merge or split committed by another writer). Call after locking the owners: on
        PostgreSQL the look-up ran without locks; SQLite's write lock already covers it."""
        if self.session.get_bind().dialect.name != "postgresql" or not self.looked_up:
            return
        now = self._owners(value for _kind, value in self.looked_up)
        for key, cid in self.looked_up.items():
            if now.get(key) != self.final(cid):
                raise customer_merging.CustomerMoved(f"{key[0]} changed hands meanwhile")

    def _owners(self, values: Iterable[str]) -> dict[Key, int]:
        """The customer each stored identity with one of these values belongs to."""
        return {(kind, value): cid for kind, value, cid in
                driver_query_in(self.session, _OWNERS, values)}

    def real(self, customer_id: int) -> int:
        """The id of a customer created in this write, or `customer_id` itself."""
        return self.created.get(customer_id, customer_id)

    def final(self, customer_id: int) -> int:
        """The live customer `customer_id` became after the merges of this write."""
        customer_id = self.created.get(customer_id, customer_id)
        redirect = self.redirect  # empty in most writes: called several times per call
        while customer_id in redirect:
            customer_id = redirect[customer_id]
        return customer_id

    def _find(self, key: Key) -> int | None:
        cid = self.owner.get(key)
        return None if cid is None else self.final(cid)

    def _attach(self, customer_id: int, key: Key) -> None:
        customer_id = self.final(customer_id)
        if key in self.owner:
            return
        self.owner[key] = customer_id
        self.pending.append((customer_id, key[0], key[1]))
        if key[0] == "user_id":
            self._user_ids_of(customer_id).add(key[1])

    def _create(self, event: PendingEvent) -> int:
        placeholder = -(len(self.new_customers) + len(self.created) + 1)
        self.new_customers.append((placeholder, event.timestamp))
        self.user_ids[placeholder] = set()
        return placeholder

    def flush(self) -> None:
        """Write the customers and identities learned so far."""
        if self.new_customers:
            ids = customers.create_customers(session=self.session,
                                             seen_at=[at for _, at in self.new_customers])
            for (placeholder, _at), cid in zip(self.new_customers, ids, strict=True):
                self.created[placeholder] = cid
                self.user_ids[cid] = self.user_ids.pop(placeholder)
            self.new_customers = []
        # In key order, so that concurrent writers claim identities in one order.
        rows = sorted(((self.final(cid), kind, value) for cid, kind, value in self.pending),
                      key=lambda row: (row[1], row[2]))
        self.pending = []
        customers.add_identities(session=self.session, identities=rows)

    def resolve(self, event: PendingEvent) -> int:
        """The customer this call belongs to, creating, linking or merging as it says."""
        if event.type == "alias":
            return self._resolve_alias(event)
        keys = event_identities(event, default_region=self.default_region)
        owner = self._primary(event, keys)
        for key in keys[1:] if event.user_id else keys:
            owner = self._link(owner, key, reason=f"{event.type} named {key[0]}")
        return owner

    def _primary(self, event: PendingEvent, keys: list[Key]) -> int:
        if not event.user_id:
            # A new device that names a known e-mail or phone joins that customer at once.
            for key in keys:
                if (known := self._find(key)) is not None:
                    return known
            return self._create(event)
        user_key = ("user_id", event.user_id)
        owner = self._find(user_key)
        if owner is None:
            anonymous = self._find(("anonymous_id", event.anonymous_id or ""))
            owner = anonymous if anonymous and not self._user_ids_of(anonymous) else None
            owner = owner or self._create(event)
            self._attach(owner, user_key)
        return owner

    def _link(self, owner: int, key: Key, *, reason: str) -> int:
        other = self._find(key)
        if other is None:
            self._attach(owner, key)
            return owner
        return self._join(owner, other, key, reason=reason)

    def _resolve_alias(self, event: PendingEvent) -> int:
        assert event.previous_id is not None
        previous_key: Key = ("user_id", event.previous_id)
        previous = self._find(previous_key)
        if previous is None:
            previous_key = ("anonymous_id", event.previous_id)
            previous = self._find(previous_key)
        if event.user_id is None:
            owner = previous or self._create(event)
            self._attach(owner, ("anonymous_id", event.anonymous_id or event.previous_id))
            return owner
        found = self._find(("user_id", event.user_id))
        owner = found or previous or self._create(event)
        if found is None:
            self._attach(owner, ("user_id", event.user_id))
        if previous is None:
            self._attach(owner, ("anonymous_id", event.previous_id))
            return owner
        return self._join(owner, previous, previous_key, reason="alias")

    def _join(self, owner: int, other: int, key: Key, *, reason: str) -> int:
        """One customer from two, unless both carry user ids: then record the conflict."""
        if self.final(owner) == self.final(other):
            return self.final(owner)
        self.flush()
        owner, other = self.final(owner), self.final(other)
        # Both looked up before the merge moves the dropped customer's identities.
        owner_users, other_users = self._user_ids_of(owner), self._user_ids_of(other)
        if owner_users and other_users:
            self._record_conflict(owner, other, key, f"{reason}: both customers have their "
                                  "own user id")
            return owner
        if customer_merging.kept_apart(session=self.session, first=owner, second=other):
            self._record_conflict(owner, other, key, f"{reason}: a split merge keeps them apart")
            return owner
        try:
            merge = merge_customers(session=self.session, first=owner, second=other,
                                    reason=reason, default_region=self.default_region,
                                    standing_ok=False)
        except NotFound as error:
            # Merged away by another writer after this one looked: retry from the start.
            raise customer_merging.CustomerMoved(error.message) from None
        keep, drop = merge.kept_id, merge.dropped_id
        self.redirect[drop] = keep
        self.user_ids[keep] = owner_users | other_users
        self.user_ids.pop(drop, None)
        return keep

    def _record_conflict(self, owner: int, other: int, key: Key, reason: str) -> None:
        marker = (owner, other, key[0], key[1])
        if marker not in self.conflicts:
            self.conflicts.add(marker)
            customer_merging.record_conflict(session=self.session, customer_id=owner,
                                             other_id=other, kind=key[0], value=key[1],
                                             reason=reason)
