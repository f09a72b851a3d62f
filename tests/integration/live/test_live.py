"""Live state: the newest reading per device, never moved back by a late one."""

from __future__ import annotations

from datetime import UTC, datetime

import asyncpg
import httpx

from tests.factories import iso, meter_reading, minute, vehicle_reading


async def test_vehicle_live_has_the_seed_fields_and_freshness(client: httpx.AsyncClient) -> None:
    at = minute(-2)
    await client.post(
        "/v1/ingest/vehicle",
        json=vehicle_reading(vehicle_id="V1", soc=61.5, kwh=0.9, temp=33.0, at=at),
    )
    response = await client.get("/v1/analytics/vehicle/V1/live")
    assert response.status_code == 200
    body = response.json()
    assert {k: body[k] for k in ("vehicleId", "soc", "kwhDeliveredDc", "batteryTemp")} == {
        "vehicleId": "V1",
        "soc": 61.5,
        "kwhDeliveredDc": 0.9,
        "batteryTemp": 33.0,
    }
    assert body["lastUpdatedAt"] == iso(at)
    assert body["receivedAt"] >= body["lastUpdatedAt"]
    assert 100 <= body["ageSeconds"] < 3600


async def test_meter_live_has_the_seed_fields(client: httpx.AsyncClient) -> None:
    at = minute(-1)
    await client.post(
        "/v1/ingest/meter", json=meter_reading(meter_id="M1", kwh=3.0, voltage=231.0, at=at)
    )
    body = (await client.get("/v1/analytics/meter/M1/live")).json()
    assert {k: body[k] for k in ("meterId", "kwhConsumedAc", "voltage", "lastUpdatedAt")} == {
        "meterId": "M1",
        "kwhConsumedAc": 3.0,
        "voltage": 231.0,
        "lastUpdatedAt": iso(at),
    }
    assert {"receivedAt", "ageSeconds"} <= set(body)


async def test_unknown_devices_are_404(client: httpx.AsyncClient) -> None:
    for path in ("/v1/analytics/vehicle/nobody/live", "/v1/analytics/meter/nobody/live"):
        response = await client.get(path)
        assert response.status_code == 404
        assert response.json()["error"] == "not_found"


async def test_a_malformed_id_is_a_422_not_a_lookup(client: httpx.AsyncClient) -> None:
    response = await client.get("/v1/analytics/meter/" + "x" * 65 + "/live")
    assert response.status_code == 422
    assert response.json()["errors"][0]["field"] == "meterId"


async def test_a_late_reading_goes_to_history_but_never_moves_live_back(
    client: httpx.AsyncClient, db: asyncpg.Connection
) -> None:
    newer, older = minute(-1), minute(-10)
    await client.post("/v1/ingest/vehicle", json=vehicle_reading(vehicle_id="V1", soc=80, at=newer))
    late = await client.post(
        "/v1/ingest/vehicle", json=vehicle_reading(vehicle_id="V1", soc=20, at=older)
    )
    assert late.status_code == 201
    live = (await client.get("/v1/analytics/vehicle/V1/live")).json()
    assert (live["soc"], live["lastUpdatedAt"]) == (80.0, iso(newer))
    assert (
        await db.fetchval("SELECT count(*) FROM vehicle_reading_history WHERE vehicle_id = 'V1'")
        == 2
    )


async def test_out_of_order_readings_in_one_batch_leave_the_newest_live(
    client: httpx.AsyncClient,
) -> None:
    now = datetime.now(UTC)
    items = [
        meter_reading(meter_id="M1", voltage=200 + i, at=minute(-i, base=now)) for i in (5, 1, 9, 3)
    ]
    await client.post("/v1/ingest/meter/batch", json=items)
    live = (await client.get("/v1/analytics/meter/M1/live")).json()
    assert (live["voltage"], live["lastUpdatedAt"]) == (201.0, iso(minute(-1, base=now)))


async def test_live_rows_are_updated_in_place(
    client: httpx.AsyncClient, db: asyncpg.Connection
) -> None:
    for offset in (30, 20, 10):
        await client.post("/v1/ingest/meter", json=meter_reading(meter_id="M1", at=minute(-offset)))
    assert await db.fetchval("SELECT count(*) FROM meter_live") == 1
    assert await db.fetchval("SELECT count(*) FROM meter_readings") == 3
