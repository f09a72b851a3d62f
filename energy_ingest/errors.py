"""The engine's one exception hierarchy; `app.py` turns each into its HTTP answer in one place."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True, slots=True)
class FieldProblem:
    """One broken rule: which field, which rule, and a sentence a person can act on."""

    field: str
    rule: str
    message: str

    def as_json(self) -> dict[str, str]:
        return {"field": self.field, "rule": self.rule, "message": self.message}


class EngineError(Exception):
    """Base of every error the API answers on purpose."""

    status_code = 500
    code = "internal_error"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def body(self) -> dict[str, Any]:
        return {"error": self.code, "message": self.message}

    def headers(self) -> dict[str, str]:
        return {}


class MalformedRequest(EngineError):
    """The body is not JSON at all."""

    status_code = 400
    code = "malformed_json"


MESSAGE_PROBLEMS = 10
"""How many problems a ValidationFailed message spells out; `errors` carries them all."""


class ValidationFailed(EngineError):
    """Valid JSON that breaks a rule; names every field and rule that failed."""

    status_code = 422
    code = "validation_failed"

    def __init__(self, problems: list[FieldProblem]) -> None:
        # The message summarises, `errors` lists: a request breaking thousands of rules must
        # not be answered (or logged) with thousands of sentences twice over.
        shown = "; ".join(f"{p.field}: {p.message}" for p in problems[:MESSAGE_PROBLEMS])
        if len(problems) > MESSAGE_PROBLEMS:
            shown += f"; and {len(problems) - MESSAGE_PROBLEMS} more (see errors)"
        super().__init__(shown or "invalid request")
        self.problems = problems

    def body(self) -> dict[str, Any]:
        return {**super().body(), "errors": [p.as_json() for p in self.problems]}


class PayloadTooLarge(EngineError):
    status_code = 413
    code = "payload_too_large"


class UnsupportedMediaType(EngineError):
    """A body that is not declared as JSON: a cross-site form or `text/plain` post, never JSON."""

    status_code = 415
    code = "unsupported_media_type"


class ClientClosedRequest(EngineError):
    """The client went away before its body arrived: nobody reads the answer and nothing
    failed on our side (nginx's 499), so it is logged as an ordinary request."""

    status_code = 499
    code = "client_closed_request"


class RequestTimedOut(EngineError):
    """The client took too long to send its body (a slow or stalled client)."""

    status_code = 408
    code = "request_timeout"


class Unauthorized(EngineError):
    """No key, a malformed one, an unknown one or a revoked one: the same answer for each."""

    status_code = 401
    code = "unauthorized"

    def __init__(self, message: str, *, token_given: bool) -> None:
        super().__init__(message)
        self.token_given = token_given

    def headers(self) -> dict[str, str]:
        # RFC 6750: say which scheme to use; name the error only when a token was sent.
        challenge = 'Bearer realm="energy-ingest"'
        if self.token_given:
            challenge += ', error="invalid_token"'
        return {"WWW-Authenticate": challenge}


class Forbidden(EngineError):
    """A valid key without the scope, or bound to another device. Never says whether a device
    exists: the check comes before any lookup."""

    status_code = 403
    code = "forbidden"


class NotFound(EngineError):
    status_code = 404
    code = "not_found"


class Conflict(EngineError):
    status_code = 409
    code = "conflict"


class ServiceUnavailable(EngineError):
    """Overload or a database outage: the request was not stored and may be retried."""

    status_code = 503
    code = "unavailable"

    def __init__(self, message: str, retry_after_seconds: int = 1) -> None:
        super().__init__(message)
        self.retry_after_seconds = retry_after_seconds

    def headers(self) -> dict[str, str]:
        return {"Retry-After": str(self.retry_after_seconds)}


class Overloaded(ServiceUnavailable):
    """The writer's queue is full."""

    code = "overloaded"


class DatabaseUnavailable(ServiceUnavailable):
    """The database could not be reached or failed mid-batch; nothing was acknowledged."""

    code = "database_unavailable"


class TooManyNewDevices(EngineError):
    """A key brought more new device ids than max_new_devices_per_minute lets it register;
    nothing of the request was stored."""

    status_code = 429
    code = "too_many_new_devices"

    def __init__(self, message: str, retry_after_seconds: int) -> None:
        super().__init__(message)
        self.retry_after_seconds = retry_after_seconds

    def headers(self) -> dict[str, str]:
        return {"Retry-After": str(self.retry_after_seconds)}
