"""Where history's bytes go: bytes per reading of an open day and of the same day compacted.

    python -m bench.storage [--database-url …] [--devices 10000] [--minutes 20]

In a fresh database per variant (the engine's migrations and day partitions), every device
reports once a minute, minute after minute, each minute written as the writer writes its
batches (`--batch-size` readings a statement, in primary-key order). The variants send the
energy as the interval, the cumulative register only, or both. History is measured as written
(the open day), then once the engine's compaction has rebuilt the day's index packed (the
closed day): rows (heap) and index per reading, each table apart. No HTTP and no Python per
reading: how the rows are laid out depends on their values and the order they arrive in, not
on who sends them (the engine through HTTP measures within 0.2 B of this, bench phase 2).

The defaults are the shape of the suite's engine phase (10,000 devices, 20 minutes); a whole
day's shape is `--devices 1000 --minutes 1440` (each device's 1,440 readings of a day).
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
from contextlib import ExitStack
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import asyncpg

from bench.analytics import compact_closed_days
from bench.database import admin_server, history_storage, prepare_schema, scratch_database
from bench.sql import bench_sql
from energy_ingest.db.partitions import day_of

VARIANTS = {"interval": (True, False), "register": (False, True), "both": (True, True)}
"""Energy sent as: (the interval, the register)."""


async def measure_variant(
    admin_url: str, name: str, variant: str, devices: int, minutes: int, batch_size: int
) -> dict[str, Any]:
    """One variant in a fresh database: storage as written, then after compaction."""
    interval, register = VARIANTS[variant]
    # A day before yesterday, so the day is closed by the engine's own rule.
    first = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    first -= timedelta(days=2)
    if minutes > 1440:
        raise ValueError("a day has 1,440 minutes")
    async with scratch_database(admin_url, name) as url:
        await prepare_schema(url, {day_of(first)})
        connection = await asyncpg.connect(url)
        try:
            await connection.execute(bench_sql("insert_storage_meters"), devices)
            await connection.execute(bench_sql("insert_storage_vehicles"), devices)
            for minute in range(minutes):
                for start in range(1, devices + 1, batch_size):
                    end = min(start + batch_size, devices + 1)
                    for statement in ("insert_storage_meter_batch", "insert_storage_vehicle_batch"):
                        await connection.execute(
                            bench_sql(statement), start, end, minute, first, interval, register
                        )
        finally:
            await connection.close()
        written = await history_storage(url)
        await compact_closed_days(url, day_of(first) + timedelta(days=1))
        compacted = await history_storage(url)
    return {"open_day": written, "closed_day": compacted}


async def run(
    admin_url: str, devices: int, minutes: int, batch_size: int, prefix: str = "bench_storage"
) -> dict[str, dict[str, Any]]:
    """Every variant, one after the other, each in its own database."""
    results: dict[str, dict[str, Any]] = {}
    for variant in VARIANTS:
        print(f"{variant} …", file=sys.stderr, flush=True)
        results[variant] = await measure_variant(
            admin_url, f"{prefix}_{variant}", variant, devices, minutes, batch_size
        )
    return results


def render(results: dict[str, dict[str, Any]], devices: int, minutes: int) -> str:
    """A markdown table: per variant and table, bytes per reading open and closed."""
    lines = [
        f"{devices:,} devices × {minutes} minutes a stream, written in arrival order.",
        "",
        "| energy sent as | table | open day: rows + index = B/reading "
        "| closed day (compacted): rows + index = B/reading |",
        "|---|---|---:|---:|",
    ]
    for variant, measured in results.items():
        for table, open_day in measured["open_day"].items():
            closed = measured["closed_day"][table]
            lines.append(f"| {variant} | {table} | {_split(open_day)} | {_split(closed)} |")
    return "\n".join(lines)


def _split(figures: dict[str, Any]) -> str:
    return (
        f"{figures['heap_bytes_per_reading']:.1f} + {figures['index_bytes_per_reading']:.1f}"
        f" = **{figures['bytes_per_reading']:.1f}**"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--database-url", help="a server to measure on (default: embedded)")
    parser.add_argument("--devices", type=int, default=10_000, help="meters, and as many vehicles")
    parser.add_argument("--minutes", type=int, default=20, help="minutes of one day, at most 1440")
    parser.add_argument("--batch-size", type=int, default=1000, help="readings a statement")
    options = parser.parse_args(argv)
    if not 1 <= options.minutes <= 1440 or options.devices < 1 or options.batch_size < 1:
        parser.error("--minutes is 1 to 1440; --devices and --batch-size at least 1")
    with ExitStack() as stack:
        scratch = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="eie-storage-")))
        admin_url, where = admin_server(stack, scratch, options.database_url)
        print(f"on {where}", file=sys.stderr)
        results = asyncio.run(run(admin_url, options.devices, options.minutes, options.batch_size))
    print(render(results, options.devices, options.minutes))
    return 0


if __name__ == "__main__":
    sys.exit(main())
