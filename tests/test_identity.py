"""Identity resolution, automatic and manual merges, splits, trait history."""

from __future__ import annotations

import threading
import time

from sqlalchemy import func, select

from clientela.customers.models import Customer, CustomerMerge, IdentityConflict, TraitChange
from clientela.db import session_scope
from clientela.tracking.merging import merge_customers
from tests.helpers import batch, customer_by_user, send


def _identities(customer: dict) -> set[tuple[str, str]]:
    return {(i["kind"], i["value"]) for i in customer["identities"]}


def _live_customers(engine) -> list[Customer]:
    with session_scope(engine, writes=False) as session:
        return list(session.scalars(select(Customer).where(Customer.merged_into_id.is_(None))
                                    .order_by(Customer.id)))


def _timeline(api, customer_id: int) -> list[tuple[str, str | None]]:
    items = api.get(f"/api/v1/customers/{customer_id}/events").json()["items"]
    return [(e["type"], e["event"]) for e in items]


def test_anonymous_browsing_shows_on_the_timeline_after_sign_up(client, write_key, api, engine):
    batch(client, write_key, [
        {"type": "page", "anonymousId": "anon-1", "name": "Home",
         "timestamp": "2026-05-01T10:00:00Z"},
        {"type": "track", "anonymousId": "anon-1", "event": "Product Viewed",
         "timestamp": "2026-05-01T10:01:00Z"},
    ])
    send(client, write_key, "identify", userId="u1", anonymousId="anon-1",
         timestamp="2026-05-01T10:05:00Z", traits={"email": "Maria@Example.COM"})
    send(client, write_key, "track", userId="u1", event="Order Completed",
         timestamp="2026-05-01T10:09:00Z", properties={"order_id": "1", "total": 50})
    customer = customer_by_user(api, "u1")
    assert _identities(customer) == {("anonymous_id", "anon-1"), ("user_id", "u1"),
                                     ("email", "maria@example.com")}
    assert _timeline(api, customer["id"]) == [
        ("track", "Order Completed"), ("identify", None), ("track", "Product Viewed"),
        ("page", "Home")]
    assert customer["first_seen_at"] == "2026-05-01T10:00:00Z"
    assert len(_live_customers(engine)) == 1


def test_identify_links_a_known_user_with_a_new_device(client, write_key, api, engine):
    send(client, write_key, "identify", userId="u1", traits={"firstName": "Ana"})
    send(client, write_key, "page", anonymousId="phone-1", name="Promo")
    send(client, write_key, "identify", userId="u1", anonymousId="phone-1")
    customer = customer_by_user(api, "u1")
    assert _identities(customer) == {("user_id", "u1"), ("anonymous_id", "phone-1")}
    assert customer["aggregates"]["events"]["page"] == 1
    assert len(_live_customers(engine)) == 1
    with session_scope(engine, writes=False) as session:
        merge = session.scalars(select(CustomerMerge)).one()
        assert (merge.kept_id, merge.dropped_id) == (1, 2)  # the older customer survives
        assert merge.reason == "identify named anonymous_id"


def test_alias_merges_previous_id_into_user_id(client, write_key, api, engine):
    send(client, write_key, "track", anonymousId="old-anon", event="Cart Viewed")
    send(client, write_key, "identify", userId="u9", traits={"email": "u9@example.com"})
    send(client, write_key, "alias", previousId="old-anon", userId="u9")
    customer = customer_by_user(api, "u9")
    assert _identities(customer) == {("anonymous_id", "old-anon"), ("user_id", "u9"),
                                     ("email", "u9@example.com")}
    assert customer["id"] == 1
    assert customer["aggregates"]["events"] == {
        "identify": 1, "track": 1, "page": 0, "screen": 0, "group": 0, "alias": 1}
    assert len(_live_customers(engine)) == 1


def test_email_of_another_customer_merges_them(client, write_key, api, engine):
    send(client, write_key, "identify", anonymousId="newsletter-form",
         traits={"email": "joao@example.com", "source": "newsletter"})
    send(client, write_key, "identify", userId="u2", traits={"email": " JOAO@example.com "})
    customer = customer_by_user(api, "u2")
    assert customer["id"] == 1
    assert _identities(customer) == {("anonymous_id", "newsletter-form"),
                                     ("email", "joao@example.com"), ("user_id", "u2")}
    assert customer["traits"]["source"] == "newsletter"
    assert len(_live_customers(engine)) == 1


