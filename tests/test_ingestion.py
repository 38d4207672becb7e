"""The Segment-compatible ingestion API: auth, limits, validation, times, exactly-once."""

from __future__ import annotations

import gzip
import json

import orjson
from sqlalchemy import func, select

from clientela.db import session_scope
from clientela.tracking.models import Event
from tests.helpers import basic, batch, customer_by_user, send


def _stored(engine) -> int:
    with session_scope(engine, writes=False) as session:
        return int(session.scalar(select(func.count()).select_from(Event)))


def _events(api, customer_id: int) -> list[dict]:
    return api.get(f"/api/v1/customers/{customer_id}/events").json()["items"]


def test_every_call_type_is_stored(client, write_key, api, engine):
    calls = {
        "identify": {"userId": "u1", "traits": {"email": "u1@example.com"}},
        "track": {"userId": "u1", "event": "Signed Up", "properties": {"plan": "gold"}},
        "page": {"userId": "u1", "name": "Home", "properties": {"path": "/"}},
        "screen": {"userId": "u1", "name": "Cart"},
        "group": {"userId": "u1", "groupId": "acme", "traits": {"name": "Acme"}},
        "alias": {"userId": "u1", "previousId": "anon-1"},
    }
    for kind, call in calls.items():
        response = send(client, write_key, kind, **call)
        assert response.status_code == 200, response.text
        assert response.json() == {"success": True}
    customer = customer_by_user(api, "u1")
    assert customer["aggregates"]["events"] == {
        "identify": 1, "track": 1, "page": 1, "screen": 1, "group": 1, "alias": 1}
    names = sorted((e["type"], e["event"]) for e in _events(api, customer["id"]))
    assert names == [("alias", None), ("group", None), ("identify", None), ("page", "Home"),
                     ("screen", "Cart"), ("track", "Signed Up")]
    assert _stored(engine) == 6


def test_write_key_in_body_is_accepted(client, write_key, engine):
    response = client.post("/v1/track", json={"writeKey": write_key, "anonymousId": "a",
                                              "event": "Viewed"})
    assert response.status_code == 200
    assert _stored(engine) == 1


def test_missing_or_wrong_write_key_is_401(client, write_key, secret_key, engine):
    call = {"anonymousId": "a", "event": "Viewed"}
    missing = client.post("/v1/track", json=call)
    assert missing.status_code == 401
    assert missing.json()["code"] == "missing_write_key"
    for key in ("cw_not-a-real-key", secret_key):  # a secret key is not a write key
        wrong = client.post("/v1/track", json=call, headers=basic(key))
        assert wrong.status_code == 401
        assert wrong.json() == {"code": "invalid_write_key",
                                "message": "write key: not a valid write key"}
    assert _stored(engine) == 0


def test_gzip_bodies_are_inflated(client, write_key, engine):
    body = gzip.compress(json.dumps({"batch": [
        {"type": "track", "anonymousId": "a", "event": "E1", "messageId": "m1"},
        {"type": "page", "anonymousId": "a", "messageId": "m2"}]}).encode())
    response = client.post("/v1/batch", content=body, headers={
        **basic(write_key), "Content-Encoding": "gzip", "Content-Type": "application/json"})
    assert response.status_code == 200, response.text
    assert response.json() == {"success": True, "rejected": []}
    assert _stored(engine) == 2


def test_gzip_bomb_is_refused_without_inflating(client, write_key, engine):
    payload = b'{"batch": [' + b" " * (50 * 1024 * 1024) + b"]}"
    bomb = gzip.compress(payload)
    assert len(bomb) < 100_000
    response = client.post("/v1/batch", content=bomb, headers={
        **basic(write_key), "Content-Encoding": "gzip"})
    assert response.status_code == 400
    assert response.json() == {"code": "payload_too_large",
                               "message": "body: larger than 512000 bytes"}
    assert _stored(engine) == 0


