"""Batches: per-item outcomes by index, partial success, limits, and the polymorphic endpoint."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import asyncpg
import httpx

from energy_ingest.config import Settings
from tests.factories import meter_reading, minute, vehicle_reading
from tests.support import start_engine


async def test_valid_items_are_stored_and_every_failure_is_listed_by_index(
    client: httpx.AsyncClient, db: asyncpg.Connection
) -> None:
    items: list[Any] = [
        meter_reading(meter_id="M1", at=minute(-3)),
        meter_reading(meter_id="M1", voltage=-5, at=minute(-2)),
        "not an object",
        meter_reading(meter_id="M2", at=minute(-3)),
        {"meterId": "M3"},
    ]
    response = await client.post("/v1/ingest/meter/batch", json=items)
    assert response.status_code == 201
    body = response.json()
    assert {k: body[k] for k in ("total", "successful", "failed", "stored", "duplicates")} == {
        "total": 5,
        "successful": 2,
        "failed": 3,
        "stored": 2,
        "duplicates": 0,
    }
    assert [error["index"] for error in body["errors"]] == [1, 2, 4]
    assert "voltage" in body["errors"][0]["message"]
    assert body["errors"][0]["fields"][0] == {
        "field": "voltage",
        "rule": "range",
        "message": "must be between 0 and 2000",
    }
    assert "kwhConsumedAc" in body["errors"][2]["message"]
    assert await db.fetchval("SELECT count(*) FROM meter_readings") == 2


async def test_duplicates_and_conflicts_in_a_batch(
    client: httpx.AsyncClient, db: asyncpg.Connection
) -> None:
    at = minute(-4)
    await client.post("/v1/ingest/vehicle", json=vehicle_reading(vehicle_id="V1", at=at, soc=40))
    items = [
        vehicle_reading(vehicle_id="V1", at=at, soc=40),  # re-send of the stored one
        vehicle_reading(vehicle_id="V1", at=at, soc=41),  # conflicts with it
        vehicle_reading(vehicle_id="V2", at=at, soc=10),  # new
        vehicle_reading(vehicle_id="V2", at=at, soc=10),  # repeated inside the batch
        vehicle_reading(vehicle_id="V2", at=at, soc=11),  # conflicting inside the batch
    ]
    response = await client.post("/v1/ingest/vehicle/batch", json=items)
    assert response.status_code == 201
    body = response.json()
    assert (body["stored"], body["duplicates"], body["failed"], body["successful"]) == (1, 2, 2, 3)
    assert [(e["index"], e["reason"]) for e in body["errors"]] == [(1, "conflict"), (4, "conflict")]
    stored = await db.fetch(
        "SELECT vehicle_id, soc FROM vehicle_reading_history ORDER BY vehicle_id"
    )
    assert [(r["vehicle_id"], r["soc"]) for r in stored] == [("V1", 40.0), ("V2", 10.0)]


async def test_a_batch_where_nothing_succeeds_is_a_422_with_the_same_body(
    client: httpx.AsyncClient, db: asyncpg.Connection
) -> None:
    response = await client.post("/v1/ingest/meter/batch", json=[{"meterId": "x"}, 5])
    assert response.status_code == 422
    body = response.json()
    assert (body["total"], body["successful"], body["failed"]) == (2, 0, 2)
    assert [e["index"] for e in body["errors"]] == [0, 1]
    assert await db.fetchval("SELECT count(*) FROM meter_readings") == 0


async def test_a_batch_must_be_an_array(client: httpx.AsyncClient) -> None:
    response = await client.post("/v1/ingest/meter/batch", json=meter_reading())
    assert response.status_code == 422
    assert response.json()["errors"][0]["field"] == "body"


async def test_a_batch_over_the_item_limit_is_a_413(
    settings: Settings, db: asyncpg.Connection
) -> None:
    async with start_engine(settings.model_copy(update={"max_batch_items": 3})) as engine:
        items = [meter_reading(meter_id=f"M{i}") for i in range(4)]
        response = await engine.client.post("/v1/ingest/meter/batch", json=items)
        assert response.status_code == 413
        assert "at most 3" in response.json()["message"]
        ok = await engine.client.post("/v1/ingest/meter/batch", json=items[:3])
        assert ok.status_code == 201
    assert await db.fetchval("SELECT count(*) FROM meter_readings") == 3


async def test_the_default_item_limit_is_ten_thousand(client: httpx.AsyncClient) -> None:
    items = [meter_reading(meter_id="M") for _ in range(10_001)]
    response = await client.post("/v1/ingest/meter/batch", json=items)
    assert response.status_code == 413


async def test_a_body_over_the_byte_limit_is_a_413(settings: Settings) -> None:
    async with start_engine(settings.model_copy(update={"max_body_bytes": 2048})) as engine:
        items = [meter_reading(meter_id=f"M{i}") for i in range(40)]
        response = await engine.client.post("/v1/ingest/meter/batch", json=items)
        assert response.status_code == 413


async def test_a_large_batch_is_stored_whole(
    client: httpx.AsyncClient, db: asyncpg.Connection
) -> None:
    now = datetime.now(UTC)  # one clock for the readings and the check: no minute boundary
    items = [
        meter_reading(meter_id=f"M{device}", at=minute(-offset, base=now), kwh=0.5)
        for device in range(500)
        for offset in range(1, 21)
    ]
    response = await client.post("/v1/ingest/meter/batch", json=items)
    assert response.status_code == 201
    assert response.json()["stored"] == 10_000
    assert await db.fetchval("SELECT count(*) FROM meter_readings") == 10_000
    assert await db.fetchval("SELECT count(*) FROM meter_live") == 500
    newest = await db.fetchval(
        "SELECT count(*) FROM meter_live WHERE ts = $1", minute(-1, base=now)
    )
    assert newest == 500


async def test_the_polymorphic_endpoint_takes_one_reading_of_either_kind(
    client: httpx.AsyncClient,
) -> None:
    meter = await client.post("/v1/ingest", json=meter_reading(meter_id="M9"))
    assert (meter.status_code, meter.json()) == (
        201,
        {"success": True, "meterId": "M9", "status": "stored"},
    )
    vehicle = await client.post("/v1/ingest", json=vehicle_reading(vehicle_id="V9"))
    assert vehicle.json() == {"success": True, "vehicleId": "V9", "status": "stored"}


async def test_the_polymorphic_endpoint_takes_a_mixed_array(
    client: httpx.AsyncClient, db: asyncpg.Connection
) -> None:
    items: list[Any] = [
        meter_reading(meter_id="M1"),
        vehicle_reading(vehicle_id="V1"),
        {**meter_reading(), **vehicle_reading()},
        {"timestamp": "2026-01-01T00:00:00Z"},
    ]
    response = await client.post("/v1/ingest", json=items)
    assert response.status_code == 201
    body = response.json()
    assert (body["stored"], body["failed"]) == (2, 2)
    assert [e["index"] for e in body["errors"]] == [2, 3]
    assert "both" in body["errors"][0]["message"]
    assert "neither" in body["errors"][1]["message"]
    assert await db.fetchval("SELECT count(*) FROM meter_readings") == 1
    assert await db.fetchval("SELECT count(*) FROM vehicle_readings") == 1


async def test_repeats_inside_a_mixed_array_take_their_own_kinds_leaders_outcome(
    client: httpx.AsyncClient, db: asyncpg.Connection
) -> None:
    at = minute(-2)
    items: list[Any] = [
        meter_reading(meter_id="M1", at=at),
        vehicle_reading(vehicle_id="V1", at=at, soc=40),
        meter_reading(meter_id="M1", at=at),  # repeats item 0
        vehicle_reading(vehicle_id="V1", at=at, soc=41),  # conflicts with item 1
        meter_reading(meter_id="V1", at=at),  # a meter may share a vehicle's id
        vehicle_reading(vehicle_id="V1", at=at, soc=40),  # repeats item 1
    ]
    response = await client.post("/v1/ingest", json=items)
    assert response.status_code == 201
    body = response.json()
    assert (body["stored"], body["duplicates"], body["failed"]) == (3, 2, 1)
    assert [(e["index"], e["reason"]) for e in body["errors"]] == [(3, "conflict")]
    assert await db.fetchval("SELECT count(*) FROM meter_readings") == 2
    assert await db.fetchval("SELECT soc FROM vehicle_reading_history") == 40.0


async def test_the_polymorphic_endpoint_refuses_an_object_with_both_ids(
    client: httpx.AsyncClient,
) -> None:
    response = await client.post("/v1/ingest", json={**meter_reading(), **vehicle_reading()})
    assert response.status_code == 422
    assert response.json()["errors"][0]["field"] == "meterId|vehicleId"


async def test_a_client_too_slow_to_send_its_body_gets_408(settings: Settings) -> None:
    async def trickle() -> AsyncIterator[bytes]:
        yield b'[{"meterId": "slow",'
        await asyncio.sleep(1)
        yield b"}]"

    async with start_engine(settings.model_copy(update={"body_timeout_seconds": 0.2})) as engine:
        response = await engine.client.post(
            "/v1/ingest/meter/batch",
            content=trickle(),
            headers={"content-type": "application/json"},
        )
        assert response.status_code == 408
        assert response.json()["error"] == "request_timeout"
