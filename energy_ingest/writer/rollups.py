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
import time
from dataclasses import dataclass
from datetime import UTC, datetime

import asyncpg

from energy_ingest.config import DEFAULT_SPLIT_RULES, SplitRules
from energy_ingest.db.partitions import partition_day
from energy_ingest.db.pool import AnyConnection, is_outage
from energy_ingest.db.sql import sql
from energy_ingest.telemetry.metrics import EngineMetrics

logger = logging.getLogger(__name__)


FOLD_LIMIT = 200_000
"""Inbox rows one fold takes per stream at most: a minute of a 100,000-device fleet, a
transaction of a second or two; a fold that hits it is followed by another at once."""

ENERGY_FOLD_LIMIT = 5_000
"""Vehicle-hours whose charging split one fold computes again at most (about 0.5 ms each: a
transaction of a few seconds). A 20,000-vehicle fleet touches its vehicles' current hours once a
minute: four folds' worth, at one fold a second while vehicle-days are pending. A back-fill (an
import, an assignment changed in the past, the migration) goes on in the next folds, newest
days first, readers computing its days from history meanwhile."""

SPLIT_CATCH_UP_SECONDS = 1.0
"""The folder's pause while vehicle-days are still pending (and the inbox is not): the split
catches up without taking the machine from ingest."""


@dataclass(frozen=True, slots=True)
class Folded:
    """What one fold did: readings added to the rollups per stream, and whether the inbox
    held more than the fold could take."""

    meters: int
    vehicles: int
    more: bool = False
    vehicle_days: int = 0
    """Vehicle-days whose charging split the fold computed again."""
    split_more: bool = False
    """Whether vehicle-days are still pending after it (a back-fill, or a burst the split's
    budget did not cover): readers compute them from history meanwhile."""


_KINDS = (
    ("meter_rollup_days", sql("fold_meter_inbox")),
    ("vehicle_rollup_days", sql("fold_vehicle_inbox")),
)


async def fold_rollups(
    connection: AnyConnection,
    limit: int = FOLD_LIMIT,
    rules: SplitRules = DEFAULT_SPLIT_RULES,
    energy_limit: int = ENERGY_FOLD_LIMIT,
) -> Folded | None:
    """One fold on `connection`; None if another engine is folding.

    First the inbox, in one transaction, whose statements also queue the vehicle-days their
    readings can change the charging split of; then, in a second transaction, the pending
    vehicle-days are computed again (`energy_limit` vehicle-hours at most). Apart, so a burst
    of charging splits to compute never holds the inbox back: ingest and the sums come first,
    the split follows (exact meanwhile: readers compute what is pending).
    """
    folded: list[int] = []
    more = False
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
            row = await connection.fetchrow(fold, days, limit, rules.session_gap_minutes)
            assert row is not None
            folded.append(row["folded"])
            more = more or row["taken"] >= limit
    async with connection.transaction():
        if not await connection.fetchval(sql("try_lock_rollup_fold")):
            return Folded(folded[0], folded[1], more)
        await connection.execute(sql("disable_jit_for_fold"))
        await connection.execute(sql("lock_partitions_shared"))
        partitions = await connection.fetch(sql("list_day_partitions"), ["vehicle_rollup_days"])
        energy_days = sorted(
            {
                datetime.combine(day, datetime.min.time(), tzinfo=UTC)
                for row in partitions
                if row["parent_name"] == "vehicle_rollup_days"
                and (day := partition_day(row["partition_name"])) is not None
            }
        )
        energy = await connection.fetchrow(
            sql("fold_vehicle_energy"), energy_days, energy_limit, *rules.arguments()
        )
        assert energy is not None
    return Folded(folded[0], folded[1], more, energy["computed"], energy["more"])


class RollupFolder:
    """Folds the inbox every `interval` seconds until cancelled (at once again while a fold
    leaves more behind); survives outages."""

    def __init__(
        self,
        pool: asyncpg.Pool,
        interval: float,
        metrics: EngineMetrics | None = None,
        rules: SplitRules = DEFAULT_SPLIT_RULES,
    ) -> None:
        self._pool = pool
        self._interval = interval
        self._metrics = metrics
        self._rules = rules

    async def fold(self) -> Folded | None:
        started = time.perf_counter()
        async with self._pool.acquire() as connection:
            folded = await fold_rollups(connection, rules=self._rules)
        if self._metrics is not None:
            self._metrics.count_fold(folded, time.perf_counter() - started)
        return folded

    async def run(self) -> None:
        while True:
            pause = self._interval
            try:
                folded = await self.fold()
                if folded is not None and folded.more:
                    pause = 0
                elif folded is not None and folded.split_more:
                    pause = min(self._interval, SPLIT_CATCH_UP_SECONDS)
            except Exception as exc:
                if self._metrics is not None:
                    self._metrics.count_fold(None, 0.0, failed=True)
                if is_outage(exc):
                    logger.warning("rollup fold failed, will retry: %r", exc)
                else:
                    logger.exception("rollup fold failed unexpectedly, will retry")
            await asyncio.sleep(pause)