def test_broken_gzip_and_json_are_400(client, write_key):
    broken = client.post("/v1/batch", content=b"not gzip", headers={
        **basic(write_key), "Content-Encoding": "gzip"})
    assert (broken.status_code, broken.json()["code"]) == (400, "invalid_gzip")
    bad_json = client.post("/v1/track", content=b"{not json", headers=basic(write_key))
    assert (bad_json.status_code, bad_json.json()["code"]) == (400, "invalid_json")
    assert bad_json.json()["message"].startswith("body: invalid JSON")


def test_size_limits(client, write_key, engine):
    big_event = {"anonymousId": "a", "event": "Big", "properties": {"blob": "x" * 33_000}}
    single = send(client, write_key, "track", **big_event)
    assert single.status_code == 400
    assert single.json()["code"] == "payload_too_large"
    too_many = batch(client, write_key, [{"type": "page", "anonymousId": "a"}] * 2501)
    assert too_many.status_code == 400
    assert too_many.json() == {"code": "batch_too_large",
                               "message": "batch: at most 2500 calls per batch"}
    calls = [{"type": "track", "anonymousId": "a", "event": "E",
              "properties": {"blob": "y" * 30_000}, "messageId": f"m{i}"} for i in range(18)]
    too_big = batch(client, write_key, calls)
    assert (too_big.status_code, too_big.json()["code"]) == (400, "payload_too_large")
    mixed = batch(client, write_key, [{**big_event, "type": "track", "messageId": "big"},
                                      {"type": "page", "anonymousId": "a", "messageId": "ok"}])
    assert mixed.status_code == 200
    assert mixed.json()["rejected"] == [{"index": 0, "code": "event_too_large",
                                         "message": "event: larger than 32768 bytes"}]
    assert _stored(engine) == 1
    # 400 KB of batch context copied into 2,000 calls would be 800 MB stored.
    multiplied = batch(client, write_key, [{"type": "page", "anonymousId": "a",
                                            "messageId": f"c{i}"} for i in range(2000)],
                       context={"blob": "z" * 400_000})
    assert multiplied.status_code == 400
    assert multiplied.json() == {
        "code": "payload_too_large",
        "message": "batch: larger than 16777216 bytes once each call carries the batch context"}
    assert _stored(engine) == 1


def test_invalid_calls_in_a_batch_are_listed_and_the_rest_stored(client, write_key, engine):
    calls = [
        {"type": "track", "anonymousId": "a", "event": "Good", "messageId": "g1"},
        {"type": "track", "anonymousId": "a", "messageId": "no-event"},
        {"type": "identify", "traits": {"email": "x@example.com"}},
        {"type": "alias", "userId": "u"},
        {"type": "group", "userId": "u"},
        {"type": "shout", "userId": "u"},
        {"type": "page", "userId": "u", "timestamp": "yesterday"},
        "not an object",
        {"type": "track", "userId": "u", "event": "Order Completed",
         "properties": {"total": "lots"}},
        {"type": "page", "userId": "u", "properties": [1, 2]},
        {"type": "page", "anonymousId": "a", "messageId": "g2"},
    ]
    response = batch(client, write_key, calls)
    assert response.status_code == 200
    assert response.json() == {"success": True, "rejected": [
        {"index": 1, "code": "missing_event", "message": "event: required for track calls"},
        {"index": 2, "code": "missing_identity",
         "message": "userId or anonymousId: one of them is required"},
        {"index": 3, "code": "missing_previousId",
         "message": "previousId: required for alias calls"},
        {"index": 4, "code": "missing_groupId", "message": "groupId: required for group calls"},
        {"index": 5, "code": "invalid_type",
         "message": "type: must be one of alias, group, identify, page, screen, track"},
        {"index": 6, "code": "invalid_timestamp",
         "message": "timestamp: 'yesterday' is not an ISO-8601 date-time"},
        {"index": 7, "code": "invalid_event", "message": "event: must be a JSON object"},
        {"index": 8, "code": "invalid_amount",
         "message": "properties.total: 'lots' is not a number"},
        {"index": 9, "code": "invalid_object", "message": "properties: must be an object"},
    ]}
    assert _stored(engine) == 2


