"""The charging-split migration queues every vehicle-day history already holds, and the folder
computes them: afterwards the fleet rows' split equals a fresh computation from history."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import asyncpg

from energy_ingest.db.migrations import available_migrations, migrate
from energy_ingest.db.partitions import DAY_PARTITIONED_TABLES, create_partition_statement, day_of
from energy_ingest.db.sql import sql
from energy_ingest.writer.rollups import fold_rollups
from tests.support import DatabaseServer, create_database, drop_database, with_database

SPLIT = "202612052200_vehicle_energy"

# Two days of a vehicle fed by the meter of its own id, charging half of every hour.
_HISTORY = """
INSERT INTO meters (meter_id) VALUES ('ev-1');
INSERT INTO vehicles (vehicle_id) VALUES ('ev-1');
INSERT INTO meter_live (meter_id, ts, received_at, kwh_consumed_ac, voltage)
VALUES ('ev-1', $1::timestamptz, $1::timestamptz, 0.2, 230);
INSERT INTO meter_readings (ts, received_at, kwh_consumed_ac, voltage, meter_key)
SELECT ts, ts, CASE WHEN extract(minute FROM ts) < 30 THEN 0.2 ELSE 0.004 END, 230, 1
FROM generate_series($1::timestamptz, $2::timestamptz, interval '1 minute') AS ts;
INSERT INTO vehicle_readings (ts, received_at, kwh_delivered_dc, soc, battery_temp, vehicle_key)
SELECT ts + interval '2 seconds', ts,
       CASE WHEN extract(minute FROM ts) < 30 THEN 0.17 ELSE 0 END, 50, 20, 1
FROM generate_series($1::timestamptz, $2::timestamptz, interval '1 minute') AS ts
"""

_STORED_VERSUS_FRESH = """
SELECT count(*) FROM (
    (SELECT hour, charging_ac, charging_dc, charging_minutes, standby_ac, standby_minutes,
            session_starts, continues
     FROM vehicle_energy_hours_of('ev-1', $1, $2, 5, 1000, 1000, 150)
     EXCEPT
     SELECT hour, charging_ac, charging_dc, charging_minutes, standby_ac, standby_minutes,
            session_starts, continues
     FROM vehicle_energy_hours)
    UNION ALL
    (SELECT hour, charging_ac, charging_dc, charging_minutes, standby_ac, standby_minutes,
            session_starts, continues
     FROM vehicle_energy_hours
     EXCEPT
     SELECT hour, charging_ac, charging_dc, charging_minutes, standby_ac, standby_minutes,
            session_starts, continues
     FROM vehicle_energy_hours_of('ev-1', $1, $2, 5, 1000, 1000, 150))
) AS differences
"""


async def test_existing_history_is_split_by_the_folder_after_the_migration(
    test_server: DatabaseServer,
) -> None:
    name = f"{test_server.prefix}_vehicle_energy_backfill"
    await drop_database(test_server.admin_url, name)
    await create_database(test_server.admin_url, name)
    connection = await asyncpg.connect(with_database(test_server.admin_url, name))
    try:
        await connection.execute(sql("create_migrations_table"))
        for migration in available_migrations():
            if migration.version < SPLIT:
                await connection.execute(migration.script)
                await connection.execute(sql("record_migration"), migration.version)
        end = datetime.now(UTC).replace(minute=0, second=0, microsecond=0)
        start = end - timedelta(days=1, hours=5)
        # 29 hours touch three days when they end before 05:00 UTC: every day between counts.
        first = day_of(start)
        for day in {first + timedelta(days=n) for n in range((day_of(end) - first).days + 1)}:
            for table in DAY_PARTITIONED_TABLES:
                if not table.startswith("vehicle_energy"):
                    await connection.execute(create_partition_statement(table, day))
        for statement in _HISTORY.split(";\n"):
            if "meter_live" in statement:
                await connection.execute(statement, end)
            elif "$1" in statement:
                await connection.execute(statement, start, end)
            else:
                await connection.execute(statement)
        # The rollups as the folder had kept them before this migration.
        await connection.execute(
            "INSERT INTO vehicle_rollup_inbox (ts, kwh_delivered_dc, battery_temp, vehicle_key)"
            " SELECT ts, kwh_delivered_dc, battery_temp, vehicle_key FROM vehicle_readings"
        )
        await connection.execute(
            "INSERT INTO meter_rollup_inbox (ts, kwh_consumed_ac, meter_key)"
            " SELECT ts, kwh_consumed_ac, meter_key FROM meter_readings"
        )

        applied = await migrate(connection)
        assert SPLIT in applied
        for _ in range(20):
            folded = await fold_rollups(connection)
            assert folded is not None
            if not folded.more:
                break
        assert await connection.fetchval("SELECT count(*) FROM vehicle_energy_pending") == 0
        assert await connection.fetchval("SELECT count(*) FROM vehicle_energy_hours") >= 29
        assert await connection.fetchval(_STORED_VERSUS_FRESH, start, end + timedelta(hours=1)) == 0
        # The day rows carry the standby AC the hours hold.
        standby = await connection.fetchval("SELECT sum(standby_ac[1]) FROM vehicle_rollup_days")
        assert standby == await connection.fetchval(
            "SELECT sum(standby_ac) FROM vehicle_energy_hours"
        )
        assert standby > 0
    finally:
        await connection.close()
        await drop_database(test_server.admin_url, name)