def test_customers_with_different_user_ids_are_never_merged(client, write_key, api, engine):
    send(client, write_key, "identify", userId="alice", traits={"email": "shared@example.com"})
    send(client, write_key, "identify", userId="bob", traits={"email": "shared@example.com"})
    send(client, write_key, "identify", userId="bob", anonymousId="family-tablet")
    send(client, write_key, "identify", userId="alice", anonymousId="family-tablet")
    alice, bob = customer_by_user(api, "alice"), customer_by_user(api, "bob")
    assert alice["id"] != bob["id"]
    assert _identities(alice) == {("user_id", "alice"), ("email", "shared@example.com")}
    assert _identities(bob) == {("user_id", "bob"), ("anonymous_id", "family-tablet")}
    with session_scope(engine, writes=False) as session:
        rows = session.scalars(select(IdentityConflict).order_by(IdentityConflict.id))
        conflicts = [(c.customer_id, c.other_customer_id, c.kind, c.value) for c in rows]
    assert conflicts == [(bob["id"], alice["id"], "email", "shared@example.com"),
                         (alice["id"], bob["id"], "anonymous_id", "family-tablet")]
    listed = api.get(f"/api/v1/customers/{alice['id']}/conflicts").json()
    assert [c["kind"] for c in listed] == ["email", "anonymous_id"]
    send(client, write_key, "identify", userId="bob", traits={"email": "shared@example.com"})
    with session_scope(engine, writes=False) as session:
        assert len(list(session.scalars(select(IdentityConflict)))) == 2  # recorded once


def test_traits_keep_types_newest_wins_and_history_is_kept(client, write_key, api, engine):
    send(client, write_key, "identify", userId="u1", timestamp="2026-01-02T00:00:00Z",
         traits={"plan": "gold", "score": 10, "vip": True, "firstName": "Ana"})
    send(client, write_key, "identify", userId="u1", timestamp="2026-01-01T00:00:00Z",
         traits={"plan": "silver", "city_size": 3.5})  # older: plan loses, city_size is new
    send(client, write_key, "identify", userId="u1", timestamp="2026-01-03T00:00:00Z",
         traits={"score": "10", "firstName": "Ana"})  # same text, different type: a change
    traits = customer_by_user(api, "u1")["traits"]
    assert traits == {"plan": "gold", "score": "10", "vip": True, "firstName": "Ana",
                      "city_size": 3.5}
    with session_scope(engine, writes=False) as session:
        history = [(t.key, t.old_value, t.value) for t in
                   session.scalars(select(TraitChange).order_by(TraitChange.id))]
    assert history == [("plan", None, "gold"), ("score", None, 10), ("vip", None, True),
                       ("firstName", None, "Ana"), ("city_size", None, 3.5),
                       ("score", 10, "10")]


def test_merge_keeps_the_newest_trait_values(client, write_key, api):
    send(client, write_key, "identify", anonymousId="a1", timestamp="2026-02-01T00:00:00Z",
         traits={"plan": "free", "color": "blue"})
    send(client, write_key, "identify", userId="u1", timestamp="2026-01-01T00:00:00Z",
         traits={"plan": "pro", "size": "M"})
    send(client, write_key, "identify", userId="u1", anonymousId="a1",
         timestamp="2026-03-01T00:00:00Z")
    assert customer_by_user(api, "u1")["traits"] == {"plan": "free", "color": "blue",
                                                     "size": "M"}


