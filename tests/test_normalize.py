"""Pure rules: identity normal forms, trait precedence, exact money."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from clientela.customers.normalize import normalize_email, normalize_phone
from clientela.customers.traits import apply_traits, merge_traits, profile_columns


@pytest.mark.parametrize(("raw", "expected"), [
    ("  Ana.Souza@Example.COM ", "ana.souza@example.com"),
    ("no-at-sign", None), ("a@b", None), ("two@@example.com", None), (42, None), (None, None),
])
def test_email(raw, expected):
    assert normalize_email(raw) == expected


@pytest.mark.parametrize(("raw", "expected"), [
    ("(11) 98765-4321", "+5511987654321"),
    ("+55 21 3456-7890", "+552134567890"),
    ("+1 415 555 2671", "+14155552671"),
    ("12", None), ("call me", None), ("", None),
])
def test_phone_in_e164_with_brazil_as_default(raw, expected):
    assert normalize_phone(raw, default_region="BR") == expected


def test_newer_observation_wins_and_types_are_kept():
    t1, t2 = datetime(2026, 1, 1, tzinfo=UTC), datetime(2026, 1, 2, tzinfo=UTC)
    traits, times, updates = apply_traits({}, {}, {"n": 1, "ok": True}, t2)
    traits, times, late = apply_traits(traits, times, {"n": 2, "x": "y"}, t1)
    assert traits == {"n": 1, "ok": True, "x": "y"}
    assert [(u.key, u.value) for u in updates + late] == [("n", 1), ("ok", True), ("x", "y")]
    kept, _, merged = merge_traits((traits, times), ({"n": 1.0, "z": 0}, {"n": "2027", "z": ""}))
    assert kept == {"n": 1.0, "ok": True, "x": "y", "z": 0}
    assert [(u.key, u.old_value, u.value) for u in merged] == [("n", 1, 1.0), ("z", None, 0)]


def test_profile_columns_from_reserved_traits():
    columns = profile_columns({"name": "Maria Clara Dias", "birthday": "1990-05-17T00:00:00Z",
                               "address": {"city": "Recife", "country": "BR"}},
                              default_region="BR")
    assert (columns["first_name"], columns["last_name"]) == ("Maria", "Clara Dias")
    assert columns["birthday"].isoformat() == "1990-05-17"
    assert (columns["city"], columns["country"], columns["email"]) == ("Recife", "BR", None)
