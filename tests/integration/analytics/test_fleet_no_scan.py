"""The fleet answer reads rollups, and history only by index for the partial hours at its edges.

History is loaded as in test_no_scan (days of 250 devices), and its rollups back-filled as the
migrations do (hourly rows from history, day rows from hourly rows), before the statistics
baseline.
"""

from __future__ import annotations

from datetime import timedelta

import asyncpg

from energy_ingest.config import Settings
from energy_ingest.db.partitions import ROLLUP_TABLES, create_partition_statement, partition_name
from tests.factories import iso
from tests.integration.analytics.test_no_scan import (
    HISTORY_DAYS,
    flush_statistics,
    history_scan_counters,
    load_history,
    the_window,
)
from tests.support import back_fill_rollups, start_engine


async def test_the_fleet_answer_reads_history_only_by_index_at_its_edges(
    db: asyncpg.Connection, settings: Settings
) -> None:
    start, end = the_window()
    await load_history(db, settings, end)
    today = end.date() + timedelta(days=1)
    for offset in range(-HISTORY_DAYS, settings.partition_days_ahead + 2):
        for table in ROLLUP_TABLES:
            await db.execute(create_partition_statement(table, today + timedelta(days=offset)))
    await back_fill_rollups(db)
    # Three days, partial hours at both edges: 17 minutes into the first hour, 23 into the last.
    start, end = end - timedelta(days=3, minutes=-17), end - timedelta(minutes=37)
    await db.execute("SELECT pg_stat_force_next_flush()")
    before = await history_scan_counters(db)

    async with start_engine(
        settings.model_copy(update={"compact_closed_partitions": False})
    ) as engine:
        for _ in range(8):  # beyond asyncpg's five custom plans: generic plans too
            response = await engine.client.get(
                "/v1/analytics/fleet/performance",
                params={"from": iso(start), "to": iso(end), "limit": "1000"},
            )
            assert response.status_code == 200, response.text
            body = response.json()
            assert body["summary"]["vehicles"] == 250
            # device-0200 has no meter: the meter of its id feeds device-0007 by assignment.
            assert body["summary"]["insufficientData"] == 1
        await flush_statistics(engine.state.database.read_pool)
        await flush_statistics(engine.state.database.write_pool)
        after = await history_scan_counters(db)

    def grown(column: int) -> set[str]:
        return {
            partition
            for partition, counters in after.items()
            if counters[column] > before.get(partition, (0, 0))[column]
        }

    assert grown(0) == set(), "sequential scans of history partitions"
    # The edges' partial hours are on the window's first and last days; the two days between
    # come from the rollups alone.
    assert grown(1) == {
        partition_name(table, day)
        for table in ("meter_readings", "vehicle_readings")
        for day in {start.date(), end.date()}
    }