def test_single_invalid_call_is_400_and_stores_nothing(client, write_key, engine):
    response = send(client, write_key, "track", userId="u1")
    assert response.status_code == 400
    assert response.json() == {"code": "missing_event",
                               "message": "event: required for track calls"}
    assert _stored(engine) == 0


def test_batch_context_is_merged_into_each_call(client, write_key, api):
    response = batch(client, write_key, [
        {"type": "track", "userId": "u1", "event": "A", "context": {"ip": "10.0.0.1"}},
        {"type": "track", "userId": "u1", "event": "B"},
    ], context={"library": {"name": "shop", "version": "1"}, "ip": "192.0.2.1"})
    assert response.status_code == 200
    events = _events(api, customer_by_user(api, "u1")["id"])
    contexts = {e["event"]: e["context"] for e in events}
    assert contexts == {
        "A": {"library": {"name": "shop", "version": "1"}, "ip": "10.0.0.1"},
        "B": {"library": {"name": "shop", "version": "1"}, "ip": "192.0.2.1"},
    }


def test_times_are_corrected_for_client_clock_skew(client, write_key, api, engine):
    # The device clock runs 1 h fast: it says it sent at 13:00 what happened at 12:59.
    response = batch(client, write_key, [
        {"type": "track", "userId": "u1", "event": "Skewed", "messageId": "s1",
         "originalTimestamp": "2026-03-01T12:59:00Z"},
        {"type": "track", "userId": "u1", "event": "Trusted", "messageId": "s2",
         "timestamp": "2026-03-01T10:00:00+02:00", "sentAt": None},
    ], sentAt="2026-03-01T13:00:00Z")
    assert response.status_code == 200
    with session_scope(engine, writes=False) as session:
        rows = {e.event: e for e in session.scalars(select(Event))}
        skewed = rows["Skewed"]
        assert skewed.original_timestamp.isoformat() == "2026-03-01T12:59:00+00:00"
        assert skewed.sent_at.isoformat() == "2026-03-01T13:00:00+00:00"
        assert (skewed.received_at - skewed.timestamp).total_seconds() == 60
        trusted = rows["Trusted"]
        # The batch's sentAt applies to every call in it.
        assert trusted.original_timestamp.isoformat() == "2026-03-01T08:00:00+00:00"
        assert (trusted.received_at - trusted.timestamp).total_seconds() == 5 * 3600


def test_without_sent_at_the_client_time_is_kept(client, write_key, engine):
    send(client, write_key, "track", userId="u1", event="Late",
         timestamp="2025-12-24T18:30:00-03:00")
    send(client, write_key, "track", userId="u1", event="Now")
    with session_scope(engine, writes=False) as session:
        rows = {e.event: e for e in session.scalars(select(Event))}
    assert rows["Late"].timestamp.isoformat() == "2025-12-24T21:30:00+00:00"
    assert rows["Now"].original_timestamp is None
    assert rows["Now"].timestamp == rows["Now"].received_at


def test_a_retried_batch_stores_nothing_twice(client, write_key, api, engine):
    calls = [{"type": "track", "userId": "u1", "event": "Order Completed", "messageId": f"m{i}",
              "properties": {"order_id": f"o{i}", "total": 10}} for i in range(3)]
    calls.append(dict(calls[0]))  # the same message twice in one batch
    for _ in range(2):
        assert batch(client, write_key, calls).status_code == 200
    assert _stored(engine) == 3
    aggregates = customer_by_user(api, "u1")["aggregates"]
    assert (aggregates["orders_count"], aggregates["revenue_total"]) == (3, 30.0)


def test_message_ids_are_unique_per_source(client, write_key, engine):
    with session_scope(engine) as session:
        from clientela.team import service as team
        other = team.create_key(session=session, kind="write", name="other store").key
    send(client, write_key, "track", userId="u1", event="E", messageId="same")
    send(client, other, "track", userId="u1", event="E", messageId="same")
    assert _stored(engine) == 2


