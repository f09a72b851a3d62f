"""Ingest throughput with the rollups maintained, against the same writer without them.

In process, no HTTP: the engine's own batch path (`prepare_batch` + `write_batch`, one
transaction a batch) writes the same readings into a fresh database per round, once with the
engine's statements (history + rollup inbox) with the engine's rollup folder running beside it
on its own connection as in the engine, and once with the history inserts as they were before
rollups (bench/queries.sql). Two figures with rollups: readings committed per second while the
folder runs beside them (the steady state of an engine under load, which holds only if the
folder keeps up: printed with the rate it folds at while busy), and readings per second until
the last fold has taken the whole inbox (a finite run's tail included). Without HTTP the
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
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import asyncpg

from bench.database import history_storage, prepare_schema, scratch_database
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


FOLD_SECONDS = 5.0
"""The engine's default `rollup_fold_seconds`."""


class Folder:
    """The engine's folder loop on its own connection, stopped between folds; it counts the
    readings it folded and the time it spent folding."""

    def __init__(self, connection: asyncpg.Connection, seconds: float) -> None:
        self._connection = connection
        self._seconds = seconds
        self.stop = asyncio.Event()
        self.folded = 0
        self.busy = 0.0
        self.split_more = False
        self.vehicle_days = 0

    async def fold(self) -> None:
        started = time.perf_counter()
        folded = await fold_rollups(self._connection)
        self.busy += time.perf_counter() - started
        if folded is not None:
            self.folded += folded.meters + folded.vehicles
            self.vehicle_days += folded.vehicle_days
            self.split_more = folded.split_more

    async def run(self) -> None:
        while not self.stop.is_set():
            try:
                await asyncio.wait_for(self.stop.wait(), self._seconds)
            except TimeoutError:
                await self.fold()


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


@dataclass(frozen=True, slots=True)
class Measured:
    """One round of one variant: readings, the time to commit them all, the time until the
    last fold took the whole inbox, and what the folder did while the readings came in."""

    readings: int
    write_seconds: float
    total_seconds: float
    folded_meanwhile: int = 0
    fold_busy_seconds: float = 0.0
    bytes_per_reading: dict[str, float] = field(default_factory=dict)
    split_seconds: float = 0.0
    """After the last fold: until the charging split had no vehicle-day left pending."""
    split_vehicle_days: int = 0
    """Vehicle-days whose split the folder computed over the whole run."""


async def measure(
    admin_url: str,
    name: str,
    batches: list[list[Reading]],
    rollups: bool,
    *,
    storage: bool = False,
) -> Measured:
    """One variant over `batches`, in a fresh database; devices registered beforehand. With
    `storage`, history's bytes per reading by table once written (bench/registers.py)."""
    days = {day_of(reading.timestamp) for batch in batches for reading in batch}
    async with scratch_database(admin_url, name) as url:
        await prepare_schema(url, days)
        connection = await asyncpg.connect(url)
        folder_connection = await asyncpg.connect(url)
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
            folder = Folder(folder_connection, FOLD_SECONDS)
            with nullcontext() if rollups else without_rollups():
                started = time.perf_counter()
                running = asyncio.create_task(folder.run()) if rollups else None
                for batch in batches:
                    prepared = await prepare_batch(write, batch, keys)
                    async with connection.transaction():
                        await write_batch(write, prepared)
                written = time.perf_counter() - started
                folded, busy = folder.folded, folder.busy
                if running is not None:
                    folder.stop.set()
                    await running  # the fold under way, if any, finishes
                    await folder.fold()  # and the rest of the inbox
                total = time.perf_counter() - started
                while rollups and folder.split_more:  # the charging split catches up
                    await folder.fold()
                split = time.perf_counter() - started - total
        finally:
            await folder_connection.close()
            await connection.close()
        sizes = (
            {
                table: figures["bytes_per_reading"]
                for table, figures in (await history_storage(url)).items()
            }
            if storage
            else {}
        )
    return Measured(
        sum(len(batch) for batch in batches),
        written,
        total,
        folded,
        busy,
        sizes,
        split if rollups else 0.0,
        folder.vehicle_days,
    )


async def run(
    admin_url: str, devices: int, minutes: int, rounds: int, name_prefix: str = "bench_rollups"
) -> dict[str, float]:
    """Best of `rounds` for each variant (rounds alternate). With rollups: the rate while the
    readings came in with the folder beside them (the steady state; it holds only if the folder
    kept up, i.e. folds faster than readings arrive), and the rate until the last fold."""
    now = datetime.now(UTC).replace(second=0, microsecond=0)
    batches = minute_batches(devices, minutes, now - timedelta(minutes=minutes + 1))
    without: list[Measured] = []
    with_rollups: list[Measured] = []
    for number in range(rounds):
        for variant in ("without", "with"):
            measured = await measure(
                admin_url, f"{name_prefix}_{variant}_{number}", batches, variant == "with"
            )
            (with_rollups if variant == "with" else without).append(measured)
            line = f"round {number + 1}: {variant} rollups "
            line += f"{measured.readings / measured.write_seconds:,.0f} readings/s committed"
            if variant == "with":
                line += f", {measured.readings / measured.total_seconds:,.0f} once folded"
            print(line, flush=True)
    baseline = max(m.readings / m.write_seconds for m in without)
    best = max(with_rollups, key=lambda m: m.readings / m.write_seconds)
    steady = best.readings / best.write_seconds
    strict = max(m.readings / m.total_seconds for m in with_rollups)
    busy = best.fold_busy_seconds
    fold_rate = best.folded_meanwhile / busy if busy else 0.0
    return {
        "without": baseline,
        "with": steady,
        "with_once_folded": strict,
        "ratio": steady / baseline,
        "ratio_once_folded": strict / baseline,
        "fold_readings_per_second": fold_rate,
        "folder_kept_up": float(fold_rate > steady),
        "tail_seconds": best.total_seconds - best.write_seconds,
        "split_seconds": best.split_seconds,
        "split_vehicle_days": best.split_vehicle_days,
    }


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
        f"best: with rollups {best['with']:,.0f} readings/s committed with the folder beside"
        f" it (folding {best['fold_readings_per_second']:,.0f} readings/s while busy), without"
        f" {best['without']:,.0f}: ratio {best['ratio']:.2f}; until the last fold"
        f" {best['with_once_folded']:,.0f}: ratio {best['ratio_once_folded']:.2f}"
    )


if __name__ == "__main__":
    main()
