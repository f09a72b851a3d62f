"""Admin requests whose bodies trickle in hold no database connection: ingest goes on meanwhile.

A real `energy-ingest serve` process, real sockets. Each admin request sends its headers and
the first byte of its body, then stalls; more of them than the writer's pool has connections.
"""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import AsyncIterator, MutableMapping
from contextlib import asynccontextmanager
from typing import Any

import asyncpg
import httpx

from tests.factories import meter_reading
from tests.faults.processes import EngineProcess, engine_process
from tests.support import Engine

# More stalled admin requests than the writer's pool holds (writer_concurrency + 2 = 4).
SLOW_KEY_REQUESTS = 4
SLOW_ASSIGNMENTS = 2
INGEST_REQUESTS = 12

# A stalled body is not cut short by the body timeout while the test runs.
_PATIENT = {"EIE_BODY_TIMEOUT_SECONDS": "600", "EIE_WRITER_CONCURRENCY": "2"}


class SlowRequest:
    """One request on its own socket: headers and a first byte now, the rest on `finish`."""

    def __init__(self, engine: EngineProcess, method: str, path: str, body: bytes) -> None:
        self._engine, self._method, self._path, self._body = engine, method, path, body
        self._reader: asyncio.StreamReader | None = None
        self._writer: asyncio.StreamWriter | None = None
        self._sent = 0

    async def start(self) -> None:
        self._reader, self._writer = await asyncio.open_connection("127.0.0.1", self._engine.port)
        headers = {
            "Host": f"127.0.0.1:{self._engine.port}",
            "Content-Type": "application/json",
            "Content-Length": str(len(self._body)),
            **self._engine.headers,
        }
        head = f"{self._method} {self._path} HTTP/1.1\r\n" + "".join(
            f"{name}: {value}\r\n" for name, value in headers.items()
        )
        self._writer.write(head.encode() + b"\r\n" + self._body[:1])
        await self._writer.drain()
        self._sent = 1

    async def trickle(self) -> None:
        """One more byte of the body (never the last one)."""
        assert self._writer is not None
        if self._sent < len(self._body) - 1:
            self._writer.write(self._body[self._sent : self._sent + 1])
            await self._writer.drain()
            self._sent += 1

    async def finish(self) -> int:
        """Send the rest of the body; the answer's status."""
        assert self._reader is not None
        assert self._writer is not None
        self._writer.write(self._body[self._sent :])
        await self._writer.drain()
        status_line = await asyncio.wait_for(self._reader.readline(), 60)
        self._writer.close()
        return int(status_line.split()[1])


@asynccontextmanager
async def slow_requests(engine: EngineProcess) -> AsyncIterator[list[SlowRequest]]:
    requests = [
        SlowRequest(
            engine,
            "POST",
            "/v1/keys",
            json.dumps({"scopes": ["read"], "name": f"slow-{number}"}).encode(),
        )
        for number in range(SLOW_KEY_REQUESTS)
    ] + [
        SlowRequest(
            engine,
            "PUT",
            f"/v1/vehicles/slow-ev-{number}/meter",
            json.dumps({"meterId": f"slow-meter-{number}"}).encode(),
        )
        for number in range(SLOW_ASSIGNMENTS)
    ]
    for request in requests:
        await request.start()
    yield requests


def write_pool_in_use(metrics: str) -> int:
    match = re.search(r'eie_pool_connections\{pool="write",state="in_use"\} (\S+)', metrics)
    assert match is not None, metrics
    return int(float(match.group(1)))


async def backends(database_url: str, application: str) -> int:
    connection = await asyncpg.connect(database_url)
    try:
        count: int = await connection.fetchval(
            "SELECT count(*) FROM pg_stat_activity"
            " WHERE datname = current_database() AND application_name = $1",
            application,
        )
        return count
    finally:
        await connection.close()


async def test_slow_admin_bodies_hold_no_connection_and_ingest_goes_on(database_url: str) -> None:
    async with engine_process(database_url, environment=_PATIENT) as engine:
        await engine.start()
        async with (
            httpx.AsyncClient(base_url=engine.base_url, headers=engine.headers) as client,
            slow_requests(engine) as stalled,
        ):
            stored = 0
            for number in range(INGEST_REQUESTS):
                for request in stalled:
                    await request.trickle()
                try:
                    response = await client.post(
                        "/v1/ingest/meter",
                        json=meter_reading(meter_id=f"m-{number}"),
                        timeout=20.0,
                    )
                except httpx.TimeoutException:
                    break  # ingest is stalled: the assertion below shows how far it got
                stored += response.status_code == 201

            # Every ingest request was stored while six admin bodies were still arriving...
            assert stored == INGEST_REQUESTS
            # ...and none of those requests borrowed a connection: not one of the writer's
            # pool, not even one of the admin pool (which opens none until it is needed).
            in_use = [write_pool_in_use((await client.get("/metrics")).text) for _ in range(50)]
            assert 0 in in_use, in_use
            assert await backends(database_url, "energy-ingest admin") == 0

            statuses = [await request.finish() for request in stalled]

        assert statuses == [201] * (SLOW_KEY_REQUESTS + SLOW_ASSIGNMENTS)
        # The admin work ran on the admin pool, within its size.
        assert 1 <= await backends(database_url, "energy-ingest admin") <= 2


async def test_a_read_connection_is_given_back_before_the_answer_is_sent(engine: Engine) -> None:
    # A client that takes its answer slowly must not keep a read connection: at the moment the
    # answer starts to go out, the read pool has none borrowed.
    pool = engine.state.database.read_pool
    borrowed_while_sending: list[int] = []

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: MutableMapping[str, Any]) -> None:
        if message["type"] == "http.response.start":
            borrowed_while_sending.append(pool.get_size() - pool.get_idle_size())
            assert message["status"] == 200

    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "GET",
        "scheme": "http",
        "path": "/v1/vehicles/ev-1/assignments",
        "raw_path": b"/v1/vehicles/ev-1/assignments",
        "query_string": b"",
        "root_path": "",
        "headers": [(b"host", b"127.0.0.1")],
        "client": ("127.0.0.1", 50000),
        "server": ("127.0.0.1", 80),
        "state": {},
    }
    await engine.app(scope, receive, send)

    assert borrowed_while_sending == [0]
