"""A file of readings into history: the HTTP ingest's rules, the writer's COPY path, rollups folded.

Every line is validated by `validate_reading`, as a batch item is, with one difference: the
back-fill window is open (any past time is accepted; the future beyond the clock-skew allowance
is still refused). A reading older than the retention window is refused with its own rule, since
retention would drop its day. Valid readings are written in transactions of `chunk_size` through
the writer's own `prepare_batch` and `write_batch` (COPY into staging, insert-or-skip, live
upsert, rollup inbox), so duplicates and conflicts are decided exactly as for HTTP; like the
group-commit writer, up to `concurrency` transactions are in flight, while the file goes on
being read. The import ends with a fold, so the rollups hold every stored reading when it
returns.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime, time, timedelta
from typing import Any, Literal

from energy_ingest.config import (
    DEFAULT_REGISTER_RULES,
    DEFAULT_SPLIT_RULES,
    RegisterRules,
    Settings,
    SplitRules,
)
from energy_ingest.db.partitions import PartitionManager, day_of
from energy_ingest.db.pool import AnyConnection, Database
from energy_ingest.errors import FieldProblem
from energy_ingest.ingest.files import Line
from energy_ingest.ingest.schemas import Limits, validate_reading
from energy_ingest.readings import Outcome, Reading, kind_of
from energy_ingest.wire import EARLIEST, LATEST, format_timestamp
from energy_ingest.writer.repository import DeviceKeys, prepare_batch, write_batch
from energy_ingest.writer.rollups import Folded, fold_rollups

_ANY_PAST = LATEST - EARLIEST
"""A back-fill window reaching before the earliest timestamp the wire accepts."""
_YIELD_EVERY_LINES = 256
"""While a batch is written, reading the next one gives the event loop a turn this often, so
the batch in flight moves on (COPY data, the next statement) while the file is read."""
_FOLD_RETRY_SECONDS = 0.05


@dataclass(frozen=True, slots=True)
class ImportRules:
    """The HTTP ingest's limits with the back-fill window opened, and the retention window."""

    limits: Limits
    retention_days: int | None
    rules: RegisterRules = DEFAULT_REGISTER_RULES
    split: SplitRules = DEFAULT_SPLIT_RULES

    @classmethod
    def from_settings(cls, settings: Settings) -> ImportRules:
        return cls(
            limits=replace(Limits.from_settings(settings), max_backfill=_ANY_PAST),
            retention_days=settings.retention_days,
            rules=settings.register_rules,
            split=settings.split_rules,
        )

    def kept_from(self, now: datetime) -> datetime | None:
        """The first moment retention keeps (the start of its first kept UTC day), or None."""
        if self.retention_days is None:
            return None
        first_day = now.astimezone(UTC).date() - timedelta(days=self.retention_days)
        return datetime.combine(first_day, time(0), tzinfo=UTC)


@dataclass(frozen=True, slots=True)
class Refusal:
    """A line that was not stored: invalid (with every rule it breaks) or a conflict."""

    line: int
    reason: Literal["invalid", "conflict"]
    problems: tuple[FieldProblem, ...]
    text: str

    def as_json(self) -> dict[str, Any]:
        """As a batch answer's error, with the line number for the index and the line itself."""
        message = (
            self.problems[0].message
            if self.reason == "conflict"
            else "; ".join(f"{p.field}: {p.message}" for p in self.problems)
        )
        return {
            "line": self.line,
            "reason": self.reason,
            "message": message,
            "fields": [problem.as_json() for problem in self.problems],
            "input": self.text,
        }


@dataclass(slots=True)
class ImportSummary:
    """What happened to the file's lines, counted as a batch answer counts its items."""

    received: int = 0
    stored: int = 0
    duplicates: int = 0
    conflicts: int = 0
    rejected: int = 0

    @property
    def failed(self) -> int:
        return self.conflicts + self.rejected

    def as_json(self) -> dict[str, int]:
        return {
            "received": self.received,
            "successful": self.stored + self.duplicates,
            "failed": self.failed,
            "stored": self.stored,
            "duplicates": self.duplicates,
            "conflicts": self.conflicts,
            "rejected": self.rejected,
        }


def _retention_problem(retention_days: int, kept_from: datetime) -> FieldProblem:
    return FieldProblem(
        field="timestamp",
        rule="retention",
        message=f"is older than the retention window of {retention_days} days"
        f" (EIE_RETENTION_DAYS): its day would be dropped; readings from"
        f" {format_timestamp(kept_from)} on are kept",
    )


def _conflict_problem(reading: Reading) -> FieldProblem:
    return FieldProblem(
        field="timestamp",
        rule="conflict",
        message=f"{kind_of(reading).id_field} {reading.device_id} already has a different"
        f" reading at {format_timestamp(reading.timestamp)}; the stored one is kept",
    )


