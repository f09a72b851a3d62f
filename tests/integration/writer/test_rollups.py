"""The rollups grow by exactly what history stored: the writer's inbox, then the folder.

The writer copies each stored reading into the rollup inbox in its own transaction; the folder
(energy_ingest.writer.rollups) adds the inbox to the hourly rows and the day rows. Each test
folds (`fold_everything`) before it compares the rollups with history.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import asyncpg
import httpx

from energy_ingest.writer.rollups import fold_rollups
from tests.factories import meter_reading, minute, vehicle_reading
from tests.support import back_fill_rollups

# What history books, hour by hour (intervals, and register steps by the register rules).
_RAW_METER_HOURS = """
SELECT meters.meter_key, date_trunc('hour', booked.ts, 'UTC') AS hour,
       count(*)::int AS readings, sum(booked.kwh) AS kwh_consumed_ac
FROM meters
CROSS JOIN LATERAL booked_meter_readings(meters.meter_key, '-infinity', 'infinity', 1000)
    AS booked
GROUP BY 1, 2 ORDER BY 1, 2
"""
_ROLLED_METER_HOURS = """
SELECT meter_key, hour, readings, kwh_consumed_ac FROM meter_rollups ORDER BY 1, 2
"""
_RAW_VEHICLE_HOURS = """
SELECT reading.vehicle_key, date_trunc('hour', reading.ts, 'UTC') AS hour,
       count(*)::int AS readings, sum(booked.kwh) AS kwh_delivered_dc,
       sum(reading.battery_temp::numeric) AS battery_temp_sum,
       min(reading.battery_temp) AS battery_temp_min, max(reading.battery_temp) AS battery_temp_max
FROM vehicles
CROSS JOIN LATERAL booked_vehicle_readings(vehicles.vehicle_key, '-infinity', 'infinity', 1000)
    AS booked
JOIN vehicle_readings AS reading
    ON reading.vehicle_key = vehicles.vehicle_key AND reading.ts = booked.ts
GROUP BY 1, 2 ORDER BY 1, 2
"""
_ROLLED_VEHICLE_HOURS = """
SELECT vehicle_key, hour, readings, kwh_delivered_dc, battery_temp_sum, battery_temp_min,
       battery_temp_max
FROM vehicle_rollups ORDER BY 1, 2
"""


# Each day row's arrays, element by element, against the running sums of its day's hours to
# the day's end (element slot+1: hours slot … 23).
_DAYS_VERSUS_HOURS = """
WITH slots AS (
    SELECT days.{key}, days.day, slot,
           days.{column}[slot + 1] AS kept,
           (SELECT coalesce(sum(hours.{column}), 0) FROM {hourly} AS hours
            WHERE hours.{key} = days.{key} AND hours.hour >= days.day + slot * interval '1 hour'
              AND hours.hour < days.day + interval '1 day') AS summed
    FROM {daily} AS days CROSS JOIN generate_series(0, 23) AS slot
)
SELECT count(*) FILTER (WHERE kept IS DISTINCT FROM summed) AS wrong, count(*) AS slots
FROM slots
"""
_DAY_COLUMNS = (
    ("meter_key", "meter_rollups", "meter_rollup_days", "kwh_consumed_ac"),
    ("meter_key", "meter_rollups", "meter_rollup_days", "readings"),
    ("vehicle_key", "vehicle_rollups", "vehicle_rollup_days", "kwh_delivered_dc"),
    ("vehicle_key", "vehicle_rollups", "vehicle_rollup_days", "battery_temp_sum"),
    ("vehicle_key", "vehicle_rollups", "vehicle_rollup_days", "readings"),
)
_DAYS_WITHOUT_HOURS = """
SELECT count(*) FROM {daily} AS days
WHERE NOT EXISTS (SELECT 1 FROM {hourly} AS hours WHERE hours.{key} = days.{key}
                  AND hours.hour >= days.day AND hours.hour < days.day + interval '1 day')
"""


async def fold_everything(db: asyncpg.Connection) -> None:
    """One whole fold of what is committed now (waits while an engine's folder holds it)."""
    while await fold_rollups(db) is None:  # noqa: ASYNC110 - another process holds the fold
        await asyncio.sleep(0.05)


async def assert_rollups_match_history(db: asyncpg.Connection) -> int:
    """Folded, every hourly row equals the GROUP BY of history's rows of its hour, and every
    day row holds the running sums of its hours; returns how many hours there are."""
    await fold_everything(db)
    assert await db.fetchval("SELECT count(*) FROM meter_rollup_inbox") == 0
    assert await db.fetchval("SELECT count(*) FROM vehicle_rollup_inbox") == 0
    raw_meters = [dict(row) for row in await db.fetch(_RAW_METER_HOURS)]
    assert [dict(row) for row in await db.fetch(_ROLLED_METER_HOURS)] == raw_meters
    raw_vehicles = [dict(row) for row in await db.fetch(_RAW_VEHICLE_HOURS)]
    assert [dict(row) for row in await db.fetch(_ROLLED_VEHICLE_HOURS)] == raw_vehicles
    for key, hourly, daily, column in _DAY_COLUMNS:
        names = {"key": key, "hourly": hourly, "daily": daily, "column": column}
        check = await db.fetchrow(_DAYS_VERSUS_HOURS.format(**names))
        assert check is not None
        assert check["wrong"] == 0, f"{daily}.{column}: {check['wrong']} wrong running sums"
        assert await db.fetchval(_DAYS_WITHOUT_HOURS.format(**names)) == 0
    days = {(row["meter_key"], row["hour"].date()) for row in raw_meters}
    assert await db.fetchval("SELECT count(*) FROM meter_rollup_days") == len(days)
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
    # The day rows' first element is the day's total.
    assert await db.fetchval("SELECT sum(readings[1]) FROM meter_rollup_days") == 121
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
    await fold_everything(db)
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
    await fold_everything(db)
    before = [dict(row) for row in await db.fetch(_ROLLED_METER_HOURS)]
    # As on a database that had history before rollups existed: rerun the migrations' back-fills
    # (hourly rows from history, then day rows from the hourly rows).
    await back_fill_rollups(db)

    assert [dict(row) for row in await db.fetch(_ROLLED_METER_HOURS)] == before
    assert await assert_rollups_match_history(db) >= 6
    assert datetime.now(UTC) > before[0]["hour"]
