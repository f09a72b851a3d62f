"""Per-request context: an id (from X-Request-ID or new), an access-log line, HTTP metrics."""

from __future__ import annotations

import itertools
import logging
import os
import re
import time
import uuid
from collections.abc import Callable
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from energy_ingest.telemetry.logs import (
    client_address,
    looks_like_a_key,
    presented_key_id,
    redact,
    request_id,
)

logger = logging.getLogger("energy_ingest.access")

_CLIENT_ID = re.compile(r"^[A-Za-z0-9._:\-]{1,64}$")

# Request ids must be unique, not unguessable: a random half per process and a counter make 32
# hex digits without a uuid4 (os.urandom) per request, which was 3% of a small request's CPU.
_process_part = uuid.uuid4().hex[:16]
_request_numbers = itertools.count()


def _new_process() -> None:
    global _process_part
    _process_part = uuid.uuid4().hex[:16]  # a forked worker must not repeat its parent's ids


os.register_at_fork(after_in_child=_new_process)


def _new_request_id() -> str:
    return f"{_process_part}{next(_request_numbers):016x}"


def _log_access(method: str, path: str, status: int, extra: dict[str, Any]) -> None:
    """`logger.info("%s %s %d", method, path, status, extra=extra)`, without its search of the
    stack for the caller (a tenth of the line's cost, on every request): the record names this
    function as its source."""
    if logger.isEnabledFor(logging.INFO):
        code = _log_access.__code__
        record = logger.makeRecord(
            logger.name,
            logging.INFO,
            code.co_filename,
            code.co_firstlineno,
            "%s %s %d",
            (method, path, status),
            None,
            code.co_name,
            extra,
        )
        logger.handle(record)


RequestObserver = Callable[[str, str, int, float], None]
"""Called once a request is answered: (method, route template, status, seconds)."""


class RequestContextMiddleware:
    """Pure ASGI (no per-request task or body buffering, unlike BaseHTTPMiddleware)."""

    def __init__(
        self, app: ASGIApp, *, access_log: bool = True, observe: RequestObserver | None = None
    ) -> None:
        self.app = app
        self.access_log = access_log
        self.observe = observe

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        given = dict(scope["headers"]).get(b"x-request-id", b"").decode("latin-1")
        # A key pasted into the header would be echoed and logged: it gets a fresh id instead.
        fits = _CLIENT_ID.match(given) and not looks_like_a_key(given)
        current = given if fits else _new_request_id()
        token = request_id.set(current)
        key_token = presented_key_id.set(None)
        client = scope.get("client")
        address_token = client_address.set(client[0] if client else None)
        started = time.perf_counter()
        status = 500

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                message["headers"] = [
                    *message.get("headers", []),
                    (b"x-request-id", current.encode("latin-1")),
                ]
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        finally:
            seconds = time.perf_counter() - started
            route = scope.get("route")
            template = getattr(route, "path", None) or "unmatched"
            if self.observe is not None:
                self.observe(scope["method"], template, status, seconds)
            if self.access_log:
                # The route template, not the path: ids stay out of the access log's cardinality.
                extra = {
                    "status": status,
                    "route": template,
                    "durationMs": round(seconds * 1000, 2),
                }
                presented = presented_key_id.get()
                if presented is not None:
                    extra["keyId"] = presented
                # A whole key in the path (`DELETE /v1/keys/<key>`) must not reach the log.
                path = redact(scope["path"])
                _log_access(scope["method"], path, status, extra)
            client_address.reset(address_token)
            presented_key_id.reset(key_token)
            request_id.reset(token)
