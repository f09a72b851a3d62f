"""The hourly rollups grow by exactly what history stored, in the writer's own transaction."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from importlib import resources

import asyncpg
import httpx

from tests.factories import meter_reading, minute, vehicle_reading

_RAW_METER_HOURS = """
SELECT meter_key, date_trunc('hour', ts, 'UTC') AS hour, count(*)::int AS readings,
       sum(kwh_consumed_ac::numeric) AS kwh_consumed_ac
FROM meter_readings GROUP BY 1, 2 ORDER BY 1, 2
"""
_ROLLED_METER_HOURS = """
SELECT meter_key, hour, readings, kwh_consumed_ac FROM meter_rollups ORDER BY 1, 2
"""
_RAW_VEHICLE_HOURS = """
SELECT vehicle_key, date_trunc('hour', ts, 'UTC') AS hour, count(*)::int AS readings,
       sum(kwh_delivered_dc::numeric) AS kwh_delivered_dc,
       sum(battery_temp::numeric) AS battery_temp_sum,
       min(battery_temp) AS battery_temp_min, max(battery_temp) AS battery_temp_max
FROM vehicle_readings GROUP BY 1, 2 ORDER BY 1, 2
"""
_ROLLED_VEHICLE_HOURS = """
SELECT vehicle_key, hour, readings, kwh_delivered_dc, battery_temp_sum, battery_temp_min,
       battery_temp_max
FROM vehicle_rollups ORDER BY 1, 2
"""


async def assert_rollups_match_history(db: asyncpg.Connection) -> int:
    """Every rollup row equals the GROUP BY of history's rows of its hour; returns their count."""
    raw_meters = [dict(row) for row in await db.fetch(_RAW_METER_HOURS)]
    assert [dict(row) for row in await db.fetch(_ROLLED_METER_HOURS)] == raw_meters
    raw_vehicles = [dict(row) for row in await db.fetch(_RAW_VEHICLE_HOURS)]
    assert [dict(row) for row in await db.fetch(_ROLLED_VEHICLE_HOURS)] == raw_vehicles
    return len(raw_meters) + len(raw_vehicles)


async def test_duplicates_and_conflicts_are_never_counted_twice(
    client: httpx.AsyncClient, db: asyncpg.Connection
) -> None:
    moments = [minute(-offset) for offset in range(1, 121)]  # two hours and more, every minute
    meters = [meter_reading(meter_id="M-1", kwh=0.1, at=at) for at in moments]
    vehicles = [vehicle_reading(vehicle_id="V-1", kwh=0.09, temp=31.2, at=at) for at in moments]
    assert (await client.post("/v1/ingest/meter/batch", json=meters)).status_code == 201
    assert (await client.post("/v1/ingest/vehicle/batch", json=vehicles)).status_code == 201
    # Retries (duplicates), changed values (conflicts), and repeats inside one batch.
    again = await client.post("/v1/ingest/meter/batch", json=meters[:30] + meters[:5])
    assert again.json()["duplicates"] == 35
    changed = [meter_reading(meter_id="M-1", kwh=9.9, at=at) for at in moments[:10]]
    assert (await client.post("/v1/ingest/meter/batch", json=changed)).json()["stored"] == 0
    hot = [vehicle_reading(vehicle_id="V-1", kwh=0.09, temp=99.0, at=at) for at in moments[:10]]
    assert (await client.post("/v1/ingest/vehicle/batch", json=hot)).json()["stored"] == 0
    mixed = [meter_reading(meter_id="M-1", kwh=0.1, at=minute(-200)), meters[0]]
    assert (await client.post("/v1/ingest/meter/batch", json=mixed)).json()["stored"] == 1

    assert await assert_rollups_match_history(db) >= 4
    total = await db.fetchval("SELECT sum(readings) FROM meter_rollups")
    assert total == 121
    assert await db.fetchval("SELECT max(battery_temp_max) FROM vehicle_rollups") < 32


async def test_a_reading_days_late_lands_in_its_own_hour(
    client: httpx.AsyncClient, db: asyncpg.Connection
) -> None:
    now = minute(0)
    late = now - timedelta(days=3, minutes=17)
    body = [meter_reading(meter_id="M-late", kwh=2.5, at=now - timedelta(minutes=2))]
    assert (await client.post("/v1/ingest/meter/batch", json=body)).status_code == 201
    body = [meter_reading(meter_id="M-late", kwh=0.75, at=late)]
    assert (await client.post("/v1/ingest/meter/batch", json=body)).status_code == 201
    body = [vehicle_reading(vehicle_id="V-late", kwh=0.5, at=late)]
    assert (await client.post("/v1/ingest/vehicle/batch", json=body)).status_code == 201

    hour = late.replace(minute=0, second=0, microsecond=0)
    row = await db.fetchrow(
        "SELECT hour, kwh_consumed_ac, readings FROM meter_rollups ORDER BY hour LIMIT 1"
    )
    assert row is not None
    assert (row["hour"], float(row["kwh_consumed_ac"]), row["readings"]) == (hour, 0.75, 1)
    assert await db.fetchval("SELECT hour FROM vehicle_rollups") == hour
    assert await assert_rollups_match_history(db) == 3


async def test_the_migration_back_fills_rollups_from_history(
    client: httpx.AsyncClient, db: asyncpg.Connection
) -> None:
    moments = [minute(-offset) for offset in range(1, 90)] + [minute(-60 * 24 * 2)]
    meters = [
        meter_reading(meter_id=f"M-{n % 3}", kwh=0.1 + n / 1000, at=at)
        for n, at in enumerate(moments)
    ]
    vehicles = [
        vehicle_reading(vehicle_id=f"V-{n % 3}", kwh=0.07, temp=20 + n / 7, at=at)
        for n, at in enumerate(moments)
    ]
    assert (await client.post("/v1/ingest/meter/batch", json=meters)).status_code == 201
    assert (await client.post("/v1/ingest/vehicle/batch", json=vehicles)).status_code == 201
    before = [dict(row) for row in await db.fetch(_ROLLED_METER_HOURS)]
    # As on a database that had history before rollups existed: rerun the migration's back-fill.
    await db.execute("TRUNCATE meter_rollups, vehicle_rollups")
    folder = resources.files("energy_ingest.db").joinpath("migrations")
    migration = folder.joinpath("202612051400_hourly_rollups.sql").read_text(encoding="utf-8")
    backfill = migration[migration.index("DO $$") :]
    await db.execute(backfill)

    assert [dict(row) for row in await db.fetch(_ROLLED_METER_HOURS)] == before
    assert await assert_rollups_match_history(db) >= 6
    assert datetime.now(UTC) > before[0]["hour"]