def test_orders_and_refunds_update_revenue_exactly(client, write_key, api):
    calls = [
        {"type": "track", "userId": "u1", "event": "Order Completed",
         "timestamp": "2026-01-10T10:00:00Z",
         "properties": {"order_id": "A", "total": "0.10"}},
        {"type": "track", "userId": "u1", "event": "Order Completed",
         "timestamp": "2026-02-10T10:00:00Z",
         "properties": {"order_id": "B", "revenue": 0.2}},
        {"type": "track", "userId": "u1", "event": "Order Completed",
         "timestamp": "2026-03-10T10:00:00Z",
         "properties": {"order_id": "C", "products": [{"price": 19.99, "quantity": 3},
                                                      {"price": "5.01"}]}},
    ]
    batch(client, write_key, calls)
    send(client, write_key, "track", userId="u1", event="Order Refunded",
         properties={"order_id": "C", "total": 5.01})
    aggregates = customer_by_user(api, "u1")["aggregates"]
    assert aggregates["orders_count"] == 3
    assert aggregates["revenue_total"] == 60.27  # 0.10 + 0.20 + 64.98 - 5.01, exactly
    assert aggregates["average_order_value"] == 20.09
    assert aggregates["first_order_at"] == "2026-01-10T10:00:00Z"
    assert aggregates["last_order_at"] == "2026-03-10T10:00:00Z"
    send(client, write_key, "track", userId="u1", event="Order Refunded",
         properties={"order_id": "A"})  # no amount: the whole order
    assert customer_by_user(api, "u1")["aggregates"]["revenue_total"] == 60.17


def test_health(client):
    response = client.get("/health")
    assert (response.status_code, response.json()) == (200, {"status": "ok"})


def test_openapi_lists_the_ingestion_endpoints(client):
    paths = orjson.loads(client.get("/openapi.json").content)["paths"]
    for kind in ("identify", "track", "page", "screen", "group", "alias", "batch"):
        assert f"/v1/{kind}" in paths


def test_values_that_cannot_be_stored_are_rejected_one_by_one(client, write_key, engine):
    deep: dict = {}
    node = deep
    for _ in range(300):
        node["x"] = {}
        node = node["x"]
    calls = [
        {"type": "track", "anonymousId": "a", "event": "Deep", "properties": deep},
        {"type": "track", "anonymousId": "a\x00b", "event": "Nul"},
        {"type": "track", "anonymousId": "a", "event": "Nul", "properties": {"q": "x\x00"}},
        {"type": "page", "anonymousId": "a", "timestamp": "0001-01-01T00:00:00+01:00"},
        {"type": "page", "anonymousId": "a", "timestamp": "1800-01-01T00:00:00Z"},
        {"type": "track", "anonymousId": "a", "event": "Order Completed",
         "properties": {"total": "1e30"}},
        {"type": "track", "anonymousId": "a", "event": "Order Completed",
         "properties": {"total": -100}},
        {"type": "page", "anonymousId": "a", "name": {"not": "text"}},
        {"type": "page", "anonymousId": "ok", "messageId": "fine"},
    ]
    response = batch(client, write_key, calls)
    assert response.status_code == 200
    assert response.json()["rejected"] == [
        {"index": 0, "code": "invalid_value",
         "message": "properties: cannot be stored (nested too deeply)"},
        {"index": 1, "code": "invalid_id",
         "message": "anonymousId: must not contain NUL characters"},
        {"index": 2, "code": "invalid_value",
         "message": "properties: must not contain NUL characters"},
        {"index": 3, "code": "invalid_timestamp",
         "message": "timestamp: '0001-01-01T00:00:00+01:00' is not an ISO-8601 date-time"},
        {"index": 4, "code": "invalid_timestamp",
         "message": "timestamp: must be between the years 1900 and 2199"},
        {"index": 5, "code": "invalid_amount",
         "message": "properties.total: must be between 0 and 10000000000000"},
        {"index": 6, "code": "invalid_amount",
         "message": "properties.total: must be between 0 and 10000000000000"},
        {"index": 7, "code": "invalid_name", "message": "name: must be a string"},
    ]
    assert _stored(engine) == 1


