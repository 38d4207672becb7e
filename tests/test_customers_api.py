"""/api/v1/customers: auth, listing, search, pagination, upsert, changes, tags, timeline."""

from __future__ import annotations

from tests.helpers import batch, send


def _seed(client, write_key) -> None:
    people = [
        ("u1", "Ana", "Souza", "ana@example.com", "BR", "2026-01-01T00:00:00Z", 3),
        ("u2", "Bruno", "Lima", "bruno@example.com", "BR", "2026-01-02T00:00:00Z", 1),
        ("u3", "Carla", "Souza", "carla@example.org", "PT", "2026-01-03T00:00:00Z", 0),
        ("u4", "Diego", "Costa", "diego@example.com", "br", "2026-01-04T00:00:00Z", 2),
    ]
    calls = []
    for user, first, last, email, country, at, orders in people:
        calls.append({"type": "identify", "userId": user, "timestamp": at, "traits": {
            "firstName": first, "lastName": last, "email": email,
            "address": {"country": country}, "phone": f"+55119{len(calls):08d}"}})
        calls += [{"type": "track", "userId": user, "event": "Order Completed", "timestamp": at,
                   "properties": {"order_id": f"{user}-{n}", "total": 10 * (n + 1)}}
                  for n in range(orders)]
    assert batch(client, write_key, calls).json()["rejected"] == []


def _users(page: dict) -> list[str]:
    return [next(i["value"] for i in c["identities"] if i["kind"] == "user_id")
            for c in page["items"]]


def test_the_api_needs_a_secret_key(client, write_key):
    missing = client.get("/api/v1/customers")
    assert missing.status_code == 401
    assert missing.json() == {"code": "missing_key",
                              "message": "Authorization: send a secret key as 'Bearer KEY'"}
    wrong = client.get("/api/v1/customers", headers={"Authorization": f"Bearer {write_key}"})
    assert (wrong.status_code, wrong.json()["code"]) == (401, "invalid_key")


def test_filters(api, client, write_key):
    _seed(client, write_key)
    get = lambda **params: _users(api.get("/api/v1/customers", params=params).json())  # noqa: E731
    assert get(sort="id") == ["u1", "u2", "u3", "u4"]
    assert get(email="ANA@example.com") == ["u1"]
    assert get(user_id="u3") == ["u3"]
    assert get(q="souza", sort="id") == ["u1", "u3"]
    assert get(q="ana souza") == ["u1"]
    assert get(q="example.org") == ["u3"]
    assert get(q="%") == []
    assert get(country="BR", sort="id") == ["u1", "u2", "u4"]
    api.post("/api/v1/customers/2/tags", json={"tags": ["vip", "b2b"]})
    assert get(tag="vip") == ["u2"]
    assert get(tag="VIP") == ["u2"]
    assert get(tag="vip", country="PT") == []


def test_sorting_and_keyset_pagination(api, client, write_key):
    _seed(client, write_key)
    first = api.get("/api/v1/customers", params={"sort": "-revenue_total", "limit": 2,
                                                 "count": "true"}).json()
    assert _users(first) == ["u1", "u4"]
    assert first["total"] == 4
    second = api.get("/api/v1/customers", params={"sort": "-revenue_total", "limit": 2,
                                                  "cursor": first["next_cursor"]}).json()
    assert _users(second) == ["u2", "u3"]
    assert second["next_cursor"] is None
    assert second["total"] is None
    by_seen = api.get("/api/v1/customers", params={"sort": "last_seen_at", "limit": 3}).json()
    rest = api.get("/api/v1/customers", params={"sort": "last_seen_at", "limit": 3,
                                                "cursor": by_seen["next_cursor"]}).json()
    assert _users(by_seen) + _users(rest) == ["u1", "u2", "u3", "u4"]


