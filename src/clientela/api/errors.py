"""Every error answer is `{"code", "message"}`; domain errors keep their status."""

from __future__ import annotations

import logging

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from sqlalchemy.exc import DataError, IntegrityError, InterfaceError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from starlette.exceptions import HTTPException
from starlette.requests import ClientDisconnect

from clientela.api.responses import FastJSONResponse
from clientela.core.errors import ClientelaError

log = logging.getLogger(__name__)
RETRY_AFTER_SECONDS = "5"


def error_response(status: int, code: str, message: str) -> FastJSONResponse:
    headers = {"Retry-After": RETRY_AFTER_SECONDS} if status in (429, 503) else None
    return FastJSONResponse({"code": code, "message": message}, status_code=status,
                          headers=headers)


def _field(location: tuple[int | str, ...]) -> str:
    parts = [str(part) for part in location if part not in ("body", "query", "path")]
    return ".".join(parts) or "body"


async def _domain(_request: Request, error: Exception) -> FastJSONResponse:
    assert isinstance(error, ClientelaError)
    return error_response(error.status, error.code, error.message)


async def _validation(_request: Request, error: Exception) -> FastJSONResponse:
    assert isinstance(error, RequestValidationError)
    first = error.errors()[0]
    if first.get("type") == "json_invalid":
        return error_response(400, "invalid_json", "body: invalid JSON")
    message = f"{_field(tuple(first.get('loc', ())))}: {first.get('msg', 'is invalid')}"
    return error_response(422, "invalid", message)


async def _http(_request: Request, error: Exception) -> FastJSONResponse:
    assert isinstance(error, HTTPException)
    codes = {404: "not_found", 405: "method_not_allowed", 401: "unauthorized"}
    return error_response(error.status_code, codes.get(error.status_code, "http_error"),
                          str(error.detail))


async def _storage(_request: Request, error: Exception) -> FastJSONResponse:
    log.warning("storage failure: %s", type(error).__name__)
    return error_response(503, "storage_unavailable", "the database is unavailable; retry later")


async def _race(_request: Request, _error: Exception) -> FastJSONResponse:
    # A concurrent request stored the same unique value first; a retry sees it.
    return error_response(409, "concurrent_change",
                          "another request changed the same customer at the same time; retry")


async def _unusable_value(_request: Request, _error: Exception) -> FastJSONResponse:
    # The last line of defence; inputs are checked by name before they reach the database.
    return error_response(400, "invalid_value", "a value in the request cannot be stored or "
                          "searched (for example a NUL character)")


async def _gone(_request: Request, _error: Exception) -> FastJSONResponse:
    # The client left while its body was being read (a browser leaving the page): nobody
    # reads this answer, and it is no error of ours.
    return error_response(400, "client_disconnected", "the client went away mid-request")


async def _unexpected(_request: Request, error: Exception) -> FastJSONResponse:
    log.exception("unexpected error", exc_info=error)
    return error_response(500, "internal_error", "an unexpected error; it has been logged")


def install(app: FastAPI) -> None:
    """Register the handlers that shape every error answer."""
    app.add_exception_handler(ClientelaError, _domain)
    app.add_exception_handler(RequestValidationError, _validation)
    app.add_exception_handler(HTTPException, _http)
    for kind in (OperationalError, InterfaceError, PoolTimeout):
        app.add_exception_handler(kind, _storage)
    app.add_exception_handler(IntegrityError, _race)
    app.add_exception_handler(DataError, _unusable_value)
    app.add_exception_handler(ClientDisconnect, _gone)
    app.add_exception_handler(Exception, _unexpected)