def test_manual_merge_and_unmerge(client, write_key, api, engine):
    send(client, write_key, "identify", userId="u1", timestamp="2026-01-01T00:00:00Z",
         traits={"email": "one@example.com", "plan": "gold"})
    send(client, write_key, "track", userId="u1", event="Order Completed",
         timestamp="2026-01-02T00:00:00Z", properties={"order_id": "1", "total": 100})
    send(client, write_key, "identify", userId="u2", timestamp="2026-02-01T00:00:00Z",
         traits={"email": "two@example.com", "plan": "silver", "phone": "(11) 98765-4321"})
    send(client, write_key, "track", userId="u2", event="Order Completed",
         timestamp="2026-02-02T00:00:00Z", properties={"order_id": "2", "total": 40})
    one, two = customer_by_user(api, "u1"), customer_by_user(api, "u2")
    api.post(f"/api/v1/customers/{two['id']}/tags", json={"tags": ["vip"]})
    api.patch(f"/api/v1/customers/{two['id']}",
              json={"consent": {"email_marketing": "subscribed"}})

    merged = api.post(f"/api/v1/customers/{two['id']}/merge",
                      json={"customer_id": one["id"], "reason": "same person, support call"})
    assert merged.status_code == 200, merged.text
    assert (merged.json()["kept_id"], merged.json()["dropped_id"]) == (one["id"], two["id"])
    kept = api.get(f"/api/v1/customers/{one['id']}").json()
    assert _identities(kept) == {("user_id", "u1"), ("email", "one@example.com"),
                                 ("user_id", "u2"), ("email", "two@example.com"),
                                 ("phone", "+5511987654321")}
    assert kept["aggregates"]["orders_count"] == 2
    assert kept["aggregates"]["revenue_total"] == 140.0
    assert kept["traits"]["plan"] == "silver"
    assert kept["tags"] == ["vip"]
    assert kept["consent"]["email_marketing"] == "subscribed"
    gone = api.get(f"/api/v1/customers/{two['id']}")
    assert gone.status_code == 404
    assert gone.json() == {"code": "customer_merged",
                           "message": f"customer {two['id']}: merged into customer {one['id']}"}
    again = api.post(f"/api/v1/customers/{one['id']}/merge", json={"customer_id": two["id"]})
    assert (again.status_code, again.json()["id"]) == (200, merged.json()["id"])  # idempotent

    split = api.post(f"/api/v1/merges/{merged.json()['id']}/unmerge")
    assert split.status_code == 200, split.text
    assert split.json()["undone_at"] is not None
    one_after, two_after = customer_by_user(api, "u1"), customer_by_user(api, "u2")
    assert _identities(one_after) == _identities(one)
    assert _identities(two_after) == _identities(two)
    assert one_after["aggregates"]["revenue_total"] == 100.0
    assert two_after["aggregates"]["revenue_total"] == 40.0
    assert one_after["traits"]["plan"] == "gold"
    assert two_after["traits"]["plan"] == "silver"
    assert (one_after["tags"], two_after["tags"]) == ([], ["vip"])
    assert one_after["consent"]["email_marketing"] == "unknown"
    assert two_after["consent"]["email_marketing"] == "subscribed"
    assert [e["event"] for e in api.get(f"/api/v1/customers/{two['id']}/events").json()["items"]
            ] == ["Order Completed", None]
    twice = api.post(f"/api/v1/merges/{merged.json()['id']}/unmerge")
    assert (twice.status_code, twice.json()["code"]) == (409, "merge_undone")
    # After the split, u2's new events go to u2 again.
    send(client, write_key, "track", userId="u2", event="Came Back")
    assert customer_by_user(api, "u2")["aggregates"]["events"]["track"] == 2


def test_merge_errors_name_the_problem(api, client, write_key):
    send(client, write_key, "identify", userId="u1")
    same = api.post("/api/v1/customers/1/merge", json={"customer_id": 1})
    assert same.status_code == 400
    assert same.json() == {"code": "same_customer",
                           "message": "customer_id: cannot merge a customer with itself"}
    missing = api.post("/api/v1/customers/1/merge", json={"customer_id": 999})
    assert (missing.status_code, missing.json()["code"]) == (404, "customer_not_found")
    no_merge = api.post("/api/v1/merges/77/unmerge")
    assert (no_merge.status_code, no_merge.json()["code"]) == (404, "merge_not_found")
    bad = api.post("/api/v1/customers/1/merge", json={"customer_id": "two"})
    assert bad.status_code == 422
    assert bad.json()["code"] == "invalid"
    assert bad.json()["message"].startswith("customer_id: ")


def test_merges_within_one_batch_are_consistent(client, write_key, api, engine):
    response = batch(client, write_key, [
        {"type": "page", "anonymousId": "a1", "messageId": "1"},
        {"type": "page", "anonymousId": "a2", "messageId": "2"},
        {"type": "identify", "userId": "u1", "anonymousId": "a2", "messageId": "3",
         "traits": {"email": "x@example.com"}},
        {"type": "identify", "anonymousId": "a1", "messageId": "4",
         "traits": {"email": "x@example.com"}},
        {"type": "track", "anonymousId": "a1", "event": "Order Completed", "messageId": "5",
         "properties": {"order_id": "9", "total": 12}},
    ])
    assert response.json()["rejected"] == []
    customer = customer_by_user(api, "u1")
    assert customer["id"] == 1
    assert customer["aggregates"]["events"]["page"] == 2
    assert customer["aggregates"]["events_total"] == 5
    assert customer["aggregates"]["revenue_total"] == 12.0
    assert len(_live_customers(engine)) == 1


