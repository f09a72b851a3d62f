"""Ingest throughput with the rollups maintained, against the same writer without them.

In process, no HTTP: the engine's own batch path (`prepare_batch` + `write_batch`, one
transaction a batch) writes the same readings into a fresh database per round, once with the
engine's statements (history + rollup inbox) with the engine's rollup folder running beside it
on its own connection as in the engine, and once with the history inserts as they were before
rollups (bench/queries.sql). The clock stops with rollups only once the last fold has taken the
whole inbox: the figure is readings stored *and* rolled up per second. Without HTTP the
database's share of the work is at its largest, so the ratio is the worst case of what an HTTP
client sees. Rounds alternate; the best of each counts.

    python -m bench.rollups --admin-url postgresql://postgres@127.0.0.1:5432/postgres
"""

from __future__ import annotations

import argparse
import asyncio
import time
from collections.abc import Iterator
from contextlib import contextmanager, nullcontext
from datetime import UTC, datetime, timedelta

import asyncpg

from bench.database import prepare_schema, scratch_database
from bench.sql import bench_sql
from energy_ingest.db.partitions import day_of
from energy_ingest.db.pool import WriteConnection
from energy_ingest.db.sql import queries, sql
from energy_ingest.readings import Reading, ValidMeterReading, ValidVehicleReading
from energy_ingest.writer.repository import (
    METER_SQL,
    VEHICLE_SQL,
    DeviceKeys,
    prepare_batch,
    write_batch,
)
from energy_ingest.writer.rollups import fold_rollups


@contextmanager
def without_rollups() -> Iterator[None]:
    """The writer's history inserts swapped for the ones that keep no rollups, for the block."""
    statements = queries()
    saved = {
        name: statements[name] for name in ("insert_meter_readings", "insert_vehicle_readings")
    }
    statements["insert_meter_readings"] = bench_sql("insert_meter_readings_without_rollups")
    statements["insert_vehicle_readings"] = bench_sql("insert_vehicle_readings_without_rollups")
    try:
        yield
    finally:
        statements.update(saved)


FOLD_SECONDS = 1.0
"""The engine's default `rollup_fold_seconds`."""


async def _fold_every(connection: asyncpg.Connection, seconds: float | None) -> None:
    """The engine's folder loop; with None (no rollups) it only waits to be cancelled."""
    if seconds is None:
        await asyncio.Event().wait()
    while seconds is not None:
        await asyncio.sleep(seconds)
        await fold_rollups(connection)


def minute_batches(devices: int, minutes: int, first: datetime) -> list[list[Reading]]:
    """One batch a minute: every meter and every vehicle reports once, at the same moment."""
    batches: list[list[Reading]] = []
    for minute in range(minutes):
        at = first + timedelta(minutes=minute)
        batch: list[Reading] = []
        for device in range(devices):
            batch.append(ValidMeterReading(f"m-{device}", 0.1 + device % 7 / 1000, 230.0, at))
            batch.append(ValidVehicleReading(f"v-{device}", 50.0, 0.09, 25.0 + device % 9, at))
        batches.append(batch)
    return batches


async def measure(admin_url: str, name: str, batches: list[list[Reading]], rollups: bool) -> float:
    """Readings a second over `batches`, in a fresh database; devices registered beforehand."""
    days = {day_of(reading.timestamp) for batch in batches for reading in batch}
    async with scratch_database(admin_url, name) as url:
        await prepare_schema(url, days)
        connection = await asyncpg.connect(url)
        try:
            await connection.execute(sql("create_staging_tables"))
            write = WriteConnection(connection)  # type: ignore[arg-type]
            keys = DeviceKeys()
            first = batches[0]
            for kind, prefix in ((METER_SQL, "m-"), (VEHICLE_SQL, "v-")):
                ids = {
                    reading.device_id for reading in first if reading.device_id.startswith(prefix)
                }
                await keys.resolve(write, kind, ids)
            folder_connection = await asyncpg.connect(url)
            with nullcontext() if rollups else without_rollups():
                started = time.perf_counter()
                folder = asyncio.create_task(
                    _fold_every(folder_connection, FOLD_SECONDS if rollups else None)
                )
                try:
                    for batch in batches:
                        prepared = await prepare_batch(write, batch, keys)
                        async with connection.transaction():
                            await write_batch(write, prepared)
                finally:
                    folder.cancel()
                    await asyncio.gather(folder, return_exceptions=True)
                if rollups:
                    await fold_rollups(folder_connection)
                elapsed = time.perf_counter() - started
            await folder_connection.close()
        finally:
            await connection.close()
    return sum(len(batch) for batch in batches) / elapsed


async def run(
    admin_url: str, devices: int, minutes: int, rounds: int, name_prefix: str = "bench_rollups"
) -> dict[str, float]:
    now = datetime.now(UTC).replace(second=0, microsecond=0)
    batches = minute_batches(devices, minutes, now - timedelta(minutes=minutes + 1))
    best = {"with": 0.0, "without": 0.0}
    for number in range(rounds):
        for variant in ("without", "with"):
            rate = await measure(
                admin_url, f"{name_prefix}_{variant}_{number}", batches, variant == "with"
            )
            print(f"round {number + 1}: {variant} rollups {rate:,.0f} readings/s", flush=True)
            best[variant] = max(best[variant], rate)
    best["ratio"] = best["with"] / best["without"]
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--admin-url", required=True, help="A server where databases may be made.")
    parser.add_argument("--devices", type=int, default=5_000, help="Meters, and as many vehicles.")
    parser.add_argument(
        "--minutes", type=int, default=60, help="Batches: one a minute of readings."
    )
    parser.add_argument("--rounds", type=int, default=3)
    options = parser.parse_args()
    best = asyncio.run(run(options.admin_url, options.devices, options.minutes, options.rounds))
    print(
        f"best: with rollups {best['with']:,.0f} readings/s, without {best['without']:,.0f}"
        f" readings/s, ratio {best['ratio']:.2f}"
    )


if __name__ == "__main__":
    main()
