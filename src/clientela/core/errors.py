"""Domain errors; each edge turns them into `{"code", "message"}` answers."""

from __future__ import annotations


class ClientelaError(Exception):
    """Base of every error the domain raises on purpose."""

    status = 400
    code = "bad_request"

    def __init__(self, message: str, *, code: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        if code is not None:
            self.code = code


class InvalidInput(ClientelaError):
    """Input broke a rule; the message names the field and the rule."""

    status = 400
    code = "invalid"


class NotFound(ClientelaError):
    status = 404
    code = "not_found"


class Conflict(ClientelaError):
    status = 409
    code = "conflict"


class Unauthorized(ClientelaError):
    status = 401
    code = "unauthorized"


class StorageUnavailable(ClientelaError):
    """The database did not answer in time; the caller may retry later."""

    status = 503
    code = "storage_unavailable"


class Overloaded(ClientelaError):
    """Too much work is waiting; the caller should slow down and retry."""

    status = 429
    code = "overloaded"