def test_bad_list_parameters_are_named(api):
    sort = api.get("/api/v1/customers", params={"sort": "password"})
    assert sort.status_code == 400
    assert sort.json()["code"] == "invalid_sort"
    assert sort.json()["message"].startswith("sort: must be one of last_seen_at")
    cursor = api.get("/api/v1/customers", params={"cursor": "forged"})
    assert cursor.json() == {"code": "invalid_cursor",
                             "message": "cursor: must be a next_cursor value returned by this API"}
    limit = api.get("/api/v1/customers", params={"limit": 500})
    assert limit.status_code == 422
    assert limit.json()["message"] == "limit: Input should be less than or equal to 200"


def test_profile_shape(api, client, write_key):
    send(client, write_key, "identify", userId="u1", timestamp="2026-04-01T12:00:00Z",
         context={"locale": "pt-BR"}, traits={
             "email": "ana@example.com", "firstName": "Ana", "lastName": "Souza",
             "gender": "female", "birthday": "1990-05-17", "phone": "11 98765-4321",
             "address": {"city": "São Paulo", "state": "SP", "country": "BR"}, "plan": "gold"})
    profile = api.get("/api/v1/customers/1").json()
    assert {k: profile[k] for k in ("email", "phone", "first_name", "last_name", "gender",
                                    "birthday", "locale", "city", "region", "country")} == {
        "email": "ana@example.com", "phone": "+5511987654321", "first_name": "Ana",
        "last_name": "Souza", "gender": "female", "birthday": "1990-05-17", "locale": "pt-BR",
        "city": "São Paulo", "region": "SP", "country": "BR"}
    assert profile["identities"] == [{"kind": "user_id", "value": "u1"},
                                     {"kind": "email", "value": "ana@example.com"},
                                     {"kind": "phone", "value": "+5511987654321"}]
    assert profile["traits"]["plan"] == "gold"
    assert profile["consent"] == {"email_marketing": "unknown", "email_marketing_source": None,
                                  "email_marketing_at": None}
    assert profile["aggregates"]["events_total"] == 1
    assert api.get("/api/v1/customers/42").json() == {
        "code": "customer_not_found", "message": "customer 42: no such customer"}


def test_create_or_upsert(api):
    created = api.post("/api/v1/customers", json={
        "user_id": "crm-1", "email": "Lia@Example.com", "first_name": "Lia",
        "country": "BR", "tags": ["lead"], "traits": {"source": "fair"},
        "consent": {"email_marketing": "subscribed", "source": "signup form"}})
    assert created.status_code == 201, created.text
    body = created.json()
    assert (body["id"], body["email"], body["first_name"], body["country"]) == (
        1, "lia@example.com", "Lia", "BR")
    assert body["tags"] == ["lead"]
    assert body["consent"]["email_marketing"] == "subscribed"
    assert body["consent"]["email_marketing_source"] == "signup form"
    again = api.post("/api/v1/customers", json={"email": "lia@example.com", "last_name": "Reis"})
    assert again.status_code == 200
    assert (again.json()["id"], again.json()["first_name"], again.json()["last_name"]) == (
        1, "Lia", "Reis")
    assert api.get("/api/v1/customers", params={"count": "true"}).json()["total"] == 1


def test_patch_profile_and_consent(api):
    api.post("/api/v1/customers", json={"user_id": "u1", "city": "Recife"})
    patched = api.patch("/api/v1/customers/1", json={
        "consent": {"email_marketing": "subscribed"}, "region": "PE",
        "traits": {"shoe_size": 38, "plan": None}})
    assert patched.status_code == 200, patched.text
    body = patched.json()
    assert body["consent"]["email_marketing"] == "subscribed"
    assert body["consent"]["email_marketing_source"] == "api"
    assert (body["city"], body["region"]) == ("Recife", "PE")
    assert body["traits"] == {"address": {"city": "Recife", "state": "PE"}, "shoe_size": 38}
    unsubscribed = api.patch("/api/v1/customers/1",
                             json={"consent": {"email_marketing": "unsubscribed"}})
    assert unsubscribed.json()["consent"]["email_marketing"] == "unsubscribed"


