"""POST /v1/ingest/meter and /vehicle: stored, duplicate, conflict, and every kind of refusal."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import httpx
import pytest

from tests.factories import meter_reading, minute, vehicle_reading


async def count(db: asyncpg.Connection, table: str) -> int:
    value: int = await db.fetchval(f"SELECT count(*) FROM {table}")
    return value


async def test_a_new_meter_reading_is_stored_in_history_and_live(
    client: httpx.AsyncClient, db: asyncpg.Connection
) -> None:
    at = minute(-3)
    response = await client.post(
        "/v1/ingest/meter", json=meter_reading(meter_id="M1", kwh=2.5, at=at)
    )
    assert response.status_code == 201
    assert response.json() == {"success": True, "meterId": "M1", "status": "stored"}
    row = await db.fetchrow("SELECT * FROM meter_reading_history")
    assert row is not None
    assert (row["meter_id"], row["ts"], row["kwh_consumed_ac"], row["voltage"]) == (
        "M1",
        at,
        2.5,
        230.0,
    )
    assert row["received_at"] >= at
    live = await db.fetchrow("SELECT * FROM meter_live WHERE meter_id = 'M1'")
    assert live is not None
    assert live["ts"] == at


async def test_a_new_vehicle_reading_is_stored(
    client: httpx.AsyncClient, db: asyncpg.Connection
) -> None:
    response = await client.post("/v1/ingest/vehicle", json=vehicle_reading(vehicle_id="V1"))
    assert response.status_code == 201
    assert response.json() == {"success": True, "vehicleId": "V1", "status": "stored"}
    assert await count(db, "vehicle_readings") == 1
    assert await count(db, "vehicle_live") == 1


async def test_an_exact_resend_is_a_duplicate_and_stored_once(
    client: httpx.AsyncClient, db: asyncpg.Connection
) -> None:
    body = vehicle_reading(vehicle_id="V1")
    assert (await client.post("/v1/ingest/vehicle", json=body)).status_code == 201
    again = await client.post("/v1/ingest/vehicle", json=body)
    assert again.status_code == 200
    assert again.json() == {"success": True, "vehicleId": "V1", "status": "duplicate"}
    assert await count(db, "vehicle_readings") == 1


async def test_the_same_instant_in_another_offset_is_the_same_reading(
    client: httpx.AsyncClient, db: asyncpg.Connection
) -> None:
    at = minute(-5)
    first = meter_reading(at=at)
    shifted = {**first, "timestamp": at.astimezone(timezone_plus_two()).isoformat()}
    assert (await client.post("/v1/ingest/meter", json=first)).status_code == 201
    assert (await client.post("/v1/ingest/meter", json=shifted)).json()["status"] == "duplicate"
    assert await count(db, "meter_readings") == 1


def timezone_plus_two() -> Any:
    from datetime import timezone

    return timezone(timedelta(hours=2))


async def test_different_values_for_a_stored_instant_conflict_and_the_first_is_kept(
    client: httpx.AsyncClient, db: asyncpg.Connection
) -> None:
    at = minute(-2)
    assert (
        await client.post("/v1/ingest/meter", json=meter_reading(kwh=1.0, at=at))
    ).status_code == 201
    response = await client.post("/v1/ingest/meter", json=meter_reading(kwh=9.0, at=at))
    assert response.status_code == 409
    body = response.json()
    assert body["error"] == "conflict"
    assert "meter-1" in body["message"]
    assert "kept" in body["message"]
    assert await db.fetchval("SELECT kwh_consumed_ac FROM meter_readings") == 1.0
    assert await db.fetchval("SELECT kwh_consumed_ac FROM meter_live") == 1.0


@pytest.mark.parametrize("body", [b"{not json", b"", b"[1,", b'{"meterId": NaN}'])
async def test_a_body_that_is_not_json_is_a_400(client: httpx.AsyncClient, body: bytes) -> None:
    response = await client.post(
        "/v1/ingest/meter", content=body, headers={"content-type": "application/json"}
    )
    assert response.status_code == 400
    assert response.json()["error"] == "malformed_json"


@pytest.mark.parametrize(
    ("path", "body", "field", "rule"),
    [
        ("/v1/ingest/meter", meter_reading(voltage=2500), "voltage", "range"),
        ("/v1/ingest/meter", meter_reading(kwh=-1), "kwhConsumedAc", "range"),
        ("/v1/ingest/meter", meter_reading(meter_id="bad id"), "meterId", "pattern"),
        ("/v1/ingest/meter", meter_reading(timestamp="2026-02-09T13:30:00"), "timestamp", "format"),
        ("/v1/ingest/meter", meter_reading(color="red"), "color", "known_field"),
        ("/v1/ingest/vehicle", vehicle_reading(soc=101), "soc", "range"),
        ("/v1/ingest/vehicle", vehicle_reading(temp=-61), "batteryTemp", "range"),
        ("/v1/ingest/vehicle", {**vehicle_reading(), "soc": "50"}, "soc", "type"),
        ("/v1/ingest/vehicle", meter_reading(), "meterId", "known_field"),
        ("/v1/ingest/vehicle", [vehicle_reading()], "body", "type"),
    ],
)
async def test_a_rule_broken_is_a_422_naming_field_and_rule_and_nothing_is_stored(
    client: httpx.AsyncClient,
    db: asyncpg.Connection,
    path: str,
    body: Any,
    field: str,
    rule: str,
) -> None:
    response = await client.post(path, json=body)
    assert response.status_code == 422
    answer = response.json()
    assert answer["error"] == "validation_failed"
    assert {"field": field, "rule": rule} in [
        {"field": e["field"], "rule": e["rule"]} for e in answer["errors"]
    ]
    assert field in answer["message"]
    for table in ("meter_readings", "vehicle_readings", "meter_live", "vehicle_live"):
        assert await count(db, table) == 0


async def test_a_reading_from_the_future_is_refused(client: httpx.AsyncClient) -> None:
    ahead = datetime.now(UTC) + timedelta(minutes=10)
    response = await client.post("/v1/ingest/meter", json=meter_reading(at=ahead))
    assert response.status_code == 422
    assert response.json()["errors"][0]["rule"] == "not_in_future"


async def test_a_backfilled_reading_gets_its_partition_on_demand(
    client: httpx.AsyncClient, db: asyncpg.Connection
) -> None:
    old = minute(-60 * 24 * 20)  # 20 days ago: inside the 30-day back-fill window
    response = await client.post("/v1/ingest/vehicle", json=vehicle_reading(at=old))
    assert response.status_code == 201
    partition = f"vehicle_readings_p{old:%Y%m%d}"
    stored_in = await db.fetchval("SELECT tableoid::regclass::text FROM vehicle_readings")
    assert stored_in == partition


async def test_partitions_are_made_ahead(db: asyncpg.Connection, client: httpx.AsyncClient) -> None:
    names = {
        row["relname"]
        for row in await db.fetch(
            "SELECT relname FROM pg_class WHERE relname LIKE 'meter_readings_p%'"
        )
    }
    today = datetime.now(UTC).date()
    for offset in range(4):
        assert f"meter_readings_p{today + timedelta(days=offset):%Y%m%d}" in names


async def test_a_resend_of_values_real_cannot_hold_exactly_is_still_a_duplicate(
    client: httpx.AsyncClient,
) -> None:
    # History keeps soc and battery temperature as real; 33.3 and 31.2 are not exact there.
    body = vehicle_reading(vehicle_id="V1", soc=33.3, temp=31.2, kwh=0.1)
    assert (await client.post("/v1/ingest/vehicle", json=body)).status_code == 201
    again = await client.post("/v1/ingest/vehicle", json=body)
    assert again.json()["status"] == "duplicate"
    changed = await client.post("/v1/ingest/vehicle", json={**body, "batteryTemp": 31.3})
    assert changed.status_code == 409
    live = (await client.get("/v1/analytics/vehicle/V1/live")).json()
    assert (live["soc"], live["batteryTemp"]) == (33.3, 31.2)
    performance = (await client.get("/v1/analytics/performance/V1")).json()
    assert performance["minBatteryTemp"] == performance["maxBatteryTemp"] == 31.2
    assert performance["averageBatteryTemp"] == 31.2
