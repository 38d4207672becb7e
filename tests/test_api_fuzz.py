"""Property-based fuzzing of the REST API from its own OpenAPI schema: no 500s, ever.

Schemathesis generates requests (odd types, huge numbers, unicode, NUL bytes, forged
cursors) for every /api/v1 operation from the schema the app publishes; every answer must
be a client error or a success, never a server error.
"""

from __future__ import annotations

import schemathesis
from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings

from clientela.api.app import create_app

EXAMPLES_PER_OPERATION = 50


def test_no_operation_answers_a_server_error(settings, engine, secret_key, client, write_key):
    client.post("/v1/identify", json={"userId": "u1", "writeKey": write_key,
                                      "traits": {"email": "u1@example.com"}})
    client.post("/v1/track", json={"userId": "u1", "writeKey": write_key,
                                   "event": "Order Completed", "properties": {
                                       "order_id": "1", "total": 10, "products": [
                                           {"product_id": "p1", "price": 10}]}})
    schema = schemathesis.openapi.from_asgi("/openapi.json", create_app(settings, engine))
    headers = {"Authorization": f"Bearer {secret_key}"}
    operations = [result.ok() for result in schema.include(path_regex="^/api/v1/")
                  .get_all_operations()]
    assert len(operations) == 54
    for operation in operations:
        @given(case=operation.as_strategy())
        @hypothesis_settings(max_examples=EXAMPLES_PER_OPERATION, deadline=None, database=None,
                  suppress_health_check=list(HealthCheck))
        def answers_without_server_error(case: schemathesis.Case) -> None:
            response = case.call(headers=headers)
            assert response.status_code < 500, (case.method, case.formatted_path,
                                                 response.text[:300])

        answers_without_server_error()