def test_bad_profile_changes_are_named_and_write_nothing(api):
    api.post("/api/v1/customers", json={"user_id": "u1", "email": "one@example.com"})
    api.post("/api/v1/customers", json={"user_id": "u2"})
    cases = [
        ({"consent": {"email_marketing": "maybe"}}, 422, "consent.email_marketing: Input should "
         "be 'subscribed', 'unsubscribed' or 'unknown'"),
        ({"email": "not-an-address", "first_name": "X"}, 400,
         "email: 'not-an-address' is not an e-mail address"),
        ({"phone": "12", "first_name": "X"}, 400, "phone: '12' is not a phone number"),
        ({"birthday": "31/12/1990"}, 422, "birthday: Input should be a valid date or datetime, "
         "invalid character in year"),
        ({"favourite": "blue"}, 422, "favourite: Extra inputs are not permitted"),
        ({"email": "one@example.com", "first_name": "X"}, 409,
         "email: one@example.com belongs to customer 1; merge the two instead"),
    ]
    for body, status, message in cases:
        response = api.patch("/api/v1/customers/2", json=body)
        assert (response.status_code, response.json()["message"]) == (status, message), body
    assert api.get("/api/v1/customers/2").json()["first_name"] is None
    assert api.get("/api/v1/customers/2").json()["identities"] == [
        {"kind": "user_id", "value": "u2"}]


def test_tags(api):
    api.post("/api/v1/customers", json={"user_id": "u1"})
    assert api.post("/api/v1/customers/1/tags", json={"tags": ["vip", " b2b "]}).json() == [
        "b2b", "vip"]
    assert api.post("/api/v1/customers/1/tags", json={"tags": ["vip"]}).json() == ["b2b", "vip"]
    # Tags are case-insensitive: kept lower-case.
    assert api.post("/api/v1/customers/1/tags", json={"tags": ["VIP", "Lead"]}).json() == [
        "b2b", "lead", "vip"]
    assert api.delete("/api/v1/customers/1/tags/Lead").json() == ["b2b", "vip"]
    assert api.delete("/api/v1/customers/1/tags/vip").json() == ["b2b"]
    empty = api.post("/api/v1/customers/1/tags", json={"tags": [" "]})
    assert (empty.status_code, empty.json()) == (400, {
        "code": "invalid_tag", "message": "tags: each tag must be 1 to 100 characters"})
    assert api.post("/api/v1/customers/9/tags", json={"tags": ["x"]}).status_code == 404


def test_timeline_filters_and_pages(api, client, write_key):
    calls = [{"type": "track", "userId": "u1", "event": f"E{n % 3}",
              "timestamp": f"2026-01-01T00:00:{n:02d}Z"} for n in range(7)]
    calls.append({"type": "page", "userId": "u1", "name": "Home",
                  "timestamp": "2026-01-01T00:01:00Z"})
    batch(client, write_key, calls)
    page = api.get("/api/v1/customers/1/events", params={"limit": 3}).json()
    assert [(e["type"], e["event"]) for e in page["items"]] == [
        ("page", "Home"), ("track", "E0"), ("track", "E2")]
    rest = api.get("/api/v1/customers/1/events",
                   params={"limit": 10, "cursor": page["next_cursor"]}).json()
    assert [e["timestamp"][-3:] for e in rest["items"]] == ["04Z", "03Z", "02Z", "01Z", "00Z"]
    assert rest["next_cursor"] is None
    only = api.get("/api/v1/customers/1/events", params={"type": "track", "event": "E1"}).json()
    assert [e["timestamp"][-3:] for e in only["items"]] == ["04Z", "01Z"]
    bad = api.get("/api/v1/customers/1/events", params={"type": "shout"})
    assert (bad.status_code, bad.json()["code"]) == (400, "invalid_type")


