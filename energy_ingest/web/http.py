"""HTTP plumbing every feature shares: JSON bodies in, JSON answers out, timestamps on the wire."""

from __future__ import annotations

import asyncio
import re
from datetime import datetime
from typing import Any

import orjson
from fastapi import Request, Response
from starlette.requests import ClientDisconnect
from starlette.types import Send

from energy_ingest.config import Settings
from energy_ingest.errors import (
    ClientClosedRequest,
    EngineError,
    FieldProblem,
    MalformedRequest,
    PayloadTooLarge,
    RequestTimedOut,
    UnsupportedMediaType,
    ValidationFailed,
)
from energy_ingest.wire import format_timestamp, parse_timestamp


def _default(value: Any) -> Any:
    if isinstance(value, datetime):
        return format_timestamp(value)
    raise TypeError(f"cannot serialise {type(value).__name__}")


def encode_json(content: Any) -> bytes:
    """JSON as the API writes it (datetimes in the one wire format); the CLI prints the same."""
    return orjson.dumps(content, default=_default, option=orjson.OPT_PASSTHROUGH_DATETIME)


def json_response(
    content: Any, status_code: int = 200, headers: dict[str, str] | None = None
) -> Response:
    """A JSON answer; datetimes in the engine's one wire format."""
    return Response(
        content=encode_json(content),
        status_code=status_code,
        media_type="application/json",
        headers=headers,
    )


_JSON_CONTENT_TYPE = (b"content-type", b"application/json")


async def send_json(send: Send, content: Any, status_code: int = 200) -> None:
    """Send what `json_response(content, status_code)` would, without building a Response (its
    header handling showed in the profile of the hottest path): the same messages and headers."""
    body = encode_json(content)
    headers = [(b"content-length", str(len(body)).encode("latin-1")), _JSON_CONTENT_TYPE]
    await send({"type": "http.response.start", "status": status_code, "headers": headers})
    await send({"type": "http.response.body", "body": body})


def error_response(error: EngineError) -> Response:
    """The answer to an error the engine raises on purpose: its status, body and headers."""
    return json_response(error.body(), error.status_code, error.headers())


_JSON_MEDIA_TYPE = re.compile(r"application/(?:[a-z0-9!#$&^_.-]+\+)?json", re.IGNORECASE)
_JSON_SPACE = b" \t\r\n"


def require_json_content_type(request: Request) -> None:
    """415 unless the body is declared as JSON (`application/json` or `application/<x>+json`).

    A web page can make a browser send `text/plain` or a form to any address without asking
    (a "simple" cross-site request) but never `application/json`: insisting on it keeps pages
    from writing through a browser on the engine's machine.
    """
    declared = request.headers.get("content-type")
    media_type = (declared or "").split(";", 1)[0].strip()
    if _JSON_MEDIA_TYPE.fullmatch(media_type):
        return
    got = f"got {declared[:100]!r}" if declared else "none was sent"
    raise UnsupportedMediaType(
        f"send the body as JSON with the header Content-Type: application/json ({got})"
    )


async def read_body(
    request: Request,
    settings: Settings,
    *,
    max_bytes: int | None = None,
    max_object_bytes: int | None = None,
) -> bytes:
    """The request's body, declared as JSON: 415 for another Content-Type, 413 past `max_bytes`
    (default max_body_bytes) or past `max_object_bytes` when the document is an object (its
    first non-space byte is `{`), 408 when it takes longer than body_timeout_seconds to arrive
    (a stalled client must not hold a connection forever), 499 when the client leaves first."""
    require_json_content_type(request)
    limit = settings.max_body_bytes if max_bytes is None else max_bytes
    timeout_seconds = settings.body_timeout_seconds
    declared = request.headers.get("content-length")
    declared_size = int(declared) if declared is not None and declared.isdigit() else None
    if declared_size is not None and declared_size > limit:
        raise PayloadTooLarge(f"the body is larger than the limit of {limit} bytes")
    chunks: list[bytes] = []
    size = 0
    decided = max_object_bytes is None
    try:
        async with asyncio.timeout(timeout_seconds):
            async for chunk in request.stream():
                if not decided and chunk.strip(_JSON_SPACE):
                    # The first non-space byte tells a single reading from a batch.
                    decided = True
                    if chunk.lstrip(_JSON_SPACE)[:1] == b"{":
                        limit = min(limit, max_object_bytes or limit)
                        if declared_size is not None and declared_size > limit:
                            raise PayloadTooLarge(
                                f"one JSON object (a single reading) is larger than the limit"
                                f" of {limit} bytes"
                            )
                size += len(chunk)
                if size > limit:
                    raise PayloadTooLarge(f"the body is larger than the limit of {limit} bytes")
                chunks.append(chunk)
    except TimeoutError:
        raise RequestTimedOut(f"the body did not arrive within {timeout_seconds:g} s") from None
    except ClientDisconnect:
        raise ClientClosedRequest(
            "the client closed the connection before its body arrived"
        ) from None
    return b"".join(chunks)


def parse_json(body: bytes) -> Any:
    """A body's JSON document; 400 when it is empty or not JSON."""
    if not body.strip():
        raise MalformedRequest("the body is empty; send a JSON document")
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise MalformedRequest(f"the body is not valid JSON: {exc}") from exc


async def read_json_body(
    request: Request, settings: Settings, *, max_bytes: int | None = None
) -> Any:
    """The request's JSON document (see `read_body` for the limits); 400 when it is not JSON.
    Routes taking one small object pass `max_bytes=settings.max_single_body_bytes`."""
    return parse_json(await read_body(request, settings, max_bytes=max_bytes))


def parse_query_timestamps(**values: str | None) -> dict[str, datetime | None]:
    """Optional ISO 8601 query parameters by name; a 422 names every malformed one."""
    parsed: dict[str, datetime | None] = {}
    problems: list[FieldProblem] = []
    for name, value in values.items():
        try:
            parsed[name] = None if value is None else parse_timestamp(value)
        except ValueError as exc:
            problems.append(FieldProblem(field=name, rule="format", message=str(exc)))
    if problems:
        raise ValidationFailed(problems)
    return parsed
