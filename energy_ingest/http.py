"""HTTP plumbing every feature shares: JSON bodies in, JSON answers out, timestamps on the wire."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import Any

import orjson
from fastapi import Request, Response

from energy_ingest.config import Settings
from energy_ingest.errors import (
    EngineError,
    FieldProblem,
    MalformedRequest,
    PayloadTooLarge,
    RequestTimedOut,
    ValidationFailed,
)
from energy_ingest.ingest.schemas import parse_timestamp


def format_timestamp(moment: datetime) -> str:
    """UTC ISO 8601 with a Z, milliseconds as JavaScript's toISOString (the seed's clients parse
    that), microseconds only when the reading carried them."""
    utc = moment.astimezone(UTC)
    if utc.microsecond % 1000:
        return utc.strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    return utc.strftime("%Y-%m-%dT%H:%M:%S.") + f"{utc.microsecond // 1000:03d}Z"


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


def error_response(error: EngineError) -> Response:
    """The answer to an error the engine raises on purpose: its status, body and headers."""
    return json_response(error.body(), error.status_code, error.headers())


async def read_json_body(request: Request, settings: Settings) -> Any:
    """The request's JSON document: 413 past max_body_bytes, 408 when it takes longer than
    body_timeout_seconds to arrive (a stalled client must not hold a connection forever), 400
    when it is not JSON."""
    max_bytes, timeout_seconds = settings.max_body_bytes, settings.body_timeout_seconds
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > max_bytes:
        raise PayloadTooLarge(f"the body is larger than the limit of {max_bytes} bytes")
    chunks: list[bytes] = []
    size = 0
    try:
        async with asyncio.timeout(timeout_seconds):
            async for chunk in request.stream():
                size += len(chunk)
                if size > max_bytes:
                    raise PayloadTooLarge(f"the body is larger than the limit of {max_bytes} bytes")
                chunks.append(chunk)
    except TimeoutError:
        raise RequestTimedOut(f"the body did not arrive within {timeout_seconds:g} s") from None
    body = b"".join(chunks)
    if not body.strip():
        raise MalformedRequest("the body is empty; send a JSON document")
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise MalformedRequest(f"the body is not valid JSON: {exc}") from exc


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
