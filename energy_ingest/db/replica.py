"""How far behind the read replica is, known in memory: no request asks the primary.

Every `check_seconds` the watch notes the time, then the primary's WAL position, then asks the
replica how far it has replayed. Everything acknowledged before a noted time has its commit at
or below the position noted then, so a replica that has replayed that far holds all of it: the
replica misses at most what was committed since the newest noted time whose position it has
replayed. That bound only grows between checks (replay never goes back), which makes it safe
to use until the next check. It needs no clock shared by the two servers.
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from collections import deque
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass

import asyncpg

from energy_ingest.db.sql import sql

logger = logging.getLogger(__name__)

_CHECK_TIMEOUT_SECONDS = 2.0


@dataclass(frozen=True, slots=True)
class ReadSource:
    """Where one answer was read, for its `Read-Source` header."""

    replica: bool
    staleness: float | None  # seconds the replica may be behind; None: unknown
    reason: str | None = None  # why the primary, when a replica is configured

    def header(self, bound: float) -> str:
        if self.replica:
            return f"replica; staleness={self.staleness:.2f}"
        parts = ["primary", f'reason="{self.reason}"']
        if self.staleness is not None:
            parts.append(f"staleness={self.staleness:.2f}")
        parts.append(f"bound={bound:g}")
        return "; ".join(parts)


class ReplicaWatch:
    """Keeps `staleness()` of the replica current; owns its checking task (an async context)."""

    def __init__(
        self,
        primary: asyncpg.Pool,
        replica: asyncpg.Pool,
        *,
        check_seconds: float,
        bound_seconds: float,
    ) -> None:
        self._primary = primary
        self._replica = replica
        self._check_seconds = check_seconds
        # Noted (time, position) pairs not yet known replayed, oldest first. Enough of them to
        # reach back past the bound: when none of them is replayed the replica is behind by
        # more than the bound, whatever the older ones were.
        self._noted: deque[tuple[float, int]] = deque(
            maxlen=math.ceil(bound_seconds / check_seconds) + 8
        )
        self._complete_at: float | None = None  # monotonic time the replica is complete to
        self.reachable = False
        self._task: asyncio.Task[None] | None = None

    async def __aenter__(self) -> ReplicaWatch:
        self._task = asyncio.create_task(self._run(), name="replica-watch")
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)

    def staleness(self) -> float | None:
        """Seconds of commits the replica may lack; None when unknown (never checked, or
        nothing noted within reach is replayed yet)."""
        if self._complete_at is None:
            return None
        return time.monotonic() - self._complete_at

    async def check(self) -> None:
        """One measurement (the task runs it every check_seconds; tests may call it)."""
        noted_at = time.monotonic()
        async with asyncio.timeout(_CHECK_TIMEOUT_SECONDS):
            async with self._primary.acquire() as connection:
                position: int = await connection.fetchval(sql("get_primary_wal_position"))
            self._noted.append((noted_at, position))
            async with self._replica.acquire() as connection:
                replayed: int | None = await connection.fetchval(sql("get_replica_replay_position"))
        self.reachable = True
        if replayed is None:  # not a standby: it holds everything it was asked about
            self._complete_at = noted_at
            self._noted.clear()
            return
        while self._noted and self._noted[0][1] <= replayed:
            self._complete_at = self._noted.popleft()[0]

    async def _run(self) -> None:
        unreachable_logged = False
        while True:
            try:
                await self.check()
                unreachable_logged = False
            except Exception as exc:
                # Nothing replayed is noted, so the staleness grows and reads move to the
                # primary by themselves once it passes the bound.
                self.reachable = False
                if not unreachable_logged:
                    logger.warning("read replica check failed, will retry: %r", exc)
                    unreachable_logged = True
            await asyncio.sleep(self._check_seconds)


@asynccontextmanager
async def watch_replica(
    primary: asyncpg.Pool, replica: asyncpg.Pool, *, check_seconds: float, bound_seconds: float
) -> AsyncIterator[ReplicaWatch]:
    """A running ReplicaWatch for the length of the block."""
    async with ReplicaWatch(
        primary, replica, check_seconds=check_seconds, bound_seconds=bound_seconds
    ) as watch:
        yield watch
