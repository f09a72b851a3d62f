"""The server's own bounds, against a real `energy-ingest serve` over real sockets: request heads
are limited in size, count and time, and open connections are capped with an answer."""

from __future__ import annotations

import asyncio
from pathlib import Path

from tests.integration.server.engines import running_engine
from tests.integration.server.raw import (
    Answer,
    close,
    closed,
    connect,
    read_answer,
    request,
    send,
)

MAX_HEADER_BYTES = 16 * 1024


def resident_bytes(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise AssertionError("no VmRSS")


async def refusal(reader: asyncio.StreamReader) -> Answer:
    answer = await read_answer(reader)
    assert answer.headers.get("connection") == "close"
    assert await closed(reader)
    return answer


async def test_an_oversized_head_gets_431_and_the_server_keeps_none_of_it(
    database_url: str,
) -> None:
    async with running_engine(database_url) as engine:
        before = resident_bytes(engine.pid)
        connections = [await connect(engine.port) for _ in range(4)]
        sent = [0] * len(connections)
        chunk = b"a" * 65536
        # Four clients each try to push 16 MiB of one unfinished header value.
        for index, (_, writer) in enumerate(connections):
            assert await send(writer, b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: ")
            for _ in range(256):
                if not await send(writer, chunk):
                    break
                sent[index] += len(chunk)
        grown = resident_bytes(engine.pid) - before
        for reader, writer in connections:
            answer = await refusal(reader)
            assert answer.status == 431
            assert b"headers_too_large" in answer.body
            assert answer.headers["x-content-type-options"] == "nosniff"
            await close(writer)
        # Whatever the clients managed to push (plain uvicorn buffers all 64 MiB: +64 MB), the
        # server kept at most a head's worth and one socket read of each.
        assert grown < 16 * 1024 * 1024, (grown, sent)
        # The engine still serves.
        reader, writer = await connect(engine.port)
        assert await send(writer, request())
        assert (await read_answer(reader)).status == 200
        await close(writer)


async def test_a_head_just_under_the_limit_and_a_large_body_are_served(database_url: str) -> None:
    async with running_engine(database_url) as engine:
        reader, writer = await connect(engine.port)
        filler = b"X-Fill: " + b"f" * (MAX_HEADER_BYTES - 200) + b"\r\n"
        assert await send(writer, request(extra=filler))
        assert (await read_answer(reader)).status == 200
        # A body far larger than the head limit, sent with its head in one write, is not a head.
        body = b"[" + b"{}," * 9_000 + b"{}]"
        head = (
            f"POST /v1/ingest HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
            f"Authorization: {engine.headers['Authorization']}\r\n"
            f"Content-Length: {len(body)}\r\n\r\n"
        ).encode()
        assert await send(writer, head + body)
        answer = await read_answer(reader)
        assert answer.status == 422, answer  # parsed and validated: the body got through
        await close(writer)


async def test_too_many_headers_get_431(database_url: str) -> None:
    async with running_engine(database_url) as engine:
        reader, writer = await connect(engine.port)
        headers = b"".join(b"X-H%d: 1\r\n" % number for number in range(150))
        assert await send(writer, request(extra=headers))
        answer = await refusal(reader)
        assert answer.status == 431
        assert b"too_many_headers" in answer.body
        await close(writer)
        # A hundred is allowed.
        reader, writer = await connect(engine.port)
        headers = b"".join(b"X-H%d: 1\r\n" % number for number in range(99))
        assert await send(writer, request(extra=headers))
        assert (await read_answer(reader)).status == 200
        await close(writer)


async def test_trickled_headers_are_cut_off_with_408(database_url: str) -> None:
    async with running_engine(database_url, {"EIE_HEADER_TIMEOUT_SECONDS": "1"}) as engine:
        reader, writer = await connect(engine.port)
        assert await send(writer, b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n")
        answered = asyncio.create_task(read_answer(reader))
        lines_sent = 0
        # One header line every 0.2 s, for as long as 60 s: the server must end it long before.
        for number in range(300):
            await asyncio.sleep(0.2)
            if answered.done() or not await send(writer, b"X-Slow-%d: 1\r\n" % number):
                break
            lines_sent += 1
        assert lines_sent < 300, "the trickling connection was never closed"
        answer = await answered
        assert answer.status == 408
        assert answer.headers["connection"] == "close"
        assert b"request_timeout" in answer.body
        assert await closed(reader)
        await close(writer)


async def test_a_trickled_head_on_a_kept_alive_connection_is_cut_off(database_url: str) -> None:
    async with running_engine(database_url, {"EIE_HEADER_TIMEOUT_SECONDS": "1"}) as engine:
        reader, writer = await connect(engine.port)
        assert await send(writer, request())
        assert (await read_answer(reader)).status == 200
        assert await send(writer, b"GET /healthz HTTP/1.1\r\n")
        answered = asyncio.create_task(read_answer(reader))
        lines_sent = 0
        for number in range(300):
            if answered.done() or not await send(writer, b"X-Slow-%d: 1\r\n" % number):
                break
            lines_sent += 1
            await asyncio.sleep(0.2)
        assert lines_sent < 300, "the trickling connection was never closed"
        answer = await answered
        assert answer.status == 408
        assert await closed(reader)
        await close(writer)


async def test_a_connection_that_never_sends_is_closed(database_url: str) -> None:
    async with running_engine(database_url, {"EIE_HEADER_TIMEOUT_SECONDS": "1"}) as engine:
        reader, writer = await connect(engine.port)
        assert await closed(reader)
        await close(writer)
        # Keep-alive still works: two requests on one connection.
        reader, writer = await connect(engine.port)
        for _ in range(2):
            assert await send(writer, request())
            answer = await read_answer(reader)
            assert answer.status == 200
            assert answer.headers.get("connection") != "close"
        await close(writer)


async def _served(port: int) -> tuple[asyncio.StreamReader, asyncio.StreamWriter] | None:
    """A connection that got 200 (held open), or None when the server refused it."""
    reader, writer = await connect(port)
    assert await send(writer, request())
    answer = await read_answer(reader)
    if answer.status == 200:
        return reader, writer
    assert answer.status == 503
    await close(writer)
    return None


async def test_connections_past_the_cap_get_503_with_retry_after(database_url: str) -> None:
    environment = {"EIE_MAX_CONNECTIONS": "5", "EIE_HEADER_TIMEOUT_SECONDS": "120"}
    async with running_engine(database_url, environment) as engine:
        held: list[tuple[asyncio.StreamReader, asyncio.StreamWriter]] = []
        # The readiness probe's own connection may still be closing: retry until 5 are held.
        for _ in range(200):
            if len(held) == 5:
                break
            connection = await _served(engine.port)
            if connection is None:
                await asyncio.sleep(0.05)
            else:
                held.append(connection)
        assert len(held) == 5
        # Each held connection starts another request and stalls in its head (kept open).
        for _, writer in held:
            assert await send(writer, b"GET /healthz HTTP/1.1\r\n")

        reader, writer = await connect(engine.port)
        await send(writer, request())
        answer = await refusal(reader)
        assert answer.status == 503
        assert answer.headers["retry-after"] == "1"
        assert b"overloaded" in answer.body
        assert answer.headers["x-content-type-options"] == "nosniff"
        assert "server" not in answer.headers
        await close(writer)

        # One client leaves: a new one is served again once the server has seen it go.
        await close(held.pop()[1])
        for _ in range(200):
            connection = await _served(engine.port)
            if connection is not None:
                await close(connection[1])
                break
            await asyncio.sleep(0.05)
        else:
            raise AssertionError("no connection was served after one was released")
        for _, held_writer in held:
            await close(held_writer)
