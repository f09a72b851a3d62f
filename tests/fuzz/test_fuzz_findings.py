"""Regressions: minimal reproductions of the bugs the fuzz tests found, each stating the right
behaviour."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import asyncpg
import httpx
import pytest

from energy_ingest.config import Settings
from tests.factories import minute, vehicle_reading
from tests.support import start_engine


def _assert_refused(answer: httpx.Response, status: int = 422) -> None:
    assert answer.status_code == status, answer.text
    body = answer.json()
    assert body["error"], body
    assert body["message"], body


# --- 1. timestamps at the edge of the calendar: OverflowError → 500 ---------------------------
# parse_timestamp converts to UTC outside its try (and resolve_window adds/subtracts 24 h)
# without catching OverflowError, which pydantic does not turn into a validation error either.
_EDGE = [
    ("POST", "/v1/ingest/meter",
     {"meterId": "M1", "kwhConsumedAc": 1, "voltage": 230,
      "timestamp": "9999-12-31T23:59:59-01:00"}),
    ("POST", "/v1/ingest/vehicle",
     {"vehicleId": "V1", "soc": 50, "kwhDeliveredDc": 1, "batteryTemp": 20,
      "timestamp": "0001-01-01T00:30:00+01:00"}),
    ("GET", "/v1/analytics/performance/V1?from=0001-01-01T00:00:00%2B01:00", None),
    ("GET", "/v1/analytics/performance/V1?to=0001-01-01T12:00:00Z", None),  # from = to − 24 h
    ("GET", "/v1/analytics/performance/V1?from=9999-12-31T12:00:00Z", None),  # to = from + 24 h
    ("DELETE", "/v1/vehicles/V1/meter?at=9999-12-31T23:00:00-05:00", None),
    ("PUT", "/v1/vehicles/V1/meter", {"meterId": "M1", "from": "0001-01-01T00:00:00+01:00"}),
]  # fmt: skip


@pytest.mark.parametrize(("method", "url", "body"), _EDGE)
async def test_a_timestamp_at_the_edge_of_the_calendar_is_a_422(
    client: httpx.AsyncClient, method: str, url: str, body: dict[str, Any] | None
) -> None:
    _assert_refused(await client.request(method, url, json=body))


# --- 2. an assignment from 0001-01-01T00:00:00Z is stored as -infinity ------------------------
async def test_an_assignment_from_the_first_instant_of_the_calendar_is_kept_as_sent(
    client: httpx.AsyncClient, db: asyncpg.Connection
) -> None:
    body = {"meterId": "M1", "from": "0001-01-01T00:00:00Z"}
    answer = await client.put("/v1/vehicles/V1/meter", json=body)
    # asyncpg sends that instant as -infinity: it must be refused, not stored.
    _assert_refused(answer)
    assert (await client.get("/v1/vehicles/V1/assignments")).json() == []
    assert await db.fetchval("SELECT count(*) FROM vehicle_meter_assignments") == 0


# --- 3. a path id ending in one newline passes the id check ----------------------------------
# require_device_id uses Python's re.match with `$`, which also matches before a final "\n".
async def test_a_path_id_ending_in_a_newline_is_refused(
    client: httpx.AsyncClient, db: asyncpg.Connection
) -> None:
    answer = await client.put("/v1/vehicles/V1%0A/meter", json={"meterId": "M1"})
    stored = await db.fetchval("SELECT count(*) FROM vehicle_meter_assignments")
    assert stored == 0, "an assignment of vehicle 'V1\\n' was stored"
    _assert_refused(answer)


# --- 4. soc / batteryTemp too close to 0 for `real`: the whole batch fails with 503 ----------
# 0 < |x| < 7e-46 is a valid number in range, but PostgreSQL cannot round it to `real`: the
# batch's transaction fails, and every request sharing the batch gets 503, on every retry.
async def test_a_tiny_battery_temperature_does_not_fail_its_batch(
    client: httpx.AsyncClient,
) -> None:
    valid = vehicle_reading(vehicle_id="V1")
    tiny = vehicle_reading(vehicle_id="V2", temp=1e-50)
    answer = await client.post("/v1/ingest/vehicle/batch", json=[valid, tiny])
    assert answer.status_code == 201, answer.text


async def _until(condition: Callable[[], bool]) -> None:
    for _ in range(1000):
        if condition():
            return
        await asyncio.sleep(0.01)
    raise RuntimeError("never happened")


async def test_a_tiny_soc_does_not_fail_other_clients_readings(
    settings: Settings, database_url: str
) -> None:
    one_slot = settings.model_copy(update={"writer_concurrency": 1})
    async with start_engine(one_slot) as engine:
        blocker = await asyncpg.connect(database_url)
        try:
            # The first batch waits on the lock; the next two requests queue up and share the
            # following batch.
            transaction = blocker.transaction()
            await transaction.start()
            await blocker.execute("LOCK TABLE vehicle_live IN EXCLUSIVE MODE")
            first = asyncio.create_task(
                engine.client.post("/v1/ingest/vehicle", json=vehicle_reading(vehicle_id="V0"))
            )
            await _until(lambda: engine.writer.batches_in_flight == 1)
            mine = vehicle_reading(vehicle_id="V1", at=minute(-2))
            theirs = vehicle_reading(vehicle_id="V2", soc=1e-50, at=minute(-2))
            pending = [
                asyncio.create_task(engine.client.post("/v1/ingest/vehicle", json=body))
                for body in (mine, theirs)
            ]
            await _until(lambda: engine.writer.queued_readings == 2)
            await transaction.rollback()
        finally:
            await blocker.close()
        assert (await first).status_code == 201
        answer, _ = await asyncio.gather(*pending)
    assert answer.status_code == 201, f"a valid reading got {answer.status_code}: {answer.text}"


# --- 5. unrouted paths are answered in Starlette's shape, not the engine's -------------------
@pytest.mark.parametrize(
    ("method", "url", "status"),
    [("GET", "/v1/analytics/meter/a%2Fb/live", 404), ("PATCH", "/v1/ingest/meter", 405)],
)
async def test_an_unrouted_request_is_answered_with_error_and_message(
    client: httpx.AsyncClient, method: str, url: str, status: int
) -> None:
    _assert_refused(await client.request(method, url), status)


# --- 6. years before 1000 are written with fewer than four digits ----------------------------
# format_timestamp uses strftime("%Y"), which does not pad the year on glibc.
async def test_a_timestamp_before_year_2000_is_refused(client: httpx.AsyncClient) -> None:
    # Was: stored, then answered as '999-06-01T…' (strftime does not pad the year). Times
    # outside 2000–2100 are now refused everywhere.
    answer = await client.put(
        "/v1/vehicles/V1/meter", json={"meterId": "M1", "from": "0999-06-01T00:00:00Z"}
    )
    _assert_refused(answer)
    assert "between 2000-01-01 and 2100-01-01" in answer.text
