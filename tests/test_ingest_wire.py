"""The frames between HTTP workers and the ingestion writer process carry calls unchanged."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from clientela.commerce.ecommerce import Change, Line
from clientela.core.errors import InvalidInput, Overloaded, StorageUnavailable
from clientela.ingest import wire
from clientela.tracking.service import Recorded, validated_batch

RECEIVED = datetime(2026, 11, 22, 12, 0, 0, 123456, tzinfo=UTC)

CALLS = [
    {"type": "identify", "userId": "u-1", "anonymousId": "a-1", "messageId": "m-1",
     "timestamp": "2026-11-22T11:59:58.5-03:00",
     "traits": {"email": "Ana@Example.com", "nested": {"list": [1, 2.5, None, True]},
                "big": 18446744073709551615, "name": "Ána ✓"},
     "context": {"locale": "pt-BR", "ip": "203.0.113.9"}},
    {"type": "track", "anonymousId": "a-2", "event": "Order Completed", "messageId": "m-2",
     "properties": {"order_id": 991, "total": "129.90", "currency": "usd",
                    "products": [{"sku": "X", "price": 64.95, "quantity": 2,
                                  "category": ["Shoes", "Running"]}]}},
    {"type": "track", "userId": "u-3", "event": "Order Refunded", "messageId": "m-3",
     "properties": {"order_id": "o-7"}},
    {"type": "alias", "userId": "u-4", "previousId": "a-4", "messageId": "m-4"},
    {"type": "page", "anonymousId": "a-5", "name": "Home", "messageId": "m-5",
     "originalTimestamp": "2026-11-22T11:00:00Z"},
]


def _events():
    events, rejected = validated_batch({"batch": CALLS, "sentAt": "2026-11-22T11:00:01Z"},
                                       received_at=RECEIVED, body_bytes=1000, currency="BRL")
    assert rejected == []
    return events


def test_calls_come_back_equal_with_the_values_the_writer_reads():
    events = _events()
    decoded = wire.decode_events(wire.encode_events(events))
    assert decoded == events
    identify, order, refund, alias, page = decoded
    assert identify.traits["email"] == "Ana@Example.com"
    assert identify.traits["big"] == 18446744073709551615
    assert identify.locale == "pt-BR"
    assert identify.timestamp == datetime(2026, 11, 22, 14, 59, 58, 500000, tzinfo=UTC) \
        + (RECEIVED - datetime(2026, 11, 22, 11, 0, 1, tzinfo=UTC))
    assert order.commerce == Change(
        event="Order Completed", currency="USD", order_id="991", total_cents=12990,
        lines=(Line(sku="X", quantity=2, price_cents=6495, category="Shoes > Running"),))
    assert refund.commerce == Change(event="Order Refunded", order_id="o-7")
    assert alias.previous_id == "a-4"
    assert (page.traits, page.locale, page.commerce) == ({}, None, None)


def test_a_request_frame_names_its_job_source_and_number_of_calls():
    events = _events()
    frame = wire.encode_request(41, 7, events)
    (length,) = wire.LENGTH.unpack_from(frame)
    assert length == len(frame) - wire.LENGTH.size
    job_id, source_id, count, payload = wire.decode_request(frame[wire.LENGTH.size:])
    assert (job_id, source_id, count) == (41, 7, 5)
    assert wire.decode_events(payload) == events


@pytest.mark.parametrize(("result", "error", "expected"), [
    (Recorded(stored=3, duplicates=2), None, Recorded(stored=3, duplicates=2)),
    (None, Overloaded("ingestion queue is full"), Overloaded("ingestion queue is full")),
    (None, StorageUnavailable("the database is unavailable"),
     StorageUnavailable("the database is unavailable")),
    (None, InvalidInput("body: larger than 9 bytes", code="payload_too_large"),
     InvalidInput("body: larger than 9 bytes", code="payload_too_large")),
    (None, ZeroDivisionError("boom"), RuntimeError("the ingestion writer failed: boom")),
])
def test_a_reply_frame_gives_back_the_outcome(result, error, expected):
    frame = wire.encode_reply(99, result, error)
    job_id, outcome = wire.decode_reply(frame[wire.LENGTH.size:])
    assert job_id == 99
    assert type(outcome) is type(expected)
    if isinstance(expected, Recorded):
        assert outcome == expected
    else:
        assert str(outcome) == str(expected)
        assert getattr(outcome, "code", None) == getattr(expected, "code", None)


def test_changes_come_back_equal_whether_remembered_or_not():
    views = [{"type": "track", "anonymousId": f"a-{n}", "event": "Product Viewed",
              "messageId": f"v-{n}", "properties": {"product_id": "P1", "price": 10.5}}
             for n in range(3)]
    order = {"type": "track", "anonymousId": "a-9", "event": "Order Completed",
             "messageId": "o-1", "properties": {"order_id": "o-1", "products": [
                 {"product_id": f"P{n}", "name": "x" * 40, "price": 1} for n in range(60)]}}
    events, rejected = validated_batch({"batch": [*views, order]}, received_at=RECEIVED,
                                       body_bytes=9000, currency="BRL")
    assert rejected == []
    decoded = wire.decode_events(wire.encode_events(events))
    assert decoded == events
    assert decoded[0].commerce == Change(event="Product Viewed", lines=(
        Line(product_id="P1", price_cents=1050),))
    assert decoded[0].commerce is decoded[2].commerce  # read once, shared: it is immutable
    assert len(decoded[3].commerce.lines) == 60