def test_out_of_range_and_malformed_inputs_get_named_errors(api):
    api.post("/api/v1/customers", json={"user_id": "u1"})
    huge = api.get(f"/api/v1/customers/{2**63}")
    assert huge.status_code == 422
    assert huge.json()["message"] == (
        "customer_id: Input should be less than or equal to 9223372036854775807")
    assert api.post(f"/api/v1/merges/{2**64}/unmerge").status_code == 422
    nul = api.get("/api/v1/customers", params={"q": "a\x00b"})
    assert (nul.status_code, nul.json()["message"].split(":")[0]) == (422, "q")
    broken = api.post("/api/v1/customers", content=b"{broken",
                      headers={"Content-Type": "application/json"})
    assert broken.json() == {"code": "invalid_json", "message": "body: invalid JSON"}
    assert broken.status_code == 400
    coerced = api.post("/api/v1/customers/1/merge", json={"customer_id": True})
    assert coerced.json()["message"] == "customer_id: Input should be a valid integer"
    assert api.get("/api/v1/customers/99/merges").json()["code"] == "customer_not_found"
    assert api.get("/api/v1/customers/99/conflicts").status_code == 404


def test_traits_that_belong_to_fields_or_cannot_be_stored_are_refused(api):
    api.post("/api/v1/customers", json={"user_id": "u1", "email": "one@example.com"})
    api.post("/api/v1/customers", json={"user_id": "u2"})
    cases = [
        ({"traits": {"email": "one@example.com"}},
         "traits: Value error, email is set with the email field"),
        ({"traits": {"n": 10**20}}, "traits: Value error, cannot be stored (nested too "
         "deeply, or a number beyond 64 bits)"),
        ({"traits": {"x" * 201: 1}}, "traits: Value error, keys must be 1 to 200 characters"),
        ({"first_name": "A\x00"}, "first_name: Value error, must not contain NUL characters"),
    ]
    for body, message in cases:
        response = api.patch("/api/v1/customers/2", json=body)
        assert (response.status_code, response.json()["message"]) == (422, message)
    assert api.get("/api/v1/customers", params={"email": "one@example.com"}).json()[
        "items"][0]["id"] == 1


def test_removing_the_email_removes_the_identity(api):
    api.post("/api/v1/customers", json={"user_id": "u1", "email": "one@example.com",
                                        "phone": "+55 11 98765-4321"})
    patched = api.patch("/api/v1/customers/1", json={"email": None, "phone": None})
    assert patched.status_code == 200, patched.text
    assert (patched.json()["email"], patched.json()["phone"]) == (None, None)
    assert patched.json()["identities"] == [{"kind": "user_id", "value": "u1"}]
    assert api.get("/api/v1/customers", params={"email": "one@example.com"}).json()[
        "items"] == []


def test_upsert_never_gives_a_customer_a_second_user_id(api):
    api.post("/api/v1/customers", json={"user_id": "a", "email": "a@example.com"})
    second = api.post("/api/v1/customers", json={"user_id": "zzz", "email": "a@example.com"})
    assert (second.status_code, second.json()) == (409, {
        "code": "identity_taken",
        "message": "user_id: the customer with this e-mail has user id 'a'; merge the two "
                   "instead"})
    assert api.get("/api/v1/customers/1").json()["identities"] == [
        {"kind": "user_id", "value": "a"}, {"kind": "email", "value": "a@example.com"}]


def test_tags_with_a_slash(api):
    api.post("/api/v1/customers", json={"user_id": "u1"})
    assert api.post("/api/v1/customers/1/tags", json={"tags": ["b2b/atacado"]}).json() == [
        "b2b/atacado"]
    assert api.delete("/api/v1/customers/1/tags/b2b/atacado").json() == []


def test_nul_in_a_timeline_filter_is_a_named_error(api):
    api.post("/api/v1/customers", json={"user_id": "u1"})
    response = api.get("/api/v1/customers/1/events", params={"event": "a\x00"})
    assert response.status_code == 422
    assert response.json()["message"].startswith("event.0: String should match pattern")
