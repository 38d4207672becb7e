"""Small helpers shared by tests."""

from __future__ import annotations

import base64
from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy import Engine

from clientela.db import session_scope
from clientela.team import service as team

OWNER, PASSWORD = "dona@loja.com.br", "s3cret-pass"


def basic(write_key: str) -> dict[str, str]:
    """The Authorization header Segment's libraries send: the write key as Basic user."""
    token = base64.b64encode(f"{write_key}:".encode()).decode()
    return {"Authorization": f"Basic {token}"}


def send(client: TestClient, write_key: str, kind: str, **call: Any) -> Any:
    """POST one call to /v1/<kind> and return the response."""
    return client.post(f"/v1/{kind}", json=call, headers=basic(write_key))


def batch(client: TestClient, write_key: str, calls: list[dict[str, Any]], **extra: Any) -> Any:
    return client.post("/v1/batch", json={"batch": calls, **extra}, headers=basic(write_key))


def customer_by_user(api: TestClient, user_id: str) -> dict[str, Any]:
    """The one customer with this user id, via the API."""
    found = api.get("/api/v1/customers", params={"user_id": user_id}).json()["items"]
    assert len(found) == 1, found
    return found[0]


def sign_in(client: TestClient, engine: Engine) -> None:
    """Create the shop's owner (OWNER, PASSWORD) and sign the client in to the dashboard."""
    with session_scope(engine) as session:
        team.create_user(session=session, email=OWNER, password=PASSWORD, role="owner")
    signed_in = client.post("/login", data={"email": OWNER, "password": PASSWORD},
                            follow_redirects=False)
    assert signed_in.status_code == 303, signed_in.text
