from tests.helpers import customer_by_user, send


def test_track_reaches_profile(client, write_key, api):
    r = send(client, write_key, "identify", userId="u1", traits={"email": "A@Example.com"})
    assert r.status_code == 200, r.text
    r = send(client, write_key, "track", userId="u1", event="Order Completed",
             properties={"order_id": "o1", "total": 10.5})
    assert r.status_code == 200, r.text
    customer = customer_by_user(api, "u1")
    assert customer["email"] == "a@example.com"
    assert customer["aggregates"]["orders_count"] == 1
    assert customer["aggregates"]["revenue_total"] == 10.5
