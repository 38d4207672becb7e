"""Every change to a customer's own rows: creation, identities, traits, tags, consent, activity."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, Table, and_, delete, exists, insert, select, update
from sqlalchemy.orm import Session

from clientela.core.clock import utcnow
from clientela.core.errors import InvalidInput, NotFound
from clientela.core.types import db_json, db_time
from clientela.customers.models import (
    CONSENT_STATES,
    SUPPRESSION_REASONS,
    Customer,
    CustomerTag,
    Identity,
    Suppression,
    TraitChange,
)
from clientela.customers.normalize import normalize_email
from clientela.customers.traits import (
    PROFILE_COLUMNS,
    TraitUpdate,
    apply_traits,
    profile_columns,
)
from clientela.db import driver_executemany, driver_query_in, next_ids

MAX_TAG = 100
CUSTOMERS: Table = Customer.__table__  # type: ignore[assignment]
COUNT_COLUMNS = {kind: f"{kind}_count" for kind in
                 ("identify", "track", "page", "screen", "group", "alias")}


@dataclass(slots=True)
class Activity:
    """What a run of events adds to one customer's counts and seen times."""

    counts: dict[str, int] = field(default_factory=dict)
    first_seen_at: datetime | None = None
    last_seen_at: datetime | None = None

    def add(self, kind: str, at: datetime) -> None:
        self.counts[kind] = self.counts.get(kind, 0) + 1
        if self.first_seen_at is None or at < self.first_seen_at:
            self.first_seen_at = at
        if self.last_seen_at is None or at > self.last_seen_at:
            self.last_seen_at = at


def get_customer(*, session: Session, customer_id: int) -> Customer:
    """The live customer with this id; a merged-away id names its survivor in the error."""
    # populate_existing: bulk updates earlier in this transaction bypass the identity map.
    customer = session.get(Customer, customer_id, populate_existing=True)
    if customer is None:
        raise NotFound(f"customer {customer_id}: no such customer", code="customer_not_found")
    if customer.merged_into_id is not None:
        survivor = surviving_id(session=session, customer_id=customer_id)
        raise NotFound(f"customer {customer_id}: merged into customer {survivor}",
                       code="customer_merged")
    return customer


def ensure_exists(*, session: Session, customer_id: int) -> None:
    """NotFound unless a customer with this id exists, live or merged away."""
    if session.scalar(select(Customer.id).where(Customer.id == customer_id)) is None:
        raise NotFound(f"customer {customer_id}: no such customer", code="customer_not_found")


def surviving_id(*, session: Session, customer_id: int) -> int:
    """The live customer that `customer_id` was (perhaps transitively) merged into."""
    current: int | None = customer_id
    seen: set[int] = set()
    while current is not None and current not in seen:
        seen.add(current)
        parent = session.scalar(select(Customer.merged_into_id).where(Customer.id == current))
        if parent is None:
            return current
        current = parent
    return customer_id


def create_customer(*, session: Session, seen_at: datetime) -> int:
    """A new empty customer first seen at `seen_at`; returns its id."""
    return create_customers(session=session, seen_at=[seen_at])[0]


def create_customers(*, session: Session, seen_at: list[datetime]) -> list[int]:
    """New empty customers, one per first-seen time; their ids in order.

    Ids are taken first and the rows inserted through the driver: ingestion creates many
    customers per write, and this costs a fraction of an ORM insert with RETURNING.
    """
    if not seen_at:
        return []
    ids = next_ids(session, "customers", len(seen_at))
    now = db_time(utcnow())
    driver_executemany(session, _CREATE_CUSTOMER, [
        (cid, now, seen, seen) for cid, seen in zip(ids, map(db_time, seen_at), strict=True)])
    return ids


_CREATE_CUSTOMER = (
    "INSERT INTO customers (id, created_at, first_seen_at, last_seen_at, traits, trait_times, "
    "email_marketing, orders_count, revenue_cents, "
    + ", ".join(COUNT_COLUMNS.values())
    + ") VALUES (?, ?, ?, ?, '{}', '{}', 'unknown', 0, 0"
    + ", 0" * len(COUNT_COLUMNS) + ")")


def add_identities(*, session: Session, identities: Iterable[tuple[int, str, str]]) -> None:
    """Attach (customer id, kind, value) identities; each value must be free."""
    now = db_time(utcnow())
    driver_executemany(session, _ADD_IDENTITY,
                       [(cid, kind, value, now) for cid, kind, value in identities])


