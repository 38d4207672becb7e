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
    assert (signed_in.status_code, signed_in.headers["location"]) == (303, "/customers")
    assert client.get("/customers", follow_redirects=False).status_code == 200
    odd = client.get("/customers", params={"q": "ana\x00"}, headers={"HX-Request": "true"})
    assert (odd.status_code, "0 customers" in odd.text) == (200, True)
    with session_scope(engine) as session:
        assert team.find_user(session=session, email="dona@loja.com.br").last_login_at
        session.execute(delete(User))
    gone = client.get("/customers", follow_redirects=False)
    assert (gone.status_code, gone.headers["location"]) == (303, "/login")
