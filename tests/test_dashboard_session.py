"""Dashboard sign-in without a browser: wrong passwords, and cookies of removed users."""

from __future__ import annotations

from sqlalchemy import delete

from clientela.db import session_scope
from clientela.team import service as team
from clientela.team.models import User


def test_sign_in_and_a_removed_user_is_signed_out(client, engine):
    with session_scope(engine) as session:
        team.create_user(session=session, email="dona@loja.com.br", password="s3cret-pass",
                         role="owner")
    wrong = client.post("/login", data={"email": "dona@loja.com.br", "password": "nope"},
                        follow_redirects=False)
    assert wrong.status_code == 401
    assert "Wrong e-mail or password." in wrong.text
    signed_in = client.post("/login", data={"email": "Dona@Loja.com.br",
                                            "password": "s3cret-pass"},
                            follow_redirects=False)
    assert (signed_in.status_code, signed_in.headers["location"]) == (303, "/overview")
    assert client.get("/customers", follow_redirects=False).status_code == 200
    odd = client.get("/customers", params={"q": "ana\x00"}, headers={"HX-Request": "true"})
    assert (odd.status_code, "0 customers" in odd.text) == (200, True)
    with session_scope(engine) as session:
        assert team.find_user(session=session, email="dona@loja.com.br").last_login_at
        session.execute(delete(User))
    gone = client.get("/customers", follow_redirects=False)
    assert (gone.status_code, gone.headers["location"]) == (303, "/login")


def test_identified_filter_and_merge_history(client, engine, write_key):
    with session_scope(engine) as session:
        team.create_user(session=session, email="dona@loja.com.br", password="s3cret-pass",
                         role="owner")
    client.post("/login", data={"email": "dona@loja.com.br", "password": "s3cret-pass"})
    for call in ({"anonymousId": "visitor"}, {"anonymousId": "a2", "userId": "u2"},
                 {"anonymousId": "a3"}):
        client.post("/v1/identify", json={"writeKey": write_key, **call})
    client.post("/v1/alias", json={"writeKey": write_key, "userId": "u2", "previousId": "a3"})
    everyone = client.get("/customers", headers={"HX-Request": "true"})
    assert "2 customers" in everyone.text  # a3 was merged into u2's customer
    known = client.get("/customers", params={"identified": "true"},
                       headers={"HX-Request": "true"})
    assert "1 customer</p>" in known.text and "/customers/2" in known.text
    profile = client.get("/customers/2")
    assert "customer #3 merged into\n      #2 (alias)" in profile.text


def test_forms_sent_from_another_origin_are_refused(client, engine, write_key, settings):
    with session_scope(engine) as session:
        team.create_user(session=session, email="dona@loja.com.br", password="s3cret-pass",
                         role="owner")
    client.post("/login", data={"email": "dona@loja.com.br", "password": "s3cret-pass"})
    for headers in ({"Origin": "https://evil.example"}, {"Origin": "null"},
                    {"Sec-Fetch-Site": "cross-site"}, {"Sec-Fetch-Site": "same-site"}):
        forged = client.post("/logout", headers=headers, follow_redirects=False)
        assert (forged.status_code, forged.json()) == (403, {
            "code": "cross_origin",
            "message": "Origin: a dashboard form must be sent from this dashboard's own pages"})
        assert client.get("/customers", follow_redirects=False).status_code == 200  # still in
    # Behind a proxy, the public address is this dashboard's too.
    public = settings.public_url.rstrip("/")
    proxied = client.post("/logout", headers={"Origin": public}, follow_redirects=False)
    assert (proxied.status_code, proxied.headers["location"]) == (303, "/login")
    client.post("/login", data={"email": "dona@loja.com.br", "password": "s3cret-pass"})
    own = client.post("/logout", headers={"Origin": "http://testserver",
                                          "Sec-Fetch-Site": "same-origin"},
                      follow_redirects=False)
    assert (own.status_code, own.headers["location"]) == (303, "/login")
    assert client.get("/customers", follow_redirects=False).status_code == 303
    # Without the session cookie it is not the dashboard's business (a shop's pages sending
    # events from their own origin).
    assert "clientela_session" not in client.cookies
    tracked = client.post("/v1/track", headers={"Origin": "https://loja.example"},
                          json={"writeKey": write_key, "userId": "u1", "event": "Viewed"})
    assert tracked.status_code == 200, tracked.text
