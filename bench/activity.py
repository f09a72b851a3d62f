"""Where the machine's cores went during one load, and what the database's backends were doing.

The ratios of the ingest phases are taken on a few cores that the server under test, PostgreSQL
and the load generator share. py-spy tells where the server's own CPU went; these two tell the
rest, for the same load:

- `CoreShares`: CPU seconds of each group of processes (the server's process tree, PostgreSQL,
  the bench process that generates the load, py-spy, everything else) over the load's wall
  time, as cores used on average: read from /proc at the load's start and end, free to take.
- `DatabaseActivity`: the phase database's active backends, polled from pg_stat_activity
  every few milliseconds and sorted by what they run (the writer's statements, the rollup
  folder's two steps, anything else), as backends busy on average, and how many of them were
  waiting on I/O (a WAL flush, a file extended). It costs one small query per poll, so the
  bench takes it only when it profiles (--profile-dir).
"""

from __future__ import annotations

import asyncio
import os
import time
from collections import Counter
from contextlib import suppress
from dataclasses import dataclass, field
from typing import Any

import asyncpg

from bench.machine import descendants, processes

_TICKS_PER_SECOND = os.sysconf("SC_CLK_TCK")

GROUPS = ("server", "database", "load generator", "profiler", "other")
"""Process groups, in report order."""

ACTIVITIES = ("writer", "inbox fold", "charging split", "other")
"""What a database backend is busy with, in report order."""

# The rollup folder's statements open with their comment (energy_ingest/db/queries/rollups.sql).
_FOLD_INBOX = ("-- Takes up to", "-- Same as fold_meter_inbox")
_FOLD_SPLIT = ("-- Computes again the hours of pending vehicle-days",)
_TRANSACTION = ("BEGIN", "COMMIT", "ROLLBACK", "SELECT pg_advisory_unlock_all()")
_WRITER_APPLICATIONS = ("energy-ingest writer", "energy-ingest naive writer")


def _group(pid: int, name: str, server: set[int]) -> str:
    if pid in server:
        return "server"
    if name == "postgres":  # every PostgreSQL process keeps this command name
        return "database"
    if pid == os.getpid():
        return "load generator"
    if name == "py-spy":
        return "profiler"
    return "other"


@dataclass(slots=True)
class CoreShares:
    """Cores each group of processes used on average between start() and stop()."""

    server_pid: int
    _ticks: dict[int, int] = field(default_factory=dict)
    _started: float = 0.0

    def start(self) -> None:
        self._ticks = {pid: process.ticks for pid, process in processes().items()}
        self._started = time.monotonic()

    def stop(self) -> dict[str, float]:
        """group → cores used on average (CPU seconds over wall seconds), and their total."""
        seconds = time.monotonic() - self._started
        found = processes()
        server = descendants({self.server_pid}, found)
        used: Counter[str] = Counter()
        for pid, (_, name, ticks) in found.items():
            # A process new since start() counts with all it used so far; one that ended
            # meanwhile is missed (the servers' and the database's processes outlive a load).
            used[_group(pid, name, server)] += ticks - self._ticks.get(pid, 0)
        shares = {
            group: round(used[group] / _TICKS_PER_SECOND / seconds, 2) if seconds else 0.0
            for group in GROUPS
        }
        shares["total"] = round(sum(shares[group] for group in GROUPS), 2)
        return shares


def _activity(application: str, query: str, previous: str | None) -> str:
    if application not in _WRITER_APPLICATIONS:
        return "other"
    if query.startswith(_FOLD_SPLIT):
        return "charging split"
    if query.startswith(_FOLD_INBOX):
        return "inbox fold"
    if query.startswith(_TRANSACTION):
        # A transaction's end belongs to what the backend ran in it.
        return previous or "writer"
    return "writer"


@dataclass(slots=True)
class DatabaseActivity:
    """Polls the active backends of one database until stopped."""

    url: str
    database: str
    interval: float = 0.005
    _polls: int = 0
    _busy: Counter[str] = field(default_factory=Counter)
    _waiting: int = 0
    _last: dict[int, str] = field(default_factory=dict)
    _task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        connection = await asyncpg.connect(
            self.url, server_settings={"application_name": "energy-ingest bench activity"}
        )
        self._task = asyncio.create_task(self._poll(connection), name="database-activity")

    async def stop(self) -> dict[str, Any]:
        """Backends busy on average with each activity, their total and how many waited on I/O."""
        if self._task is not None:
            self._task.cancel()
            with suppress(asyncio.CancelledError):
                await self._task
        polls = self._polls or 1
        busy = {activity: round(self._busy[activity] / polls, 2) for activity in ACTIVITIES}
        return {
            "polls": self._polls,
            "busy": busy,
            "total": round(sum(self._busy.values()) / polls, 2),
            "waiting_on_io": round(self._waiting / polls, 2),
        }

    async def _poll(self, connection: asyncpg.Connection) -> None:
        statement = await connection.prepare(
            "SELECT pid, coalesce(application_name, '') AS application, query,"
            " coalesce(wait_event_type, '') || ':' || coalesce(wait_event, '') AS wait"
            " FROM pg_stat_activity"
            " WHERE datname = $1 AND state = 'active' AND pid <> pg_backend_pid()"
        )
        try:
            while True:
                rows = await statement.fetch(self.database)
                self._polls += 1
                for row in rows:
                    query = row["query"].lstrip()
                    activity = _activity(row["application"], query, self._last.get(row["pid"]))
                    if not query.startswith(_TRANSACTION):
                        self._last[row["pid"]] = activity
                    self._busy[activity] += 1
                    if row["wait"].startswith(("IO:", "LWLock:WAL")):
                        self._waiting += 1
                await asyncio.sleep(self.interval)
        finally:
            with suppress(Exception):
                await connection.close()