@dataclass(frozen=True, slots=True)
class _Batch:
    """A batch being written, and the (kind, device, timestamp) keys it holds."""

    task: asyncio.Task[None]
    keys: set[tuple[type, str, datetime]]


class FileImport:
    """Validates and writes the lines of one file; `refused` hears of every line not stored."""

    def __init__(
        self,
        database: Database,
        partitions: PartitionManager,
        rules: ImportRules,
        refused: Callable[[Refusal], None],
        chunk_size: int = 5_000,
        concurrency: int = 2,
    ) -> None:
        self._database = database
        self._partitions = partitions
        self._rules = rules
        self._refused = refused
        self._chunk_size = chunk_size
        self._concurrency = concurrency
        self._device_keys = DeviceKeys()
        self.summary = ImportSummary()

    def _refuse(self, line: Line, reason: Literal["invalid", "conflict"], problems: Any) -> None:
        if reason == "invalid":
            self.summary.rejected += 1
        else:
            self.summary.conflicts += 1
        self._refused(Refusal(line.number, reason, tuple(problems), line.text))

    async def run(self, lines: Iterable[Line]) -> ImportSummary:
        """Import every line, then fold the rollups; the summary of what happened."""
        limits, retention_days = self._rules.limits, self._rules.retention_days
        in_flight: deque[_Batch] = deque()
        try:
            now = datetime.now(UTC)
            kept_from = self._rules.kept_from(now)
            readings: list[Reading] = []
            origins: list[Line] = []
            for line in lines:
                self.summary.received += 1
                if line.item is None:
                    self._refuse(line, "invalid", line.problems)
                else:
                    checked = validate_reading(line.item, limits, None, now)
                    if isinstance(checked, list):
                        self._refuse(line, "invalid", checked)
                    elif kept_from is not None and checked.timestamp < kept_from:
                        assert retention_days is not None
                        self._refuse(
                            line, "invalid", [_retention_problem(retention_days, kept_from)]
                        )
                    else:
                        readings.append(checked)
                        origins.append(line)
                if len(readings) >= self._chunk_size:
                    await self._launch(in_flight, readings, origins)
                    readings, origins = [], []
                    now = datetime.now(UTC)
                    kept_from = self._rules.kept_from(now)
                elif self.summary.received % _YIELD_EVERY_LINES == 0:
                    await asyncio.sleep(0)
            if readings:
                await self._launch(in_flight, readings, origins)
            while in_flight:
                await in_flight.popleft().task
        finally:
            for batch in in_flight:
                batch.task.cancel()
            await asyncio.gather(*(batch.task for batch in in_flight), return_exceptions=True)
        await self.fold()
        return self.summary

    async def _launch(
        self, in_flight: deque[_Batch], readings: list[Reading], origins: list[Line]
    ) -> None:
        """Start writing a batch once a connection is free and no batch in flight holds one of
        its (device, timestamp) keys: a repeated key is then always decided against the earlier
        line of the file, never by which transaction happens to commit first."""
        keys = {(type(reading), reading[0], reading.timestamp) for reading in readings}
        while in_flight and (
            len(in_flight) >= self._concurrency
            or any(not keys.isdisjoint(batch.keys) for batch in in_flight)
        ):
            await in_flight.popleft().task
        task = asyncio.create_task(self._write(readings, origins))
        in_flight.append(_Batch(task, keys))

    async def _write(self, readings: Sequence[Reading], origins: Sequence[Line]) -> None:
        """One transaction of the writer's shape; outcomes counted, conflicts refused."""
        await self._partitions.ensure({day_of(reading.timestamp) for reading in readings})
        async with self._database.write() as connection:
            prepared = await prepare_batch(connection, readings, self._device_keys)
            async with connection.transaction():
                outcomes = await write_batch(connection, prepared, self._rules.rules)
        summary = self.summary
        for line, reading, outcome in zip(origins, readings, outcomes, strict=True):
            if outcome is Outcome.STORED:
                summary.stored += 1
            elif outcome is Outcome.DUPLICATE:
                summary.duplicates += 1
            else:
                self._refuse(line, "conflict", [_conflict_problem(reading)])

    async def fold(self) -> Folded:
        """Fold the rollup inbox; while an engine's folder holds the fold, wait for the next."""
        async with self._database.write() as connection:
            return await fold_until_done(connection, self._rules.split)


async def fold_until_done(
    connection: AnyConnection, rules: SplitRules = DEFAULT_SPLIT_RULES
) -> Folded:
    """One fold of everything committed so far, waiting while another process folds."""
    while True:
        folded = await fold_rollups(connection, rules=rules)
        if folded is not None:
            return folded
        await asyncio.sleep(_FOLD_RETRY_SECONDS)
