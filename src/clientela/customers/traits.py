"""Pure rules for traits: newest value wins per key, and the profile columns they fill."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from clientela.customers.normalize import normalize_email, normalize_phone

MAX_TRAIT_KEY = 200
PROFILE_COLUMNS = ("email", "phone", "first_name", "last_name", "gender", "birthday", "locale",
                   "city", "region", "country")


@dataclass(frozen=True, slots=True)
class TraitUpdate:
    key: str
    old_value: Any
    value: Any


def _same(old: Any, new: Any) -> bool:
    """Equal and of the same JSON type: 10 and "10", or 1 and 1.0, are different values."""
    return type(old) is type(new) and bool(old == new)


def apply_traits(
    current: dict[str, Any], times: dict[str, str], incoming: dict[str, Any], observed_at: datetime
) -> tuple[dict[str, Any], dict[str, str], list[TraitUpdate]]:
    """Traits and times after `incoming` observed at `observed_at`; older observations lose."""
    stamp = observed_at.isoformat()
    traits, new_times = dict(current), dict(times)
    updates: list[TraitUpdate] = []
    for key, value in incoming.items():
        if len(key) > MAX_TRAIT_KEY:
            continue
        if key in new_times and new_times[key] > stamp:
            continue
        new_times[key] = stamp
        if key not in traits or not _same(traits[key], value):
            updates.append(TraitUpdate(key=key, old_value=traits.get(key), value=value))
            traits[key] = value
    return traits, new_times, updates


def merge_traits(
    kept: tuple[dict[str, Any], dict[str, str]], dropped: tuple[dict[str, Any], dict[str, str]]
) -> tuple[dict[str, Any], dict[str, str], list[TraitUpdate]]:
    """The kept customer's traits after a merge: per key, the newer observation wins."""
    traits, times = dict(kept[0]), dict(kept[1])
    updates: list[TraitUpdate] = []
    for key, value in dropped[0].items():
        dropped_time = dropped[1].get(key, "")
        if key in traits and times.get(key, "") >= dropped_time:
            continue
        if key not in traits or not _same(traits[key], value):
            updates.append(TraitUpdate(key=key, old_value=traits.get(key), value=value))
        traits[key] = value
        times[key] = dropped_time
    return traits, times, updates


def _text(value: Any, limit: int = 200) -> str | None:
    if isinstance(value, str | int) and not isinstance(value, bool) and str(value).strip():
        return str(value).strip()[:limit]
    return None


def _birthday(value: Any) -> date | None:
    if not isinstance(value, str):
        return None
    try:
        return date.fromisoformat(value[:10])
    except ValueError:
        return None


def _names(traits: dict[str, Any]) -> tuple[str | None, str | None]:
    first = _text(traits.get("firstName", traits.get("first_name")))
    last = _text(traits.get("lastName", traits.get("last_name")))
    full = _text(traits.get("name"))
    if full and not first and not last:
        first, _, rest = full.partition(" ")
        last = rest or None
    return first, last


def profile_columns(traits: dict[str, Any], *, default_region: str) -> dict[str, Any]:
    """The profile columns read from Segment's reserved traits."""
    given = traits.get("address")
    address: dict[str, Any] = given if isinstance(given, dict) else {}
    first, last = _names(traits)
    return {
        "email": normalize_email(traits.get("email")),
        "phone": normalize_phone(traits.get("phone"), default_region=default_region),
        "first_name": first,
        "last_name": last,
        "gender": _text(traits.get("gender"), 32),
        "birthday": _birthday(traits.get("birthday")),
        "locale": _text(traits.get("locale"), 35),
        "city": _text(address.get("city", traits.get("city"))),
        "region": _text(address.get("state", traits.get("region"))),
        "country": _text(address.get("country", traits.get("country")), 100),
    }