def test_a_split_merge_stays_split_when_both_ids_come_again(client, write_key, api, engine):
    send(client, write_key, "identify", userId="u1", traits={"firstName": "Ana"})
    send(client, write_key, "page", anonymousId="a1", name="Home")
    send(client, write_key, "track", userId="u1", anonymousId="a1", event="Signed In")
    with session_scope(engine, writes=False) as session:
        merge_id = session.scalars(select(CustomerMerge.id)).one()
    assert api.post(f"/api/v1/merges/{merge_id}/unmerge").status_code == 200
    send(client, write_key, "track", userId="u1", anonymousId="a1", event="Again")
    assert len(_live_customers(engine)) == 2
    with session_scope(engine, writes=False) as session:
        assert len(list(session.scalars(select(CustomerMerge)))) == 1
        kinds = [(c.kind, c.reason) for c in session.scalars(
            select(IdentityConflict).order_by(IdentityConflict.id))]
    assert kinds == [("split", f"merge {merge_id} was split"),
                     ("anonymous_id", "track named anonymous_id: a split merge keeps them "
                                      "apart")]
    assert customer_by_user(api, "u1")["aggregates"]["events"]["track"] == 2


def test_alias_conflict_names_the_kind_it_found(client, write_key, api, engine):
    send(client, write_key, "identify", userId="bob", anonymousId="tablet")
    send(client, write_key, "identify", userId="alice")
    send(client, write_key, "alias", userId="alice", previousId="tablet")
    with session_scope(engine, writes=False) as session:
        conflict = session.scalars(select(IdentityConflict)).one()
    assert (conflict.kind, conflict.value, conflict.reason) == (
        "anonymous_id", "tablet", "alias: both customers have their own user id")


def test_a_new_device_naming_a_known_email_joins_without_a_merge(client, write_key, api,
                                                                  engine):
    send(client, write_key, "identify", userId="u1", traits={"email": "ana@example.com"})
    send(client, write_key, "identify", anonymousId="new-phone",
         traits={"email": "ana@example.com"})
    assert _identities(customer_by_user(api, "u1")) == {
        ("user_id", "u1"), ("email", "ana@example.com"), ("anonymous_id", "new-phone")}
    with session_scope(engine, writes=False) as session:
        assert list(session.scalars(select(CustomerMerge))) == []
        assert session.scalar(select(func.count()).select_from(Customer)) == 1


def test_an_event_written_during_a_merge_lands_on_the_survivor(client, write_key, api,
                                                                engine, settings):
    send(client, write_key, "identify", userId="u1")
    send(client, write_key, "page", anonymousId="a1", name="Before")
    answers: list[int] = []
    with session_scope(engine) as session:  # a merge in flight, holding its locks
        merge_customers(session=session, first=1, second=2, reason="test",
                        default_region="BR")
        late = threading.Thread(target=lambda: answers.append(
            send(client, write_key, "page", anonymousId="a1", name="During").status_code))
        late.start()
        time.sleep(0.5)
    late.join(10)
    assert answers == [200]
    customer = customer_by_user(api, "u1")
    assert customer["aggregates"]["events"]["page"] == 2
    assert [e["event"] for e in api.get("/api/v1/customers/1/events").json()["items"]] == [
        "During", "Before", None]


def test_in_one_write_a_merge_keeps_the_user_ids_of_both_customers(client, write_key, api):
    send(client, write_key, "page", anonymousId="anon-old")
    send(client, write_key, "identify", userId="u2", traits={"email": "x@y.com"})
    answer = batch(client, write_key, [
        {"type": "identify", "anonymousId": "anon-old", "traits": {"email": "x@y.com"}},
        {"type": "identify", "userId": "u3", "anonymousId": "anon-old"},
    ])
    assert answer.json() == {"success": True, "rejected": []}
    merged, newcomer = customer_by_user(api, "u2"), customer_by_user(api, "u3")
    assert merged["id"] != newcomer["id"]  # anon-old's customer already had a user id
    assert _identities(merged) == {("anonymous_id", "anon-old"), ("user_id", "u2"),
                                   ("email", "x@y.com")}
    assert _identities(newcomer) == {("user_id", "u3")}
