"""The rollup folder: moves the writer's rollup inbox into the hourly and day rollups.

The writer appends one inbox row per (device, hour) of each batch, in the batch's transaction
(cheap: a heap append, no index). Every `interval` one engine (an advisory lock picks it) takes
the committed inbox rows, adds them to the hourly rollups and rebuilds the day rows they touched,
in one transaction: a reader's snapshot sees each reading's sums in the inbox or in the rollups,
never both, and readers add the two, so folding changes no answer and nothing waits for it.
A fold that fails (database down) leaves the inbox as it was, to the next one.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from datetime import UTC, datetime

import asyncpg

from energy_ingest.db.partitions import partition_day
from energy_ingest.db.pool import AnyConnection, is_outage
from energy_ingest.db.sql import sql

logger = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Folded:
    """How many readings one fold added to the rollups, per stream."""

    meters: int
    vehicles: int


_KINDS = (
    ("meter_rollup_days", sql("fold_meter_inbox")),
    ("vehicle_rollup_days", sql("fold_vehicle_inbox")),
)


async def fold_rollups(connection: AnyConnection) -> Folded | None:
    """One fold, in its own transaction on `connection`; None if another engine is folding."""
    folded: list[int] = []
    async with connection.transaction():
        if not await connection.fetchval(sql("try_lock_rollup_fold")):
            return None
        await connection.execute(sql("disable_jit_for_fold"))
        await connection.execute(sql("lock_partitions_shared"))
        partitions = await connection.fetch(
            sql("list_day_partitions"), [parent for parent, _ in _KINDS]
        )
        for parent, fold in _KINDS:
            # The days whose rollup partitions exist (every rollup table of a day is made and
            # dropped in one transaction); the inbox's rows of other days are retention's.
            days = sorted(
                {
                    datetime.combine(day, datetime.min.time(), tzinfo=UTC)
                    for row in partitions
                    if row["parent_name"] == parent
                    and (day := partition_day(row["partition_name"])) is not None
                }
            )
            folded.append(await connection.fetchval(fold, days))
    return Folded(*folded)


class RollupFolder:
    """Folds the inbox every `interval` seconds until cancelled; survives outages."""

    def __init__(self, pool: asyncpg.Pool, interval: float) -> None:
        self._pool = pool
        self._interval = interval

    async def fold(self) -> Folded | None:
        async with self._pool.acquire() as connection:
            return await fold_rollups(connection)

    async def run(self) -> None:
        while True:
            try:
                await self.fold()
            except Exception as exc:
                if is_outage(exc):
                    logger.warning("rollup fold failed, will retry: %r", exc)
                else:
                    logger.exception("rollup fold failed unexpectedly, will retry")
            await asyncio.sleep(self._interval)
