"""The rollups migration back-fills every hour of the history a database already holds."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import asyncpg

from energy_ingest.db.migrations import available_migrations, migrate
from energy_ingest.db.partitions import HISTORY_TABLES, create_partition_statement, day_of
from energy_ingest.db.sql import sql
from tests.support import DatabaseServer, create_database, drop_database, with_database

ROLLUPS = "202612051400_hourly_rollups"
DAYS = "202612051600_rollup_inbox_and_days"

_HISTORY = """
INSERT INTO meters (meter_id) VALUES ('m-1'), ('m-2');
INSERT INTO vehicles (vehicle_id) VALUES ('v-1');
INSERT INTO meter_readings (ts, received_at, kwh_consumed_ac, voltage, meter_key)
SELECT ts, ts, 0.1 + extract(minute FROM ts)::int % 7 / 1000.0, 230, key
FROM generate_series($1::timestamptz, $2::timestamptz, interval '7 minutes') AS ts,
     generate_series(1, 2) AS key;
INSERT INTO vehicle_readings (ts, received_at, kwh_delivered_dc, soc, battery_temp, vehicle_key)
SELECT ts, ts, 0.09, 50, 20 + extract(minute FROM ts)::int % 13 / 10.0, 1
FROM generate_series($1::timestamptz, $2::timestamptz, interval '3 minutes') AS ts;
"""


async def test_existing_history_is_rolled_up_by_the_migration(
    test_server: DatabaseServer,
) -> None:
    name = f"{test_server.prefix}_rollup_backfill"
    await drop_database(test_server.admin_url, name)
    await create_database(test_server.admin_url, name)
    connection = await asyncpg.connect(with_database(test_server.admin_url, name))
    try:
        # The schema as it was before rollups, with two days of history in it.
        await connection.execute(sql("create_migrations_table"))
        for migration in available_migrations():
            if migration.version < ROLLUPS:
                await connection.execute(migration.script)
                await connection.execute(sql("record_migration"), migration.version)
        end = datetime.now(UTC).replace(minute=0, second=0, microsecond=0)
        start = end - timedelta(days=1, hours=5)
        # 29 hours touch three days when they end before 05:00 UTC: every day between counts.
        first = day_of(start)
        days = {first + timedelta(days=n) for n in range((day_of(end) - first).days + 1)}
        for day in days:
            for table in HISTORY_TABLES:
                await connection.execute(create_partition_statement(table, day))
        for statement in _HISTORY.split(";\n"):
            if statement.strip():
                arguments = (start, end) if "$1" in statement else ()
                await connection.execute(statement, *arguments)

        applied = await migrate(connection)
        assert applied[:2] == [ROLLUPS, DAYS]  # and whatever came after them

        raw = await connection.fetch(
            "SELECT meter_key, date_trunc('hour', ts, 'UTC') AS hour, count(*)::int AS readings,"
            " sum(kwh_consumed_ac::numeric) AS kwh FROM meter_readings GROUP BY 1, 2 ORDER BY 1, 2"
        )
        rolled = await connection.fetch(
            "SELECT meter_key, hour, readings, kwh_consumed_ac AS kwh FROM meter_rollups"
            " ORDER BY 1, 2"
        )
        assert [dict(row) for row in rolled] == [dict(row) for row in raw]
        assert len(raw) >= 2 * 29  # every hour of two days, for each meter
        temps = await connection.fetchrow(
            "SELECT (SELECT round(avg(battery_temp::numeric), 2) FROM vehicle_readings) AS raw,"
            " (SELECT round(sum(battery_temp_sum) / sum(readings), 2) FROM vehicle_rollups)"
            " AS rolled"
        )
        assert temps is not None
        assert temps["raw"] == temps["rolled"]
        partitions = await connection.fetchval(
            "SELECT count(*) FROM pg_inherits"
            " WHERE inhparent IN ('meter_rollups'::regclass, 'vehicle_rollups'::regclass)"
        )
        assert partitions == 2 * len(days)
        # The day rows: running sums of each day's hours to its end (element i: hours i−1 … 23).
        day_rows = await connection.fetch(
            "SELECT days.readings, days.kwh_consumed_ac AS kwh,"
            " array(SELECT coalesce(sum(h.readings), 0) FROM generate_series(0, 23) AS slot"
            "       LEFT JOIN meter_rollups AS h ON h.meter_key = days.meter_key"
            "        AND h.hour >= days.day + slot * interval '1 hour'"
            "        AND h.hour < days.day + interval '1 day'"
            "       GROUP BY slot ORDER BY slot) AS summed,"
            " (SELECT sum(kwh_consumed_ac) FROM meter_rollups AS h"
            "  WHERE h.meter_key = days.meter_key AND h.hour >= days.day"
            "    AND h.hour < days.day + interval '1 day') AS day_kwh"
            " FROM meter_rollup_days AS days"
        )
        meter_days = await connection.fetchval(
            "SELECT count(DISTINCT (meter_key, date_trunc('day', ts, 'UTC'))) FROM meter_readings"
        )
        assert len(day_rows) == meter_days  # one row per meter and day it reported in
        for row in day_rows:
            assert row["readings"] == row["summed"]
            assert row["kwh"][0] == row["day_kwh"]
    finally:
        await connection.close()
        await drop_database(test_server.admin_url, name)
