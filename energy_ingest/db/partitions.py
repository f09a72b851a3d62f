"""Daily partitions of the history tables: made ahead of time and on demand for back-fills."""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import Iterable
from datetime import UTC, date, datetime, timedelta

import asyncpg

from energy_ingest.db.sql import quote_identifier, quote_literal, sql

logger = logging.getLogger(__name__)

HISTORY_TABLES = ("meter_readings", "vehicle_readings")
ROLLUP_TABLES = (
    "meter_rollups",
    "vehicle_rollups",
    "meter_rollup_days",
    "vehicle_rollup_days",
    "vehicle_energy_hours",
)
"""Hourly and per-day sums of history (and the vehicles' charging split), partitioned by the
same UTC days: made and dropped with history."""
DAY_PARTITIONED_TABLES = HISTORY_TABLES + ROLLUP_TABLES
_DAY_SUFFIX = re.compile(r"_p(?P<day>\d{8})$")


def partition_name(parent: str, day: date) -> str:
    """`meter_readings` + 2026-11-27 → `meter_readings_p20261127`."""
    return f"{parent}_p{day:%Y%m%d}"


def partition_day(name: str) -> date | None:
    """`meter_readings_p20261127` → 2026-11-27; None for a name without a day suffix."""
    match = _DAY_SUFFIX.search(name)
    return datetime.strptime(match["day"], "%Y%m%d").date() if match else None


def day_of(moment: datetime) -> date:
    """The UTC day a reading's timestamp falls in: the partition it belongs to."""
    return moment.astimezone(UTC).date()


def create_partition_statement(parent: str, day: date) -> str:
    """DDL for one day's partition, identifiers and bounds quoted."""
    start = datetime(day.year, day.month, day.day, tzinfo=UTC)
    end = start + timedelta(days=1)
    statement = (
        sql("create_rollup_day_partition")
        if parent in ROLLUP_TABLES
        else sql("create_day_partition")
    )
    return statement.format(
        partition=quote_identifier(partition_name(parent, day)),
        parent=quote_identifier(parent),
        start=quote_literal(start.isoformat()),
        end=quote_literal(end.isoformat()),
    )


class PartitionManager:
    """Knows which days have partitions and creates the missing ones before a batch needs them.

    The set of known days is a cache: a day is added only after its partition is committed, so a
    batch never waits on DDL for a day it has seen before.
    """

    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool
        self._known: set[date] = set()
        self._lock = asyncio.Lock()

    async def refresh(self) -> None:
        """Load the days whose partitions exist in every history and rollup table."""
        async with self._pool.acquire() as connection:
            rows = await connection.fetch(sql("list_day_partitions"), list(DAY_PARTITIONED_TABLES))
        days_by_table: dict[str, set[date]] = {table: set() for table in DAY_PARTITIONED_TABLES}
        for row in rows:
            parsed = partition_day(row["partition_name"])
            if parsed is not None:
                days_by_table[row["parent_name"]].add(parsed)
        self._known = set.intersection(*days_by_table.values())

    async def ensure(self, days: Iterable[date]) -> None:
        """Make sure every day in `days` has its partitions; cheap when they all exist."""
        missing = set(days) - self._known
        if not missing:
            return
        async with self._lock:
            missing -= self._known
            if not missing:
                return
            async with self._pool.acquire() as connection, connection.transaction():
                await connection.execute(sql("lock_partition_maintenance"))
                for day in sorted(missing):
                    for table in DAY_PARTITIONED_TABLES:
                        await connection.execute(create_partition_statement(table, day))
            self._known |= missing
            logger.info("history partitions ready for %s", ", ".join(map(str, sorted(missing))))

    async def compact_closed(self, before: date) -> list[str]:
        """Rebuild, packed, the primary-key index of every partition of a day before `before`.

        Returns the partitions compacted. Skips the round when another process is compacting.
        """
        compacted: list[str] = []
        async with self._pool.acquire() as connection:
            if not await connection.fetchval(sql("try_lock_compaction")):
                return compacted
            try:
                rows = await connection.fetch(sql("list_uncompacted_indexes"), list(HISTORY_TABLES))
                for row in sorted(rows, key=lambda r: r["partition_name"]):
                    day = partition_day(row["partition_name"])
                    if day is None or day >= before:
                        continue
                    index = quote_identifier(row["index_name"])
                    await connection.execute(sql("pack_index").format(index=index))
                    await connection.execute(sql("rebuild_index").format(index=index))
                    compacted.append(row["partition_name"])
                    logger.info("compacted the index of %s", row["partition_name"])
            finally:
                await connection.execute(sql("unlock_compaction"))
        return compacted

    async def drop_before(self, first_kept: date) -> list[str]:
        """Retention: drop every history partition of a day before `first_kept`, whole, and
        that day's rollups with it (in the same transaction: never one without the other)."""
        dropped: list[str] = []
        async with self._lock, self._pool.acquire() as connection, connection.transaction():
            await connection.execute(sql("lock_partition_maintenance"))
            rows = await connection.fetch(sql("list_day_partitions"), list(DAY_PARTITIONED_TABLES))
            for row in sorted(rows, key=lambda r: r["partition_name"]):
                day = partition_day(row["partition_name"])
                if day is not None and day < first_kept:
                    name = quote_identifier(row["partition_name"])
                    await connection.execute(sql("drop_partition").format(partition=name))
                    dropped.append(row["partition_name"])
                    self._known.discard(day)
        if dropped:
            logger.info("retention dropped %s", ", ".join(dropped))
        return dropped

    async def prepare_ahead(self, days_ahead: int, today: date | None = None) -> None:
        """Create today's partitions and those of the next `days_ahead` days."""
        first = today or datetime.now(UTC).date()
        await self.ensure(first + timedelta(days=offset) for offset in range(days_ahead + 1))
