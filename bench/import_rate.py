"""`energy-ingest import` of a CSV file, against the storage floor measured in the same run.

The file holds the batch benchmark's readings (bench/readings.py: every meter, then every
vehicle, minute by minute), a year old, in one mixed CSV whose header is the JSON field names.
Each round writes them twice, each time into a fresh database of the same server: once by the
storage floor (bench/floor.py: binary COPY straight into history + live upsert, no parsing, no
validation), once by the real command (`python -m energy_ingest import FILE --json`, its own
process: reading, validation, partitions for the old days, the writer's COPY path, the final
rollup fold). The figure is lines per second over the command's whole run and its ratio to the
floor; `make bench`'s batch HTTP figure is the same ratio for HTTP (bench/results/latest.md).

    python -m bench.import_rate --admin-url postgresql://postgres@127.0.0.1:5432/postgres
"""

from __future__ import annotations

import argparse
import asyncio
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from contextlib import ExitStack
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson

from bench.database import admin_server, prepare_schema, scratch_database
from bench.floor import write_floor
from bench.readings import Reading, generate_timeline

_COLUMNS = (
    "meterId",
    "kwhConsumedAc",
    "voltage",
    "vehicleId",
    "soc",
    "kwhDeliveredDc",
    "batteryTemp",
    "timestamp",
)


def write_csv(readings: Sequence[Reading], path: Path) -> None:
    """One mixed CSV: a meter row leaves the vehicle columns empty, and the other way round."""
    with path.open("w", encoding="utf-8") as file:
        file.write(",".join(_COLUMNS) + "\n")
        for reading in readings:
            body = reading.payload()
            file.write(",".join(str(body.get(column, "")) for column in _COLUMNS) + "\n")


def run_import(url: str, path: Path) -> dict[str, Any]:
    """The command in its own process; its summary and the wall-clock time around it."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("EIE_") and k != "DATABASE_URL"}
    env["EIE_DATABASE_URL"] = url
    started = time.perf_counter()
    command = [sys.executable, "-m", "energy_ingest", "--log-level", "warning"]
    done = subprocess.run(
        [*command, "import", str(path), "--json"],
        env=env,
        capture_output=True,
        check=True,
    )
    seconds = time.perf_counter() - started
    summary: dict[str, Any] = orjson.loads(done.stdout)
    return {**summary, "wall_seconds": round(seconds, 3)}


async def _round(
    admin_url: str, readings: Sequence[Reading], path: Path, number: int
) -> dict[str, Any]:
    days = sorted({reading.at.date() for reading in readings})
    async with scratch_database(admin_url, f"eie_bench_import_floor_{number}") as url:
        await prepare_schema(url, days)
        # The suite's floor (bench/suite.py defaults): 10,000 a transaction, 2 connections.
        floor = await write_floor(url, readings, transaction_size=10_000, connections=2)
    async with scratch_database(admin_url, f"eie_bench_import_{number}") as url:
        await prepare_schema(url, [])  # the import makes the old days' partitions itself
        imported = await asyncio.to_thread(run_import, url, path)
    assert imported["stored"] == len(readings), imported
    rate = len(readings) / imported["wall_seconds"]
    return {
        "floor_readings_per_second": floor["readings_per_second"],
        "import": imported,
        "import_lines_per_second": round(rate, 1),
        "ratio_to_floor": round(rate / floor["readings_per_second"], 3),
    }


def parse_options(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--admin-url", help="A server to use (default: a throw-away embedded one)")
    parser.add_argument("--devices", type=int, default=10_000, help="meters (and as many vehicles)")
    parser.add_argument("--minutes", type=int, default=10, help="minutes of readings per device")
    parser.add_argument("--rounds", type=int, default=1)
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    options = parse_options(argv)
    end = datetime.now(UTC) - timedelta(days=365)
    readings = generate_timeline(options.devices, options.minutes, seed=1, end=end).readings()
    with ExitStack() as stack:
        scratch = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="eie-import-")))
        admin_url, where = admin_server(stack, scratch, options.admin_url)
        path = scratch / "readings.csv"
        write_csv(readings, path)
        print(f"{len(readings):,} lines, {path.stat().st_size:,} bytes; {where}", file=sys.stderr)
        rounds = [
            asyncio.run(_round(admin_url, readings, path, number))
            for number in range(options.rounds)
        ]
    best = max(rounds, key=lambda result: result["ratio_to_floor"])
    print(
        orjson.dumps(
            {"lines": len(readings), "rounds": rounds}, option=orjson.OPT_INDENT_2
        ).decode()
    )
    inside = len(readings) / best["import"]["seconds"]
    print(
        f"import: {best['import_lines_per_second']:,.0f} lines/s"
        f" ({best['import']['wall_seconds']} s for {len(readings):,} lines, process start and"
        f" final fold included; {inside:,.0f} lines/s by the command's own clock, which starts"
        f" once it is loaded); storage floor {best['floor_readings_per_second']:,.0f}"
        f" readings/s; import = {best['ratio_to_floor']:.2f}x floor"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
