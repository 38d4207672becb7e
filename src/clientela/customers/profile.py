"""Editing a profile through the API: fields, custom traits, identities, consent, upsert."""

from __future__ import annotations

from typing import Any

from sqlalchemy.orm import Session

from clientela.core.clock import utcnow
from clientela.core.errors import Conflict, InvalidInput
from clientela.customers import service
from clientela.customers.models import Customer
from clientela.customers.normalize import normalize_email, normalize_phone
from clientela.customers.schemas import CustomerIn, ProfileIn
from clientela.customers.traits import apply_traits

# Profile field -> Segment reserved trait (address parts live under `address`).
_TRAIT_KEYS = {"email": "email", "phone": "phone", "first_name": "firstName",
               "last_name": "lastName", "gender": "gender", "birthday": "birthday",
               "locale": "locale"}
_ADDRESS_KEYS = {"city": "city", "region": "state", "country": "country"}


def _incoming_traits(changes: ProfileIn, current: dict[str, Any]) -> dict[str, Any]:
    """The traits a change sets (None removes a trait)."""
    given = changes.model_fields_set
    incoming: dict[str, Any] = dict(changes.traits or {})
    for field, key in _TRAIT_KEYS.items():
        if field in given:
            value = getattr(changes, field)
            incoming[key] = value.isoformat() if hasattr(value, "isoformat") else value
    if given & _ADDRESS_KEYS.keys():
        address = dict(current.get("address") or {})
        for field, key in _ADDRESS_KEYS.items():
            if field in given:
                address[key] = getattr(changes, field)
        incoming["address"] = {k: v for k, v in address.items() if v is not None}
    return incoming


def _claim(session: Session, customer_id: int, kind: str, value: str) -> None:
    """Give the customer this identity, unless another customer holds it."""
    owner = service.identity_owner(session=session, kind=kind, value=value)
    if owner is None:
        service.add_identities(session=session, identities=[(customer_id, kind, value)])
    elif owner != customer_id:
        raise Conflict(f"{kind}: {value} belongs to customer {owner}; merge the two instead",
                       code="identity_taken")


def _claim_contacts(session: Session, customer: Customer, changes: ProfileIn,
                    region: str) -> None:
    customer_id = customer.id
    given = changes.model_fields_set
    for kind in ("email", "phone"):
        if kind in given and getattr(changes, kind) is None and getattr(customer, kind):
            # Removing the address also stops it from identifying this customer.
            service.remove_identity(session=session, customer_id=customer_id, kind=kind,
                                    value=getattr(customer, kind))
    if changes.email:
        email = normalize_email(changes.email)
        if email is None:
            raise InvalidInput(f"email: {changes.email!r} is not an e-mail address",
                               code="invalid_email")
        _claim(session, customer_id, "email", email)
    if changes.phone:
        phone = normalize_phone(changes.phone, default_region=region)
        if phone is None:
            raise InvalidInput(f"phone: {changes.phone!r} is not a phone number",
                               code="invalid_phone")
        _claim(session, customer_id, "phone", phone)


def _change_traits(session: Session, customer: Customer, incoming: dict[str, Any],
                   region: str, source: str) -> None:
    """Set traits observed now (None removes one), keeping their history."""
    now = utcnow()
    traits, times, updates = apply_traits(dict(customer.traits or {}),
                                          dict(customer.trait_times or {}), incoming, now)
    for key in [key for key, value in incoming.items() if value is None]:
        traits.pop(key, None)
        times.pop(key, None)
    service.write_traits(session=session, customer_id=customer.id, traits=traits, times=times,
                         default_region=region)
    service.record_trait_history(session=session, customer_id=customer.id, updates=updates,
                                 at=now, source=source)


def update_profile(*, session: Session, customer_id: int, changes: ProfileIn,
                   default_region: str, source: str = "api") -> Customer:
    """Apply fields, traits and consent to the customer; the caller commits."""
    customer = service.get_customer(session=session, customer_id=customer_id)
    _claim_contacts(session, customer, changes, default_region)
    _change_traits(session, customer, _incoming_traits(changes, dict(customer.traits or {})),
                   default_region, source)
    if changes.consent is not None:
        service.set_email_consent(session=session, customer_id=customer_id,
                                  state=changes.consent.email_marketing,
                                  source=changes.consent.source)
    return service.get_customer(session=session, customer_id=customer_id)


def upsert_customer(*, session: Session, data: CustomerIn, default_region: str
                    ) -> tuple[Customer, bool]:
    """The customer known by `user_id` or else `email`, updated, or a new one; and whether
    it is new."""
    existing = None
    if data.user_id:
        existing = _owner(session, "user_id", data.user_id)
    if existing is None and data.email:
        email = normalize_email(data.email)
        existing = _owner(session, "email", email) if email else None
    created = existing is None
    if existing is None:
        existing = service.create_customer(session=session, seen_at=utcnow())
    if data.user_id:
        _claim_user_id(session, existing, data.user_id)
    profile = ProfileIn.model_validate(data.model_dump(
        include=data.model_fields_set & set(ProfileIn.model_fields)))
    customer = update_profile(session=session, customer_id=existing, changes=profile,
                              default_region=default_region)
    if data.tags:
        service.add_tags(session=session, customer_id=existing, tags=data.tags)
    return customer, created


def _claim_user_id(session: Session, customer_id: int, user_id: str) -> None:
    """A customer found by e-mail keeps its own user id: a second one is a conflict."""
    others = [value for kind, value in service.identities_of(
        session=session, customer_ids=[customer_id]).get(customer_id, [])
        if kind == "user_id" and value != user_id]
    if others:
        raise Conflict(f"user_id: the customer with this e-mail has user id {others[0]!r}; "
                       "merge the two instead", code="identity_taken")
    _claim(session, customer_id, "user_id", user_id)


def _owner(session: Session, kind: str, value: str) -> int | None:
    # Identities always belong to live customers: a merge moves them to the survivor.
    return service.identity_owner(session=session, kind=kind, value=value)
