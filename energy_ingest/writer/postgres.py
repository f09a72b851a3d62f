"""The engine's batch sink: one PostgreSQL transaction a batch, after the new-device quota."""

from __future__ import annotations

from collections.abc import Sequence
from itertools import chain
from operator import itemgetter

from energy_ingest.config import RegisterRules, Settings
from energy_ingest.db.partitions import PartitionManager, day_of
from energy_ingest.db.pool import Database
from energy_ingest.errors import TooManyNewDevices
from energy_ingest.readings import Outcome, Reading
from energy_ingest.telemetry.metrics import EngineMetrics
from energy_ingest.writer.group_commit import (
    GroupCommitWriter,
    SinkAnswer,
    Submission,
    WriterConfig,
    WriterStats,
)
from energy_ingest.writer.quota import NewDeviceQuota
from energy_ingest.writer.repository import DeviceKeys, prepare_batch, write_batch

_TIMESTAMP = itemgetter(-2)  # a reading tuple's timestamp


class PostgresSink:
    """Commits a batch: partitions of its days, device keys, COPY, insert-or-skip, live upsert.

    Before that, each submission's new devices are charged to its key (`quota`); a submission
    past its quota is refused alone with TooManyNewDevices, nothing of it written.
    """

    def __init__(
        self,
        database: Database,
        partitions: PartitionManager,
        quota: NewDeviceQuota,
        *,
        stats: WriterStats | None = None,
        rules: RegisterRules | None = None,
    ) -> None:
        self._database = database
        self._rules = rules or RegisterRules()
        self._partitions = partitions
        self._new_devices = quota
        self._device_keys = DeviceKeys()
        self._stats = stats or WriterStats()

    async def commit(self, batch: Sequence[Submission]) -> list[SinkAnswer]:
        refused = await self._admit(batch)
        readings = list(
            chain.from_iterable(
                submission.readings
                for index, submission in enumerate(batch)
                if index not in refused
            )
        )
        outcomes = await self._write(readings) if readings else []
        answers: list[SinkAnswer] = []
        offset = 0
        for index, submission in enumerate(batch):
            error = refused.get(index)
            if error is not None:
                answers.append(error)
                continue
            count = len(submission.readings)
            answers.append(outcomes[offset : offset + count])
            offset += count
        return answers

    async def _admit(self, batch: Sequence[Submission]) -> dict[int, TooManyNewDevices]:
        """The submissions of `batch` (by index) whose key may not register the new devices
        they bring, each with its refusal.

        Devices in the key cache cost nothing here, so known devices never wait on a lookup;
        unknown ones are looked up once (a restart forgets the cache, not the devices: they
        are not new and cost no quota).
        """
        unknown = [self._device_keys.unknown(submission.readings) for submission in batch]
        if not any(unknown):
            return {}
        self._stats.device_lookups += 1
        async with self._database.write() as connection:
            new = await self._device_keys.look_up(connection, set().union(*unknown))
        if not new:
            return {}
        refused: dict[int, TooManyNewDevices] = {}
        charged: set[tuple[str, str]] = set()  # a new device two requests bring costs once
        for index, (submission, devices) in enumerate(zip(batch, unknown, strict=True)):
            fresh = (devices & new) - charged
            if fresh:
                wait = self._new_devices.take(submission.quota_key, len(fresh))
                if wait is not None:
                    refused[index] = self._refusal(len(fresh), wait)
                    continue
                charged |= fresh
        return refused

    def _refusal(self, fresh: int, wait: int) -> TooManyNewDevices:
        quota = self._new_devices.per_minute
        advice = "send them in smaller batches" if fresh > quota else f"retry in {wait} s"
        return TooManyNewDevices(
            f"this request brings {fresh} new device ids, more than this key may still"
            f" register this minute (at most {quota} a minute); nothing of it was"
            f" stored: {advice}, or send readings of known devices meanwhile",
            wait,
        )

    async def _write(self, readings: list[Reading]) -> list[Outcome]:
        # The day of each distinct timestamp: a batch holds a few, and a reading many thousands.
        moments = set(map(_TIMESTAMP, readings))
        await self._partitions.ensure({day_of(moment) for moment in moments})
        async with self._database.write() as connection:
            prepared = await prepare_batch(connection, readings, self._device_keys)
            async with connection.transaction():
                return await write_batch(connection, prepared, self._rules)


def group_commit_writer(
    database: Database,
    partitions: PartitionManager,
    settings: Settings,
    metrics: EngineMetrics | None = None,
) -> GroupCommitWriter:
    """The engine's writer (a WriterFactory): group commit into PostgreSQL."""
    stats = WriterStats()
    sink = PostgresSink(
        database,
        partitions,
        NewDeviceQuota(settings.max_new_devices_per_minute),
        stats=stats,
        rules=settings.register_rules,
    )
    return GroupCommitWriter(sink, WriterConfig.from_settings(settings), metrics, stats=stats)