def test_truncated_gzip_is_refused(client, write_key, engine):
    body = gzip.compress(json.dumps({"batch": [{"type": "page", "anonymousId": "a"}]}).encode())
    response = client.post("/v1/batch", content=body[:-6], headers={
        **basic(write_key), "Content-Encoding": "gzip"})
    assert response.json() == {"code": "invalid_gzip", "message": "body: gzip data is truncated"}
    assert _stored(engine) == 0


def test_a_refund_naming_no_order_changes_no_revenue(client, write_key, api):
    send(client, write_key, "track", userId="u1", event="Order Completed",
         properties={"total": 50})
    send(client, write_key, "track", userId="u1", event="Order Refunded", properties={})
    aggregates = customer_by_user(api, "u1")["aggregates"]
    assert (aggregates["orders_count"], aggregates["revenue_total"]) == (1, 50.0)


def test_browsers_may_post_from_any_origin_to_ingestion_only(client, write_key, api, engine):
    preflight = client.options("/v1/t", headers={
        "Origin": "https://loja.example", "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": "content-type"})
    assert preflight.status_code == 204
    assert preflight.headers["access-control-allow-origin"] == "*"
    assert "POST" in preflight.headers["access-control-allow-methods"]
    # analytics.js posts text/plain with the write key in the body, to short paths.
    for path, body in (("/v1/t", {"event": "Viewed"}), ("/v1/p", {"name": "Home"}),
                       ("/v1/i", {"traits": {"firstName": "Ana"}}),
                       ("/v1/g", {"groupId": "acme"}), ("/v1/a", {"previousId": "old"})):
        response = client.post(path, content=orjson.dumps(
            {"writeKey": write_key, "anonymousId": "browser-1", **body}),
            headers={"Origin": "https://loja.example", "Content-Type": "text/plain"})
        assert response.status_code == 200, (path, response.text)
        assert response.headers["access-control-allow-origin"] == "*"
    assert _stored(engine) == 5
    private = client.options("/api/v1/customers", headers={
        "Origin": "https://loja.example", "Access-Control-Request-Method": "GET"})
    assert "access-control-allow-origin" not in private.headers
    assert "access-control-allow-origin" not in api.get(
        "/api/v1/customers", headers={"Origin": "https://loja.example"}).headers


def test_the_browser_tag_is_served_small_and_cacheable(client):
    tag = client.get("/js/clientela.js")
    assert tag.status_code == 200
    assert tag.headers["content-type"].startswith("text/javascript")
    assert tag.headers["cache-control"] == "public, max-age=3600"
    assert len(tag.content) < 8 * 1024
    assert b"sendBeacon" in tag.content and b"utm_campaign" in tag.content


def test_a_backslash_before_u0000_is_ordinary_text(client, write_key, api):
    send(client, write_key, "track", userId="u1", event="Path",
         properties={"folder": "C:\\u0000dir"})
    events = api.get(f"/api/v1/customers/{customer_by_user(api, 'u1')['id']}/events").json()
    assert events["items"][0]["properties"] == {"folder": "C:\\u0000dir"}


def test_huge_numbers_come_back_out(client, write_key, api):
    # PostgreSQL's jsonb reads 1.8e19 back as an integer beyond 64 bits.
    for _ in range(2):  # the second identify folds into the stored traits
        response = send(client, write_key, "identify", userId="u1",
                        traits={"big": 1.8446744073709552e19},
                        context={"screen": {"width": 1.8446744073709552e19}})
        assert response.status_code == 200, response.text
    customer = customer_by_user(api, "u1")
    assert float(customer["traits"]["big"]) == 1.8446744073709552e19
    events = api.get(f"/api/v1/customers/{customer['id']}/events").json()["items"]
    assert [float(e["context"]["screen"]["width"]) for e in events] == [1.8446744073709552e19] * 2
