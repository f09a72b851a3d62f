"""The simulator's HTTP client: 503 + Retry-After and lost connections are retried, then counted."""

from __future__ import annotations

from collections.abc import Callable

import httpx
import pytest

from energy_ingest.simulator.client import EngineClient, EngineUnreachable


def _client(
    handler: Callable[[httpx.Request], httpx.Response], slept: list[float], attempts: int = 5
) -> EngineClient:
    transport = httpx.MockTransport(handler)
    http = httpx.AsyncClient(transport=transport, base_url="http://engine")

    async def sleep(seconds: float) -> None:
        slept.append(seconds)

    return EngineClient(http, attempts=attempts, sleep=sleep)


async def test_overload_is_retried_after_the_time_the_engine_asks_for() -> None:
    answers = iter(
        [
            httpx.Response(503, headers={"Retry-After": "2"}, json={"error": "overloaded"}),
            httpx.Response(
                201,
                json={
                    "total": 3,
                    "successful": 3,
                    "failed": 0,
                    "stored": 2,
                    "duplicates": 1,
                    "errors": [],
                },
            ),
        ]
    )
    slept: list[float] = []
    client = _client(lambda request: next(answers), slept)

    delivered = await client.send_batch("meter", b"[]")

    assert slept == [2.0]
    assert (delivered.stored, delivered.duplicates, delivered.unavailable) == (2, 1, 1)


async def test_a_lost_connection_is_retried_with_back_off() -> None:
    calls = 0

    def handler(request: httpx.Request) -> httpx.Response:
        nonlocal calls
        calls += 1
        if calls < 3:
            raise httpx.ConnectError("connection refused", request=request)
        return httpx.Response(200, json={"success": True, "status": "duplicate"})

    slept: list[float] = []
    delivered = await _client(handler, slept).send_one("vehicle", b"{}")

    assert delivered.duplicates == 1
    assert delivered.transport_errors == 2
    assert slept == [0.2, 0.5]


async def test_an_engine_that_never_answers_stops_the_run() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("connection refused", request=request)

    with pytest.raises(EngineUnreachable, match="POST /v1/ingest/meter/batch"):
        await _client(handler, [], attempts=3).send_batch("meter", b"[]")


async def test_refused_readings_are_counted_with_the_engines_reason() -> None:
    answer = {
        "total": 2, "successful": 1, "failed": 1, "stored": 1, "duplicates": 0,
        "errors": [{"index": 1, "reason": "invalid", "message": "soc: must be between 0 and 100"}],
    }  # fmt: skip
    delivered = await _client(lambda request: httpx.Response(201, json=answer), []).send_batch(
        "vehicle", b"[]"
    )
    assert delivered.rejected == 1
    assert delivered.messages == ("soc: must be between 0 and 100",)
