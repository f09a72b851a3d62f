"""The seed service's write path behind the engine's writer protocol: one transaction a reading.

Plugged into `create_app(settings, writer_factory=...)` it puts the naive baseline behind the
very HTTP stack, validation and answers of the engine, so a comparison measures the write path
and nothing else.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass
from types import TracebackType

import asyncpg

from bench.sql import bench_sql
from energy_ingest.config import Settings
from energy_ingest.db.partitions import PartitionManager, day_of
from energy_ingest.db.pool import Database, is_outage
from energy_ingest.db.sql import sql
from energy_ingest.errors import DatabaseUnavailable, ServiceUnavailable
from energy_ingest.readings import DeviceKind, Outcome, Reading, kind_of

DEFAULT_CONNECTIONS = 10


@dataclass(frozen=True, slots=True)
class _KindStatements:
    """The named statements of one kind of reading (bench/queries.sql)."""

    insert: str
    upsert: str
    register: str
    keys: str


_METER = _KindStatements(
    insert="naive_insert_meter_reading",
    upsert="naive_upsert_meter_live",
    register="register_meters",
    keys="get_meter_keys",
)
_VEHICLE = _KindStatements(
    insert="naive_insert_vehicle_reading",
    upsert="naive_upsert_vehicle_live",
    register="register_vehicles",
    keys="get_vehicle_keys",
)


_STATEMENTS = {DeviceKind.METER: _METER, DeviceKind.VEHICLE: _VEHICLE}


def _statements(reading: Reading) -> _KindStatements:
    return _STATEMENTS[kind_of(reading).kind]


def _values(reading: Reading) -> tuple[float | None, ...]:
    return kind_of(reading).values(reading)


class PerReadingWriter:
    """The seed's writer: one transaction a reading, a batch spread over a connection pool.

    Each transaction is a history INSERT (a skipped one is a duplicate), then the seed's
    unconditional live UPSERT.

    Takes `(database, partitions, settings[, metrics])` like GroupCommitWriter (the engine's
    metrics are not fed). Device keys of history are cached per process; a new device is
    registered once, outside the reading's transaction.
    """

    def __init__(
        self,
        database: Database,
        partitions: PartitionManager,
        settings: Settings,
        metrics: object = None,
        *,
        connections: int = DEFAULT_CONNECTIONS,
    ) -> None:
        del metrics  # the baseline reports nothing of its own
        self._url = database.url
        self._partitions = partitions
        self._settings = settings
        self._connections = connections
        self._pool: asyncpg.Pool | None = None
        self._keys: dict[str, dict[str, int]] = {_METER.keys: {}, _VEHICLE.keys: {}}
        self._pending = 0

    async def __aenter__(self) -> PerReadingWriter:
        self._pool = await asyncpg.create_pool(
            self._url,
            min_size=self._connections,
            max_size=self._connections,
            command_timeout=self._settings.statement_timeout_seconds,
            server_settings={"application_name": "energy-ingest naive writer"},
        )
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        pool, self._pool = self._pool, None
        if pool is not None:
            await pool.close()

    @property
    def running(self) -> bool:
        """True while the pool is open."""
        return self._pool is not None

    def check_capacity(self, readings: int = 1) -> None:
        """The seed had no queue to fill: every request is taken."""

    @property
    def queued_readings(self) -> int:
        """Readings accepted and not committed yet."""
        return self._pending

    async def write(
        self, readings: Sequence[Reading], *, quota_key: str | None = None
    ) -> list[Outcome]:
        """Commit every reading in its own transaction; one outcome per reading, in order.

        The seed had no quota of new devices: `quota_key` is ignored."""
        pool = self._pool
        if pool is None:
            raise ServiceUnavailable(
                "the engine is shutting down", self._settings.retry_after_seconds
            )
        if not readings:
            return []
        self._pending += len(readings)
        try:
            await self._partitions.ensure({day_of(reading.timestamp) for reading in readings})
            await self._register(pool, readings)
            if len(readings) == 1:
                return [await self._write_one(pool, readings[0])]
            return await self._write_many(pool, readings)
        except Exception as exc:
            if not is_outage(exc):
                raise
            raise DatabaseUnavailable(
                f"the database failed: {exc!r}", self._settings.retry_after_seconds
            ) from exc
        finally:
            self._pending -= len(readings)

    async def _register(self, pool: asyncpg.Pool, readings: Sequence[Reading]) -> None:
        missing: dict[_KindStatements, set[str]] = {}
        for reading in readings:
            kind = _statements(reading)
            if reading.device_id not in self._keys[kind.keys]:
                missing.setdefault(kind, set()).add(reading.device_id)
        if not missing:
            return
        async with pool.acquire() as connection:
            for kind, device_ids in missing.items():
                ordered = sorted(device_ids)
                await connection.execute(sql(kind.register), ordered)
                for row in await connection.fetch(sql(kind.keys), ordered):
                    self._keys[kind.keys][row["device_id"]] = row["device_key"]

    async def _write_one(self, pool: asyncpg.Pool, reading: Reading) -> Outcome:
        kind = _statements(reading)
        key = self._keys[kind.keys][reading.device_id]
        values = _values(reading)
        async with pool.acquire() as connection, connection.transaction():
            status = await connection.execute(
                bench_sql(kind.insert), reading.timestamp, *values, key
            )
            await connection.execute(
                bench_sql(kind.upsert), reading.timestamp, *values, reading.device_id
            )
        return Outcome.STORED if status.endswith(" 1") else Outcome.DUPLICATE

    async def _write_many(self, pool: asyncpg.Pool, readings: Sequence[Reading]) -> list[Outcome]:
        # Like the seed's Promise.allSettled over its pool: every reading is attempted, as many
        # at once as there are connections.
        outcomes: list[Outcome | BaseException] = [Outcome.STORED] * len(readings)
        positions = iter(range(len(readings)))

        async def worker() -> None:
            for position in positions:
                try:
                    outcomes[position] = await self._write_one(pool, readings[position])
                except Exception as exc:
                    if not is_outage(exc):
                        raise
                    outcomes[position] = exc

        await asyncio.gather(*(worker() for _ in range(min(self._connections, len(readings)))))
        result: list[Outcome] = []
        for outcome in outcomes:
            if isinstance(outcome, BaseException):
                raise outcome
            result.append(outcome)
        return result
