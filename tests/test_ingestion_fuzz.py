"""Random JSON into the ingestion endpoints: a clear 200 or 400, never a server error."""

from __future__ import annotations

from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st

from tests.helpers import basic

SCALARS = (st.none() | st.booleans() | st.integers(min_value=-(2**70), max_value=2**70)
           | st.floats(allow_nan=False, allow_infinity=False) | st.text(max_size=20))
JSON = st.recursive(SCALARS, lambda inner: st.lists(inner, max_size=4)
                    | st.dictionaries(st.text(max_size=10), inner, max_size=4), max_leaves=12)
KEYS = st.sampled_from(["type", "userId", "anonymousId", "event", "timestamp", "sentAt",
                        "originalTimestamp", "properties", "traits", "context", "messageId",
                        "previousId", "groupId", "name"])
CALL = st.dictionaries(KEYS, JSON | st.sampled_from(
    ["track", "identify", "page", "alias", "u1", "2026-01-01T00:00:00Z", "Order Completed"]),
    max_size=8)


def test_random_calls_never_break_ingestion(client, write_key):
    @given(calls=st.lists(CALL | JSON, max_size=5), single=CALL | JSON)
    @hypothesis_settings(max_examples=80, deadline=None, database=None,
                         suppress_health_check=list(HealthCheck))
    def answers_clearly(calls: list[object], single: object) -> None:
        batch = client.post("/v1/batch", json={"batch": calls}, headers=basic(write_key))
        assert batch.status_code == 200, batch.text
        assert len(batch.json()["rejected"]) <= len(calls)
        one = client.post("/v1/track", json=single, headers=basic(write_key))
        assert one.status_code in (200, 400), one.text
        assert one.status_code == 200 or set(one.json()) == {"code", "message"}

    answers_clearly()
