"""Request ids and structured logs: every line of a request names it, none carries readings."""

from __future__ import annotations

import json
import logging

import httpx
import pytest

from energy_ingest.telemetry.logs import JsonFormatter, request_id
from tests.factories import meter_reading


async def test_a_client_request_id_is_echoed_and_a_missing_one_made(
    client: httpx.AsyncClient,
) -> None:
    given = await client.get("/healthz", headers={"X-Request-ID": "edge-42.a:b"})
    assert given.headers["x-request-id"] == "edge-42.a:b"
    made = await client.get("/healthz")
    assert len(made.headers["x-request-id"]) == 32
    hostile = await client.get("/healthz", headers={"X-Request-ID": "x" * 65})
    assert hostile.headers["x-request-id"] != "x" * 65


async def test_access_lines_name_the_request_but_never_its_readings(
    client: httpx.AsyncClient, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="energy_ingest.access")
    secret_value = 2345.678
    await client.post(
        "/v1/ingest/meter",
        json=meter_reading(voltage=secret_value),
        headers={"X-Request-ID": "trace-me", "Authorization": "Bearer not-a-real-key"},
    )
    lines = [JsonFormatter().format(record) for record in caplog.records]
    access = [json.loads(line) for line in lines if '"energy_ingest.access"' in line]
    assert len(access) == 1
    assert access[0]["status"] == 422  # 2345.678 V is out of range
    assert access[0]["route"] == "/v1/ingest/meter"
    assert "durationMs" in access[0]
    assert all(str(secret_value) not in line and "not-a-real-key" not in line for line in lines)


def test_json_lines_carry_the_current_request_id() -> None:
    record = logging.LogRecord("engine", logging.WARNING, __file__, 1, "batch failed", None, None)
    token = request_id.set("req-1")
    try:
        record.request_id = request_id.get()
        entry = json.loads(JsonFormatter().format(record))
    finally:
        request_id.reset(token)
    assert entry["requestId"] == "req-1"
    assert (entry["level"], entry["logger"], entry["message"]) == (
        "warning",
        "engine",
        "batch failed",
    )
