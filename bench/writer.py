"""The engine's writer alone: the batch phase's readings, in process, no HTTP and no JSON.

The same 1,000-reading submissions the batch HTTP phase posts (each kind in arrival order,
meter and vehicle submissions alternating), handed by as many concurrent tasks as it has
clients to the engine's own group-commit writer and PostgreSQL sink with their default
settings: partitions, device keys (registered on first sight, as through HTTP), COPY into
staging, the duplicate check, the rollup inbox and the live upsert, one transaction a group.
What this rate lacks against the storage floor is the database work and the writer's Python;
what batch HTTP lacks against this rate is the HTTP server, the body, decoding and validation.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from itertools import zip_longest
from typing import Any

from bench.readings import Reading as BenchReading
from energy_ingest.config import Settings
from energy_ingest.db.partitions import PartitionManager
from energy_ingest.db.pool import open_database
from energy_ingest.readings import Reading, ValidMeterReading, ValidVehicleReading
from energy_ingest.writer.postgres import group_commit_writer


def engine_reading(reading: BenchReading) -> Reading:
    """A generated reading as the engine's decoding would hand it to the writer."""
    if reading.kind == "meter":
        kwh, voltage = reading.values
        return ValidMeterReading(reading.device_id, kwh, voltage, reading.at)
    soc, kwh, temp = reading.values
    return ValidVehicleReading(reading.device_id, soc, kwh, temp, reading.at)


def submissions(readings: Sequence[BenchReading], batch_size: int) -> list[list[Reading]]:
    """Each kind in arrival order, `batch_size` a submission, kinds alternating: the batch
    HTTP phase's requests (bench.readings.batch_bodies), as the writer receives them."""
    per_kind = []
    for kind in ("meter", "vehicle"):
        of_kind = [engine_reading(reading) for reading in readings if reading.kind == kind]
        per_kind.append(
            [of_kind[start : start + batch_size] for start in range(0, len(of_kind), batch_size)]
        )
    return [chunk for pair in zip_longest(*per_kind) for chunk in pair if chunk is not None]


async def write_through_writer(
    url: str, readings: Sequence[BenchReading], *, batch_size: int, clients: int
) -> dict[str, Any]:
    """Readings per second through the engine's writer, `clients` submitters at a time."""
    chunks = submissions(readings, batch_size)
    settings = Settings()
    async with open_database(url, settings) as database:
        partitions = PartitionManager(database.write_pool)
        await partitions.refresh()
        async with group_commit_writer(database, partitions, settings) as writer:
            queue = iter(chunks)

            async def submitter() -> None:
                for chunk in queue:  # shared: each chunk goes to the first free submitter
                    await writer.write(chunk)

            started = time.perf_counter()
            await asyncio.gather(*(submitter() for _ in range(clients)))
            seconds = time.perf_counter() - started
    count = sum(map(len, chunks))
    return {
        "readings": count,
        "seconds": round(seconds, 3),
        "readings_per_second": round(count / seconds, 1),
        "batch_size": batch_size,
        "clients": clients,
    }