_ADD_IDENTITY = "INSERT INTO identities (customer_id, kind, value, created_at) VALUES (?, ?, ?, ?)"


def identity_owner(*, session: Session, kind: str, value: str) -> int | None:
    """The customer this identity belongs to, if any."""
    return session.scalar(select(Identity.customer_id).where(Identity.kind == kind,
                                                             Identity.value == value))


def identity_owners(*, session: Session, kind: str, values: Iterable[str]) -> dict[str, int]:
    """The customer each of these identities belongs to, for those that belong to one."""
    return dict(driver_query_in(session, _OWNERS, values, before=[kind]))


def user_ids_of(*, session: Session, customer_ids: Iterable[int]) -> dict[int, list[str]]:
    """The user ids of each of these customers that has any (a merge can leave two)."""
    found: dict[int, list[str]] = {}
    for customer_id, user_id in driver_query_in(session, _USER_IDS, customer_ids):
        found.setdefault(customer_id, []).append(user_id)
    return found


_OWNERS = "SELECT value, customer_id FROM identities WHERE kind = ? AND value IN ({marks})"
_USER_IDS = ("SELECT customer_id, value FROM identities WHERE kind = 'user_id' "
             "AND customer_id IN ({marks})")


def remove_identity(*, session: Session, customer_id: int, kind: str, value: str) -> None:
    """Stop `value` from identifying the customer."""
    session.execute(delete(Identity).where(Identity.customer_id == customer_id,
                                           Identity.kind == kind, Identity.value == value))


def identities_of(*, session: Session, customer_ids: Iterable[int]
                  ) -> dict[int, list[tuple[str, str]]]:
    """Each customer's identities as (kind, value) pairs."""
    found: dict[int, list[tuple[str, str]]] = {}
    rows = session.execute(select(Identity.customer_id, Identity.kind, Identity.value)
                           .where(Identity.customer_id.in_(list(customer_ids)))
                           .order_by(Identity.id))
    for cid, kind, value in rows:
        found.setdefault(cid, []).append((kind, value))
    return found


def record_activity(*, session: Session, activity: dict[int, Activity]) -> None:
    """Add counts and seen times to each customer, atomically in SQL."""
    rows = []
    # Customers in id order, so concurrent writers lock rows in one order (no deadlocks).
    for cid, act in sorted(activity.items()):
        if act.first_seen_at is None:
            continue
        first, last = db_time(act.first_seen_at), db_time(act.last_seen_at)
        rows.append((*(act.counts.get(kind, 0) for kind in COUNT_COLUMNS),
                     first, first, last, last, cid))
    driver_executemany(session, _RECORD_SEEN, rows)


def _earliest(column: str) -> str:
    """SET clause keeping the earlier of the column and a parameter (given twice)."""
    return f"{column} = CASE WHEN {column} IS NULL OR {column} > ? THEN ? ELSE {column} END"


def _latest(column: str) -> str:
    return f"{column} = CASE WHEN {column} IS NULL OR {column} < ? THEN ? ELSE {column} END"


# One statement for every customer a write touched: counts by type and seen times.
_RECORD_SEEN = ("UPDATE customers SET "
                + "".join(f"{column} = {column} + ?, " for column in COUNT_COLUMNS.values())
                + f"{_earliest('first_seen_at')}, {_latest('last_seen_at')} WHERE id = ?")


def set_aggregates(*, session: Session, customer_id: int, values: dict[str, Any]) -> None:
    """Overwrite a customer's event aggregates with values recomputed from its events."""
    session.execute(update(Customer).where(Customer.id == customer_id).values(**values))


def apply_trait_observations(
    *, session: Session, observations: dict[int, list[tuple[dict[str, Any], datetime]]],
    source: str, default_region: str,
) -> None:
    """Fold observed traits into each customer (newest per key wins) and keep the history."""
    if not observations:
        return
    customers = session.execute(select(CUSTOMERS.c.id, CUSTOMERS.c.traits,
                                       CUSTOMERS.c.trait_times)
                                .where(CUSTOMERS.c.id.in_(list(observations))))
    history: list[dict[str, Any]] = []
    changed: list[tuple[int, dict[str, Any], dict[str, str]]] = []
    for cid, stored_traits, stored_times in customers:
        traits, times = stored_traits or {}, stored_times or {}
        for incoming, observed_at in sorted(observations[cid], key=lambda item: item[1]):
            traits, times, updates = apply_traits(traits, times, incoming, observed_at)
            history += _history_rows(cid, updates, observed_at, source)
        if traits != (stored_traits or {}) or times != (stored_times or {}):
            changed.append((cid, traits, times))
    _write_traits_many(session, sorted(changed, key=lambda row: row[0]), default_region)
    driver_executemany(session, _ADD_HISTORY, [
        (row["customer_id"], row["key"], db_json(row["old_value"]), db_json(row["value"]),
         db_time(row["observed_at"]), row["source"]) for row in history])


