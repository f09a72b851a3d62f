"""A lean HTTP/1.1 load generator for loopback servers: keep-alive, pre-encoded requests.

httpx spends more CPU per request than the server under test on a 2-core machine; this client
writes pre-encoded bytes and reads a Content-Length answer, so the cores go to the server.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field

from bench.readings import Body
from energy_ingest.auth.keys import generate_key

Inspect = Callable[["Call", int, bytes], str | None]
"""Looks at one answer (call, status, body); returns a problem to report, or None."""

_MAX_PROBLEMS = 20


@dataclass(frozen=True, slots=True)
class Call:
    """One request as bytes on the wire, what it is for messages, and the readings it carries."""

    raw: bytes
    label: str
    readings: int


# The servers run with authentication on, as in production; this admin key is installed in every
# database the bench makes (`bench.database.install_key`) and sent with every /v1 request.
BENCH_KEY = generate_key()


def encode_call(method: str, path: str, body: bytes | None = None) -> bytes:
    """An HTTP/1.1 request with a fixed Host (loopback), the bench's key for /v1 paths, and,
    for a body, JSON headers."""
    head = f"{method} {path} HTTP/1.1\r\nhost: 127.0.0.1\r\n"
    if path.startswith("/v1/"):
        head += f"authorization: Bearer {BENCH_KEY.token}\r\n"
    if body is None:
        return (head + "\r\n").encode("ascii")
    head += f"content-type: application/json\r\ncontent-length: {len(body)}\r\n\r\n"
    return head.encode("ascii") + body


def post_calls(bodies: Sequence[Body]) -> list[Call]:
    """POST calls for request bodies."""
    return [Call(encode_call("POST", b.path, b.body), b.path, b.readings) for b in bodies]


def get_calls(paths: Sequence[str]) -> list[Call]:
    """GET calls for paths."""
    return [Call(encode_call("GET", path), path, 0) for path in paths]


class ProtocolError(Exception):
    """The server's answer is not the HTTP/1.1 this client understands."""


class HttpConnection:
    """One keep-alive connection; reopened by the caller after any failure."""

    def __init__(self, host: str, port: int) -> None:
        self._host = host
        self._port = port
        self._reader: asyncio.StreamReader | None = None
        self._writer: asyncio.StreamWriter | None = None

    async def call(self, raw: bytes) -> tuple[int, bytes]:
        """Send one request and read its answer: (status, body)."""
        if self._reader is None or self._writer is None:
            self._reader, self._writer = await asyncio.open_connection(self._host, self._port)
        reader, writer = self._reader, self._writer
        writer.write(raw)
        head = await reader.readuntil(b"\r\n\r\n")
        if not head.startswith(b"HTTP/1.1 "):
            raise ProtocolError(f"not an HTTP/1.1 answer: {head[:40]!r}")
        status = int(head[9:12])
        length: int | None = None
        close = False
        for line in head.split(b"\r\n")[1:]:
            name, _, value = line.partition(b":")
            name = name.strip().lower()
            if name == b"content-length":
                length = int(value)
            elif name == b"connection" and value.strip().lower() == b"close":
                close = True
        if length is None:
            raise ProtocolError("an answer without content-length")
        body = await reader.readexactly(length)
        if close:
            await self.close()
        return status, body

    async def close(self) -> None:
        """Close the socket (a later call reconnects)."""
        writer, self._reader, self._writer = self._writer, None, None
        if writer is not None:
            writer.close()
            with contextlib.suppress(OSError):
                await writer.wait_closed()


@dataclass(slots=True)
class LoadResult:
    """What a load run measured inside its window, and every answer's status."""

    requests: int = 0
    readings: int = 0
    seconds: float = 0.0
    latencies: list[float] = field(default_factory=list)
    statuses: Counter[str] = field(default_factory=Counter)
    problems: list[str] = field(default_factory=list)
    problem_count: int = 0
    ran_out: bool = False

    @property
    def requests_per_second(self) -> float:
        """Completed requests per second of the window."""
        return self.requests / self.seconds if self.seconds > 0 else 0.0

    @property
    def readings_per_second(self) -> float:
        """Readings carried by the completed requests per second of the window."""
        return self.readings / self.seconds if self.seconds > 0 else 0.0

    def percentile(self, share: float) -> float:
        """Latency (seconds) below which `share` of the window's requests completed."""
        ordered = sorted(self.latencies)
        if not ordered:
            return 0.0
        return ordered[min(len(ordered) - 1, int(share * len(ordered)))]

    def note(self, problem: str) -> None:
        """Count a problem; keep the first few for the report."""
        self.problem_count += 1
        if len(self.problems) < _MAX_PROBLEMS:
            self.problems.append(problem)


async def drive(
    host: str,
    port: int,
    calls: Sequence[Call],
    *,
    clients: int,
    request_timeout: float,
    inspect: Inspect,
    warmup: float = 0.0,
    duration: float | None = None,
) -> LoadResult:
    """Send `calls` in order from `clients` concurrent connections, each waiting for its answer.

    Without `duration` every call is sent once and the window runs from the first request to
    the last answer. With it, answers completed in [warmup, warmup + duration) after the start
    count; sending stops at the window's end (or when the calls run out, which is reported).
    """
    result = LoadResult()
    pending: Iterator[Call] = iter(calls)
    started = time.perf_counter()
    window_start = started + warmup if duration is not None else started
    window_end = window_start + duration if duration is not None else float("inf")
    last_done = started

    async def client() -> None:
        nonlocal last_done
        connection = HttpConnection(host, port)
        try:
            for call in pending:
                sent = time.perf_counter()
                if sent >= window_end:
                    return
                try:
                    async with asyncio.timeout(request_timeout):
                        status, body = await connection.call(call.raw)
                except (OSError, TimeoutError, asyncio.IncompleteReadError, ProtocolError) as exc:
                    await connection.close()
                    result.statuses["error"] += 1
                    result.note(f"{call.label}: {exc!r}")
                    continue
                done = time.perf_counter()
                result.statuses[str(status)] += 1
                problem = inspect(call, status, body)
                if problem is not None:
                    result.note(problem)
                if window_start <= done < window_end:
                    result.requests += 1
                    result.readings += call.readings
                    result.latencies.append(done - sent)
                    last_done = max(last_done, done)
            result.ran_out = duration is not None
        finally:
            await connection.close()

    await asyncio.gather(*(client() for _ in range(clients)))
    if duration is None or result.ran_out:
        result.seconds = last_done - window_start
    else:
        result.seconds = duration
    return result
