"""The `customer` merge field: the profile, its traits and its tags."""

from __future__ import annotations

from typing import Any

from sqlalchemy import bindparam, select
from sqlalchemy.orm import Session

from clientela.customers.models import Customer, CustomerTag
from clientela.messaging.merge_fields.sql import run

_CUSTOMERS = select(Customer.id, Customer.email, Customer.first_name, Customer.last_name,
                    Customer.gender, Customer.birthday, Customer.city, Customer.region,
                    Customer.country, Customer.locale, Customer.traits
                    ).where(Customer.id.in_(bindparam("ids", expanding=True)))
_TAGS = (select(CustomerTag.customer_id, CustomerTag.tag)
         .where(CustomerTag.customer_id.in_(bindparam("ids", expanding=True)))
         .order_by(CustomerTag.customer_id, CustomerTag.tag))


def profiles(session: Session, ids: list[int]) -> dict[int, dict[str, Any]]:
    """The `customer` field of each of `ids` that exists (at most IN_LIST_SIZE ids)."""
    rows = run(session, _CUSTOMERS, ids=ids).all()
    if not rows:
        return {}
    tags: dict[int, list[str]] = {}
    for tag in run(session, _TAGS, ids=[row.id for row in rows]):
        tags.setdefault(tag.customer_id, []).append(tag.tag)
    return {row.id: {**row._asdict(),
                     "name": " ".join(part for part in (row.first_name, row.last_name) if part),
                     "traits": dict(row.traits or {}), "tags": tags.get(row.id, [])}
            for row in rows}