_ADD_HISTORY = ("INSERT INTO trait_changes (customer_id, key, old_value, value, observed_at, "
                "source) VALUES (?, ?, ?, ?, ?, ?)")


def _history_rows(cid: int, updates: list[TraitUpdate], at: datetime, source: str
                  ) -> list[dict[str, Any]]:
    return [{"customer_id": cid, "key": u.key, "old_value": u.old_value, "value": u.value,
             "observed_at": at, "source": source} for u in updates]


def record_trait_history(*, session: Session, customer_id: int, updates: list[TraitUpdate],
                         at: datetime, source: str) -> list[int]:
    """Insert history rows for `updates`; returns their ids."""
    rows = _history_rows(customer_id, updates, at, source)
    if not rows:
        return []
    return list(session.scalars(insert(TraitChange).returning(TraitChange.id), rows))


def write_traits(*, session: Session, customer_id: int, traits: dict[str, Any],
                 times: dict[str, str], default_region: str) -> None:
    """Store traits and the profile columns read from them."""
    _write_traits_many(session, [(customer_id, traits, times)], default_region)


_WRITE_TRAITS = ("UPDATE customers SET traits = ?, trait_times = ?, "
                 + "".join(f"{column} = ?, " for column in PROFILE_COLUMNS).rstrip(", ")
                 + " WHERE id = ?")


def _write_traits_many(session: Session, rows: list[tuple[int, dict[str, Any], dict[str, str]]],
                       region: str) -> None:
    """One statement for many customers' traits and the profile columns read from them."""
    params = []
    for cid, traits, times in rows:
        columns = profile_columns(traits, default_region=region)
        birthday = columns["birthday"]
        columns["birthday"] = birthday.isoformat() if birthday else None
        params.append((db_json(traits), db_json(times),
                       *(columns[column] for column in PROFILE_COLUMNS), cid))
    driver_executemany(session, _WRITE_TRAITS, params)


def normalize_tag(tag: str) -> str:
    """Tags are case-insensitive: kept trimmed and lower-cased ("VIP" is "vip")."""
    value = tag.strip().lower()
    if not value or len(value) > MAX_TAG:
        raise InvalidInput(f"tags: each tag must be 1 to {MAX_TAG} characters", code="invalid_tag")
    return value


def add_tags(*, session: Session, customer_id: int, tags: Iterable[str]) -> list[str]:
    """Give the customer these tags (existing ones stay); returns all its tags."""
    get_customer(session=session, customer_id=customer_id)
    wanted = {normalize_tag(tag) for tag in tags}
    have = set(tags_of(session=session, customer_id=customer_id))
    now = utcnow()
    rows = [{"customer_id": customer_id, "tag": tag, "created_at": now}
            for tag in sorted(wanted - have)]
    if rows:
        session.execute(insert(CustomerTag), rows)
    return sorted(have | wanted)


def remove_tag(*, session: Session, customer_id: int, tag: str) -> list[str]:
    """Take a tag off the customer; returns the tags left."""
    get_customer(session=session, customer_id=customer_id)
    session.execute(delete(CustomerTag).where(CustomerTag.customer_id == customer_id,
                                              CustomerTag.tag == tag.strip().lower()))
    return tags_of(session=session, customer_id=customer_id)


def tags_of(*, session: Session, customer_id: int) -> list[str]:
    return list(session.scalars(select(CustomerTag.tag).where(
        CustomerTag.customer_id == customer_id).order_by(CustomerTag.tag)))


def restore_email_consent(*, session: Session, customer_id: int, state: str,
                          source: str | None, at: datetime | None) -> None:
    """Put back a consent exactly as it was recorded (used when a merge is split)."""
    session.execute(update(Customer).where(Customer.id == customer_id).values(
        email_marketing=state, email_marketing_source=source, email_marketing_at=at))


def set_email_consent(*, session: Session, customer_id: int, state: str, source: str,
                      at: datetime | None = None) -> None:
    """Record the customer's e-mail marketing consent, where it came from and when."""
    if state not in CONSENT_STATES:
        raise InvalidInput(f"consent.email_marketing: must be one of {', '.join(CONSENT_STATES)}",
                           code="invalid_consent")
    session.execute(update(Customer).where(Customer.id == customer_id).values(
        email_marketing=state, email_marketing_source=source[:100],
        email_marketing_at=at or utcnow()))


