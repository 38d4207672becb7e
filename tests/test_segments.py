"""Segment rules: every condition kind, with exact members, the same on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import select, update

from clientela.core.errors import InvalidInput
from clientela.customers import service as customers
from clientela.customers.models import Customer, Identity
from clientela.db import build_engine, session_scope
from clientela.segments import service
from clientela.segments.models import SegmentChange, SegmentMember, SegmentSize
from clientela.segments.tasks import recompute_segments, refresh_segments
from tests.conftest import _settings
from tests.helpers import basic

NOW = datetime(2026, 11, 22, 12, 0, tzinfo=UTC)


def _at(days: float) -> str:
    return (NOW - timedelta(days=days)).isoformat()


def _track(user: dict[str, str], event: str, days: float, number: int,
           **properties: Any) -> dict[str, Any]:
    return {"type": "track", **user, "event": event, "timestamp": _at(days),
            "messageId": f"{next(iter(user.values()))}-{event}-{number}",
            "properties": properties}


def _order(user: dict[str, str], order_id: str, days: float, total: float,
           category: str, brand: str) -> dict[str, Any]:
    return _track(user, "Order Completed", days, int(order_id[2:]), order_id=order_id, total=total,
                  currency="BRL", products=[{"product_id": f"P-{order_id}", "price": total,
                                             "quantity": 1, "category": category,
                                             "brand": brand}])


ANA, BRUNO, CARLA = {"userId": "ana"}, {"userId": "bruno"}, {"userId": "carla"}
DORA = {"anonymousId": "dora-device"}
CALLS = [
    {"type": "identify", "userId": "ana", "timestamp": _at(60), "messageId": "ana-id",
     "traits": {"email": "ana@example.com", "firstName": "Ana",
                "address": {"city": "São Paulo", "country": "BR"}, "plan": "pro", "age": 30,
                "vip": True}},
    {"type": "identify", "userId": "bruno", "timestamp": _at(200), "messageId": "bruno-id",
     "traits": {"email": "bruno@example.com", "address": {"city": "Rio de Janeiro"},
                "plan": "free", "age": "thirty"}},
    {"type": "identify", "userId": "carla", "timestamp": _at(20), "messageId": "carla-id",
     "traits": {"email": "carla@example.com", "age": 45}},
    _order(ANA, "A-1", 40, 50.00, "Roupas > Camisetas", "Maré"),
    _order(ANA, "A-2", 10, 100.00, "Roupas", "Maré"),
    _order(BRUNO, "B-1", 100, 300.00, "Calçados > Tênis", "Garoa"),
    *(_track(ANA, "Product Viewed", 1 + n, n, category="shoes") for n in range(3)),
    _track(ANA, "Email Opened", 2, 0),
    _track(BRUNO, "Product Viewed", 50, 0, category="bags"),
    _track(BRUNO, "Product Added", 1, 0, category="bags", price=80),
    _track(DORA, "Product Viewed", 3, 0, category="shoes"),
    # Categories that are not text: a number, and text inside an array.
    _track(CARLA, "Product Viewed", 5, 0, category=5),
    _track(CARLA, "Product Viewed", 6, 1, category=["shoes"]),
]


@pytest.fixture
def people(client, engine, write_key) -> dict[str, int]:
    answer = client.post("/v1/batch", json={"batch": CALLS}, headers=basic(write_key))
    assert answer.status_code == 200 and answer.json()["rejected"] == [], answer.text
    with session_scope(engine) as session:
        ids = dict(session.execute(select(Identity.value, Identity.customer_id).where(
            Identity.kind.in_(("user_id", "anonymous_id")))).tuples().all())
        found = {"ana": ids["ana"], "bruno": ids["bruno"], "carla": ids["carla"],
                 "dora": ids["dora-device"]}
        customers.add_tags(session=session, customer_id=found["ana"], tags=["VIP"])
        customers.add_tags(session=session, customer_id=found["carla"], tags=["newsletter"])
        customers.set_email_consent(session=session, customer_id=found["ana"],
                                    state="subscribed", source="test")
        customers.set_email_consent(session=session, customer_id=found["carla"],
                                    state="unsubscribed", source="test")
        # Scores as the RFM and prediction jobs would store them.
        session.execute(update(Customer).where(Customer.id == found["ana"]).values(
            rfm_group="Champions", rfm_recency=5, p_alive=0.9, churn_risk=0.1, inactive=False,
            predicted_clv_cents=123_45))
        session.execute(update(Customer).where(Customer.id == found["bruno"]).values(
            rfm_group="At risk", rfm_recency=1, p_alive=0.3, churn_risk=0.7, inactive=True,
            predicted_clv_cents=10_00))
    return found


def _members(engine, settings, rule: Any, people: dict[str, int]) -> set[str]:
    names = {customer_id: name for name, customer_id in people.items()}
    with session_scope(engine, writes=False) as session:
        ids = session.scalars(service.members_of(session=session, rule=rule, now=NOW,
                                                 currency=settings.store_currency))
        return {names[customer_id] for customer_id in ids}


def _field(field: str, op: str, value: Any) -> dict[str, Any]:
    return {"field": field, "op": op, "value": value}


def _viewed(**extra: Any) -> dict[str, Any]:
    return {"event": "Product Viewed",
            "where": [{"field": "category", "op": "eq", "value": "shoes"}], **extra}


CASES: list[tuple[str, Any, set[str]]] = [
    ("consent", _field("email_marketing", "eq", "subscribed"), {"ana"}),
    ("consent in", _field("email_marketing", "in", ["unsubscribed", "unknown"]),
     {"bruno", "carla", "dora"}),
    ("text contains, any case", _field("city", "contains", "PAULO"), {"ana"}),
    ("text starts with, accents too", _field("city", "starts_with", "SÃO"), {"ana"}),
    ("text ne has a value", _field("city", "ne", "São Paulo"), {"bruno"}),
    ("not eq is everyone else", {"not": _field("city", "eq", "São Paulo")},
     {"bruno", "carla", "dora"}),
    ("exists", _field("email", "exists", False), {"dora"}),
    ("trait text", _field("traits.plan", "eq", "pro"), {"ana"}),
    ("trait number, text values ignored", _field("traits.age", "gt", 40), {"carla"}),
    ("trait number between", _field("traits.age", "between", [25, 50]), {"ana", "carla"}),
    ("trait text compare", _field("traits.age", "eq", "thirty"), {"bruno"}),
    ("trait boolean", _field("traits.vip", "eq", True), {"ana"}),
    ("trait exists", _field("traits.age", "exists", True), {"ana", "bruno", "carla"}),
    ("trait not contains", _field("traits.plan", "not_contains", "RE"), {"ana"}),
    ("orders count", _field("orders_count", "gte", 2), {"ana"}),
    ("revenue in reais", _field("revenue", "gt", 200), {"bruno"}),
    ("average order value", _field("average_order_value", "between", [70, 80]), {"ana"}),
    ("days since last order gt", _field("days_since_last_order", "gt", 30), {"bruno"}),
    ("days since last order lte", _field("days_since_last_order", "lte", 10), {"ana"}),
    ("days since last order eq", _field("days_since_last_order", "eq", 100), {"bruno"}),
    ("first order within", _field("first_order_at", "within_last_days", 45), {"ana"}),
    ("last seen before", _field("last_seen_at", "lt", "2026-11-01"), set()),
    ("created before", _field("first_seen_at", "lt", _at(150)), {"bruno"}),
    ("viewed shoes twice in 30 days", _viewed(count={"op": "gte", "value": 2},
                                              within_days=30), {"ana"}),
    ("viewed shoes", _viewed(), {"ana", "dora"}),
    ("viewed shoes exactly once", _viewed(count={"op": "eq", "value": 1}), {"dora"}),
    ("viewed shoes at most once", _viewed(count={"op": "lte", "value": 1}),
     {"bruno", "carla", "dora"}),
    ("never opened an e-mail", {"event": "Email Opened", "count": {"op": "eq", "value": 0}},
     {"bruno", "carla", "dora"}),
    ("viewed between dates", {"event": "Product Viewed",
                              "between": [_at(60)[:10], _at(40)[:10]]}, {"bruno"}),
    ("added to cart and did not order",
     {"all": [{"event": "Product Added", "within_days": 7},
              {"not": {"event": "Order Completed", "within_days": 7}}]}, {"bruno"}),
    ("property in", _viewed(where=[_field("category", "in", ["shoes", "bags"])]),
     {"ana", "bruno", "dora"}),
    ("property text never equals a number", _viewed(where=[_field("category", "eq", "5")]),
     set()),
    ("property number equals a number", _viewed(where=[_field("category", "eq", 5)]),
     {"carla"}),
    ("did not view, of everyone", {"not": {"event": "Product Viewed", "within_days": 30}},
     {"bruno"}),
    ("property number", {"event": "Product Added",
                         "where": [_field("price", "gte", 50)]}, {"bruno"}),
    ("bought a category (and those below it)", {"bought": {"category": "Calçados"}},
     {"bruno"}),
    ("bought a category exactly", {"bought": {"category": "Roupas"}}, {"ana"}),
    ("bought a brand lately", {"bought": {"brand": "Garoa"}, "within_days": 30}, set()),
    ("bought a product", {"bought": {"product": "P-A-2"}}, {"ana"}),
    ("tag (given as VIP)", {"tag": "vip"}, {"ana"}),
    ("tag named in capitals", {"tag": "Vip"}, {"ana"}),
    ("no tag", {"tag": "vip", "has": False}, {"bruno", "carla", "dora"}),
    ("rfm group", {"rfm_group": "Champions"}, {"ana"}),
    ("rfm score", _field("rfm_recency", "lte", 2), {"bruno"}),
    ("churn risk", _field("churn_risk", "gte", 0.5), {"bruno"}),
    ("inactive", _field("inactive", "eq", True), {"bruno"}),
    ("predicted value", _field("predicted_clv", "gte", 100), {"ana"}),
    ("any of, with not", {"any": [{"tag": "vip"},
                                  {"not": _field("email", "exists", True)}]}, {"ana", "dora"}),
    # Column tests on unknown values (no RFM group yet) inside an OR or a NOT.
    ("any of (a group and not an action) or a tag",
     {"any": [{"all": [{"rfm_group": "At risk"},
                       {"not": {"event": "Email Opened", "within_days": 7}}]},
              {"tag": "newsletter"}]}, {"bruno", "carla"}),
    ("not (an unknown score and an action)",
     {"not": {"all": [_field("rfm_recency", "lte", 2), {"event": "Product Viewed"}]}},
     {"ana", "carla", "dora"}),
    ("all of nothing is everyone", {"all": []}, {"ana", "bruno", "carla", "dora"}),
    ("any of nothing is no one", {"any": []}, set()),
]


@pytest.mark.parametrize(("rule", "expected"), [case[1:] for case in CASES],
                         ids=[case[0] for case in CASES])
def test_each_condition_kind_finds_exactly_its_members(engine, settings, people, rule,
                                                        expected):
    assert _members(engine, settings, rule, people) == expected


def test_a_segment_inside_another_and_recomputing_records_who_entered_and_left(
        engine, settings, people):
    currency = settings.store_currency
    with session_scope(engine) as session:
        buyers = service.create_segment(session=session, name="Buyers",
                                        rule=_field("orders_count", "gte", 1),
                                        description=None, now=NOW, currency=currency)
        rio = service.create_segment(
            session=session, name="Buyers in Rio", description="for the Rio store",
            rule={"all": [{"segment": buyers.id}, _field("city", "eq", "Rio de Janeiro")]},
            now=NOW, currency=currency)
        buyers_id, rio_id = buyers.id, rio.id
    assert _members(engine, settings, {"segment": rio_id}, people) == {"bruno"}
    with session_scope(engine) as session:
        first = service.recompute(session=session, segment_id=buyers_id, now=NOW,
                                  currency=currency)
        assert (first.size, first.entered, first.left) == (2, 2, 0)
        # Ana's orders are cancelled away; Carla buys.
        session.execute(update(Customer).where(Customer.id == people["ana"])
                        .values(orders_count=0))
        session.execute(update(Customer).where(Customer.id == people["carla"])
                        .values(orders_count=1))
        later = NOW + timedelta(hours=1)
        second = service.recompute(session=session, segment_id=buyers_id, now=later,
                                   currency=currency)
        assert (second.size, second.entered, second.left) == (2, 1, 1)
        changes = session.execute(select(SegmentChange.customer_id, SegmentChange.change,
                                         SegmentChange.at).order_by(SegmentChange.id)).all()
        assert [(c, change, at) for c, change, at in changes] == [
            *sorted([(people["ana"], "entered", NOW), (people["bruno"], "entered", NOW)]),
            (people["carla"], "entered", later), (people["ana"], "left", later)]
        sizes = session.execute(select(SegmentSize.at, SegmentSize.size)
                                .order_by(SegmentSize.at)).all()
        assert [tuple(row) for row in sizes] == [(NOW, 2), (later, 2)]
        with pytest.raises(InvalidInput, match=r"segment .* includes itself"):
            service.update_segment(session=session, segment_id=buyers_id, now=NOW,
                                   currency=currency, rule={"segment": rio_id})


BAD_RULES = [
    ({"field": "traits.x'); DROP TABLE customers;--", "op": "eq", "value": 1},
     "rule.field: a key path is up to 5 keys of letters, digits, '_' or '-', joined by dots"),
    ({"field": "id; DROP TABLE customers", "op": "eq", "value": 1},
     "rule.field: unknown field 'id; DROP TABLE customers'"),
    ({"all": [{"field": "orders_count", "op": "contains", "value": 1}]},
     "rule.all[0].op: must be one of eq, ne, gt, gte, lt, lte, between, in, exists"),
    ({"field": "revenue", "op": "gt", "value": "lots"}, "rule.value: must be a number"),
    ({"event": "Viewed", "count": {"op": "gte", "value": -1}},
     "rule.count.value: must be a whole number from 0 to 100000"),
    ({"event": "Viewed", "within_days": 3, "between": ["2026-01-01", "2026-02-01"]},
     "rule.between: give within_days or between, not both"),
    ({"rfm_group": "Heroes"}, "rule.rfm_group: must be one of Champions"),
    ({"segment": 999}, "rule: there is no segment 999"),
    ({"any": [{"tag": ""}]}, "rule.any[0].tag: must be a non-empty text"),
    ({"nothing": 1}, "rule: must have one of the keys all, any, not, field"),
    ([1, 2], "rule: must be an object"),
    ({"field": "traits.size", "op": "in", "value": ["M", 42]},
     "rule.value: the values must all be texts, all numbers or all true/false"),
    ({"field": "traits.size", "op": "between", "value": ["M", 42]},
     "rule.value: low and high must be two numbers, two texts or two dates"),
    ({"field": "last_order_at", "op": "gt", "value": "yesterday"},
     "rule.value: must be an ISO-8601 date"),
]


@pytest.mark.parametrize(("rule", "message"), BAD_RULES)
def test_bad_rules_are_named_where_and_why(engine, settings, rule, message):
    with session_scope(engine, writes=False) as session, \
            pytest.raises(InvalidInput) as error:
        service.members_of(session=session, rule=rule, now=NOW,
                           currency=settings.store_currency)
    assert error.value.code == "invalid_rule"
    assert error.value.message.startswith(message), error.value.message


def test_the_api_saves_previews_lists_and_exports_segments(api, people):
    preview = api.post("/api/v1/segments/preview",
                       json={"rule": {"field": "orders_count", "op": "gte", "value": 1},
                             "limit": 1})
    assert preview.status_code == 200, preview.text
    body = preview.json()
    assert body["count"] == 2
    assert [(item["id"], item["email"], item["orders_count"], item["revenue_total"])
            for item in body["items"]] == [(people["ana"], "ana@example.com", 2, 150.0)]
    bad = api.post("/api/v1/segments/preview", json={"rule": {"field": "nope", "op": "eq",
                                                              "value": 1}})
    assert bad.status_code == 400
    assert bad.json()["code"] == "invalid_rule"
    assert bad.json()["message"].startswith("rule.field: unknown field 'nope'")
    created = api.post("/api/v1/segments", json={
        "name": "Buyers", "rule": {"field": "orders_count", "op": "gte", "value": 1}})
    assert created.status_code == 201, created.text
    segment = created.json()
    assert (segment["name"], segment["size"]) == ("Buyers", 2)
    again = api.post("/api/v1/segments", json={"name": "Buyers", "rule": {"all": []}})
    assert again.status_code == 409 and again.json()["code"] == "segment_exists"
    first = api.get(f"/api/v1/segments/{segment['id']}/members", params={"limit": 1}).json()
    assert [item["id"] for item in first["items"]] == [people["ana"]]
    rest = api.get(f"/api/v1/segments/{segment['id']}/members",
                   params={"cursor": first["next_cursor"]}).json()
    assert [item["id"] for item in rest["items"]] == [people["bruno"]]
    assert rest["next_cursor"] is None
    exported = api.get(f"/api/v1/segments/{segment['id']}/members.csv")
    assert exported.status_code == 200
    assert exported.headers["content-type"].startswith("text/csv")
    lines = exported.text.splitlines()
    assert lines[0] == ("id,email,first_name,last_name,city,country,email_marketing,"
                        "orders_count,revenue_total,last_order_at,rfm_group")
    assert [line.split(",")[:2] for line in lines[1:]] == [
        [str(people["ana"]), "ana@example.com"], [str(people["bruno"]), "bruno@example.com"]]
    changed = api.patch(f"/api/v1/segments/{segment['id']}", json={
        "rule": {"field": "orders_count", "op": "gte", "value": 2}})
    assert changed.json()["size"] == 1
    sizes = api.get(f"/api/v1/segments/{segment['id']}/sizes").json()
    assert [point["size"] for point in sizes] == [2, 1]
    inner = api.post("/api/v1/segments", json={
        "name": "Loyal buyers", "rule": {"all": [{"segment": segment["id"]}, {"tag": "vip"}]}})
    assert inner.json()["size"] == 1
    refused = api.delete(f"/api/v1/segments/{segment['id']}")
    assert refused.status_code == 409 and refused.json()["code"] == "segment_in_use"
    assert api.delete(f"/api/v1/segments/{inner.json()['id']}").status_code == 204
    assert api.delete(f"/api/v1/segments/{segment['id']}").status_code == 204
    assert api.get("/api/v1/segments").json() == []
    assert api.get(f"/api/v1/segments/{segment['id']}").status_code == 404


def test_new_events_move_customers_in_and_out_within_the_minute(engine, settings, client,
                                                                write_key, people):
    with session_scope(engine) as session:
        openers = service.create_segment(
            session=session, name="Openers", description=None, now=NOW,
            currency=settings.store_currency,
            rule={"event": "Email Opened", "within_days": 36500})
        untouched = service.create_segment(
            session=session, name="Subscribed", description=None, now=NOW,
            currency=settings.store_currency, rule=_field("email_marketing", "eq", "subscribed"))
        service.recompute(session=session, segment_id=openers.id, now=NOW,
                          currency=settings.store_currency)
        openers_id, untouched_id = openers.id, untouched.id
    assert refresh_segments(engine=engine, settings=settings) == 0  # nothing new
    calls = [_track(BRUNO, "Email Opened", 0.5, 7), _track(DORA, "Product Viewed", 0.2, 7)]
    answer = client.post("/v1/batch", json={"batch": calls}, headers=basic(write_key))
    assert answer.status_code == 200, answer.text
    assert refresh_segments(engine=engine, settings=settings) == 1
    with session_scope(engine, writes=False) as session:
        members = set(session.scalars(select(SegmentMember.customer_id).where(
            SegmentMember.segment_id == openers_id)))
        assert members == {people["ana"], people["bruno"]}
        assert service.get_segment(session=session, segment_id=openers_id).size == 2
        changes = session.execute(select(SegmentChange.customer_id, SegmentChange.change)
                                  .where(SegmentChange.segment_id == openers_id)
                                  .order_by(SegmentChange.id)).all()
        assert [tuple(row) for row in changes] == [(people["ana"], "entered"),
                                                   (people["bruno"], "entered")]
        # A segment never computed is left to the full recompute.
        assert service.get_segment(session=session, segment_id=untouched_id).size is None
    assert refresh_segments(engine=engine, settings=settings) == 0
    assert recompute_segments(engine=engine, settings=settings) == 1  # Ana into Subscribed


def _plan(engine, rule: Any) -> str:
    with session_scope(engine, writes=False) as session:
        query = service.members_of(session=session, rule=rule, now=NOW, currency="BRL")
        compiled = query.compile(dialect=engine.dialect)
        rows = session.connection().exec_driver_sql(
            f"EXPLAIN QUERY PLAN {compiled}", tuple(compiled.params[name] for name in
                                                    compiled.positiontup or ()))
        return "\n".join(row[3] for row in rows)


def test_on_sqlite_indexes_answer_segments_without_walking_every_event(sqlite_template, tmp_path):
    path = tmp_path / "clientela.db"
    path.write_bytes(sqlite_template.read_bytes())
    engine = build_engine(_settings(f"sqlite:///{path}", tmp_path))
    try:
        # A text property the events index by: read from its own index.
        assert "USING INDEX ix_events_property_category (<expr>=? AND event=? AND timestamp>?)" \
            in _plan(engine, _viewed(within_days=7))
        # Who did something: the (event, time) index alone, with no visit to the events.
        assert "USING COVERING INDEX ix_events_event_time (event=? AND timestamp>?)" \
            in _plan(engine, {"event": "Email Opened", "within_days": 7})
        # Nearly everyone is live: a plain scan, not the merged_into_id index.
        assert _plan(engine, _field("city", "eq", "Rio")).splitlines() == ["SCAN customers"]
        # "did not" after narrowing conditions: one look-up per customer left.
        narrowed = _plan(engine, {"all": [_field("city", "eq", "Rio"), {
            "not": {"event": "Email Opened", "within_days": 7}}]})
        assert "CORRELATED SCALAR SUBQUERY" in narrowed
        assert "USING INDEX ix_events_customer_time (customer_id=? AND timestamp>?)" in narrowed
    finally:
        engine.dispose()
