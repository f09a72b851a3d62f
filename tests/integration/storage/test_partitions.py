"""Daily partitions: made ahead, made on demand, compacted once their day is closed."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import asyncpg
import pytest
from pydantic import ValidationError

from energy_ingest.config import Settings
from energy_ingest.db.partitions import PartitionManager, partition_name
from tests.support import start_engine

COMPACTED_DAY_OFFSET = 3


@pytest.fixture
async def partitions(database_url: str) -> AsyncIterator[PartitionManager]:
    """The engine's partition manager for the test's database, on a pool of its own."""
    pool = await asyncpg.create_pool(database_url, min_size=1, max_size=2)
    try:
        yield PartitionManager(pool)
    finally:
        await pool.close()


async def _load_day(db: asyncpg.Connection, day: datetime) -> None:
    """A day of readings for 300 meters, arriving minute by minute as the writer would see them."""
    await db.execute(
        "INSERT INTO meters (meter_id) SELECT 'm-' || d FROM generate_series(1, 300) AS d"
    )
    await db.execute(
        """
        INSERT INTO meter_readings (ts, received_at, kwh_consumed_ac, voltage, meter_key)
        SELECT ts, ts, 0.1, 230.0, meter_key
        FROM generate_series($1::timestamptz, $1::timestamptz + interval '4 hours',
                             interval '1 minute') AS ts,
             meters
        ORDER BY ts, meter_key
        """,
        day,
    )


async def _index_state(db: asyncpg.Connection, index: str) -> tuple[int, list[str] | None]:
    row = await db.fetchrow(
        "SELECT pg_relation_size(oid) AS size, reloptions FROM pg_class WHERE relname = $1", index
    )
    assert row is not None
    return row["size"], row["reloptions"]


async def test_closed_days_are_compacted_once_and_stay_readable(
    partitions: PartitionManager, db: asyncpg.Connection
) -> None:
    today = datetime.now(UTC).date()
    closed = today - timedelta(days=COMPACTED_DAY_OFFSET)
    await partitions.ensure([closed, today])
    await _load_day(db, datetime(closed.year, closed.month, closed.day, tzinfo=UTC))
    index = f"{partition_name('meter_readings', closed)}_pkey"
    size_before, options_before = await _index_state(db, index)
    assert options_before is None

    compacted = await partitions.compact_closed(before=today - timedelta(days=1))

    assert partition_name("meter_readings", closed) in compacted
    assert partition_name("meter_readings", today) not in compacted
    size_after, options_after = await _index_state(db, index)
    assert options_after == ["fillfactor=100"]
    assert size_after < size_before * 0.9
    assert await partitions.compact_closed(before=today - timedelta(days=1)) == []
    # Still the same rows, still found by the index.
    count = await db.fetchval(
        "SELECT count(*) FROM meter_readings WHERE meter_key = 7 AND ts >= $1",
        datetime(closed.year, closed.month, closed.day, tzinfo=UTC),
    )
    assert count == 241


async def test_retention_drops_whole_days_and_keeps_the_rest(
    partitions: PartitionManager, db: asyncpg.Connection
) -> None:
    today = datetime.now(UTC).date()
    old, kept = today - timedelta(days=40), today - timedelta(days=39)
    await partitions.ensure([old, kept, today])
    # An hour of rollups on each side of the cut: retention takes the old day's with its readings.
    for day in (old, kept):
        await db.execute(
            "INSERT INTO meter_rollups (hour, kwh_consumed_ac, readings, meter_key)"
            " VALUES ($1, 1.5, 3, 7)",
            datetime(day.year, day.month, day.day, 5, tzinfo=UTC),
        )
    dropped = await partitions.drop_before(kept)
    assert sorted(dropped) == [
        partition_name("meter_readings", old),
        partition_name("meter_rollup_days", old),
        partition_name("meter_rollups", old),
        partition_name("vehicle_energy_hours", old),
        partition_name("vehicle_readings", old),
        partition_name("vehicle_rollup_days", old),
        partition_name("vehicle_rollups", old),
    ]
    hours = await db.fetch("SELECT hour FROM meter_rollups")
    assert [row["hour"].date() for row in hours] == [kept]
    names = {row["relname"] for row in await db.fetch("SELECT relname FROM pg_class")}
    assert partition_name("meter_readings", kept) in names
    assert partition_name("meter_readings", old) not in names
    # A dropped day can be made again (it is forgotten, not cached as existing).
    await partitions.ensure([old])
    names = {row["relname"] for row in await db.fetch("SELECT relname FROM pg_class")}
    assert partition_name("meter_readings", old) in names


def test_retention_shorter_than_the_backfill_window_is_refused() -> None:
    with pytest.raises(ValidationError, match="retention_days must exceed max_backfill"):
        Settings(retention_days=30)
    assert Settings(retention_days=31).retention_days == 31


async def test_the_engine_applies_retention_by_itself(
    settings: Settings, partitions: PartitionManager, db: asyncpg.Connection
) -> None:
    old = datetime.now(UTC).date() - timedelta(days=45)
    await partitions.ensure([old])
    name = partition_name("vehicle_readings", old)
    async with start_engine(settings.model_copy(update={"retention_days": 40})):
        for _ in range(500):
            if not await db.fetchval("SELECT count(*) FROM pg_class WHERE relname = $1", name):
                break
            await asyncio.sleep(0.02)
        else:
            raise AssertionError(f"{name} was not dropped")


async def test_an_empty_closed_day_is_left_for_when_it_has_rows(
    partitions: PartitionManager, db: asyncpg.Connection
) -> None:
    today = datetime.now(UTC).date()
    closed = today - timedelta(days=COMPACTED_DAY_OFFSET)
    await partitions.ensure([closed])
    assert await partitions.compact_closed(before=today - timedelta(days=1)) == []
    await _load_day(db, datetime(closed.year, closed.month, closed.day, tzinfo=UTC))
    compacted = await partitions.compact_closed(before=today - timedelta(days=1))
    assert partition_name("meter_readings", closed) in compacted