def set_email_consents(*, session: Session, consents: list[tuple[int, str, str, datetime]]
                       ) -> None:
    """`set_email_consent` for many customers at once: (customer id, state, source, at); of
    two for one customer, the later one stays."""
    for _cid, state, _source, _at in consents:
        if state not in CONSENT_STATES:
            raise InvalidInput("consent.email_marketing: must be one of "
                               f"{', '.join(CONSENT_STATES)}", code="invalid_consent")
    driver_executemany(session, _SET_CONSENT, [(state, source[:100], db_time(at), cid)
                                               for cid, state, source, at in sorted(
                                                   consents, key=lambda c: (c[3], c[0]))])


_SET_CONSENT = ("UPDATE customers SET email_marketing = ?, email_marketing_source = ?, "
                "email_marketing_at = ? WHERE id = ?")


def set_predictions(*, session: Session, at: datetime,
                    rows: list[tuple[int, float, float, float, int, bool]]) -> None:
    """Store predictions: (customer id, P(alive), churn risk, expected orders, predicted
    lifetime value in minor units, inactive) as of `at`; every other customer's are
    cleared (they no longer have purchases to predict from)."""
    moment = db_time(at)
    driver_executemany(session, _SET_PREDICTIONS, [(*row, moment, cid)
                                                   for cid, *row in sorted(rows)])
    driver_executemany(session, _CLEAR_PREDICTIONS, [(moment,)])


_PREDICTIONS = ("p_alive", "churn_risk", "expected_orders", "predicted_clv_cents", "inactive",
                "predicted_at")
_SET_PREDICTIONS = ("UPDATE customers SET " + ", ".join(f"{name} = ?" for name in _PREDICTIONS)
                    + " WHERE id = ?")
_CLEAR_PREDICTIONS = ("UPDATE customers SET " + ", ".join(f"{name} = NULL" for name in
                                                           _PREDICTIONS)
                      + " WHERE predicted_at IS NOT NULL AND predicted_at <> ?")


def set_rfm(*, session: Session, at: datetime,
            rows: list[tuple[int, int, int, int, str]]) -> None:
    """Store RFM scores: (customer id, R, F, M, group) as of `at`; every other customer's
    are cleared."""
    moment = db_time(at)
    driver_executemany(session, _SET_RFM, [(*row, moment, cid) for cid, *row in sorted(rows)])
    driver_executemany(session, _CLEAR_RFM, [(moment,)])


_RFM = ("rfm_recency", "rfm_frequency", "rfm_monetary", "rfm_group", "rfm_at")
_SET_RFM = "UPDATE customers SET " + ", ".join(f"{name} = ?" for name in _RFM) + " WHERE id = ?"
_CLEAR_RFM = ("UPDATE customers SET " + ", ".join(f"{name} = NULL" for name in _RFM)
              + " WHERE rfm_at IS NOT NULL AND rfm_at <> ?")


def suppress(*, session: Session, email: str, reason: str, detail: str | None = None,
             at: datetime | None = None) -> bool:
    """Stop all marketing e-mail to `email` (a hard bounce, a complaint, or by hand); True
    when it was not suppressed before. The customer who owns it is remembered."""
    if reason not in SUPPRESSION_REASONS:
        raise InvalidInput(f"reason: must be one of {', '.join(SUPPRESSION_REASONS)}",
                           code="invalid_reason")
    address = normalize_email(email)
    if address is None:
        raise InvalidInput("email: must be an e-mail address", code="invalid_email")
    if session.get(Suppression, address) is not None:
        return False
    owner = identity_owner(session=session, kind="email", value=address)
    session.add(Suppression(email=address, reason=reason, customer_id=owner,
                            detail=detail[:500] if detail else None, created_at=at or utcnow()))
    session.flush()
    return True


def unsuppress(*, session: Session, email: str) -> None:
    """Allow marketing e-mail to `email` again."""
    session.execute(delete(Suppression).where(Suppression.email == (normalize_email(email) or "")))


def reachable_by_email() -> ColumnElement[bool]:
    """A condition on customers: may receive marketing e-mail now (an address, consent
    given, the address not suppressed)."""
    return and_(Customer.email.is_not(None), Customer.email_marketing == "subscribed",
                ~exists(select(Suppression.email).where(Suppression.email == Customer.email)))
