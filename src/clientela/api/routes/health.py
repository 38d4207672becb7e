"""GET /health: 200 when the database answers."""

from __future__ import annotations

from fastapi import APIRouter, Request
from sqlalchemy.exc import SQLAlchemyError

from clientela.api.errors import error_response
from clientela.api.responses import FastJSONResponse
from clientela.db import ping

router = APIRouter(tags=["health"])


@router.get("/health")
def health(request: Request) -> FastJSONResponse:
    """`{"status": "ok"}` when the database answers, else 503."""
    try:
        ping(request.app.state.engine)
    except SQLAlchemyError:
        return error_response(503, "storage_unavailable", "the database does not answer")
    return FastJSONResponse({"status": "ok"})
