"""Latency of one vehicle's series over days at 1h: `python -m bench.series`.

    .venv/bin/python -m bench.series --database-url postgresql://postgres@127.0.0.1:5432/postgres

A scratch database on that server gets `--devices` vehicles and as many meters (half linked by
assignment, half by same id) reporting once a minute for `--days` days, loaded with SQL in
arrival order (time, then device), then an engine process answers GET
/v1/analytics/vehicle/{id}/series?from&to&step=1h for random vehicles over the whole loaded
window, one request at a time; the performance endpoint of the same window is measured the
same way beside it, as the baseline. Each vehicle's rows land on a heap page of their own
whatever the fleet size beyond a hundred or so devices (a page holds about one minute of 100
devices), so a few hundred devices stand in for 10,000 as far as one vehicle's reads go,
without loading 200 M rows. Prints p50/p99 and writes nothing to the repository but a log.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import sys
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson

from bench import analytics
from bench.database import install_key, prepare_schema, scratch_database
from bench.http_load import Call, LoadResult, drive, get_calls
from bench.servers import HOST, engine_command, fit_connection_cap, free_port, running_server
from energy_ingest.db.partitions import day_of
from energy_ingest.wire import format_timestamp

_LOG = Path(__file__).parent / "results" / "series.log"


class _Check:
    """Every answer 200, with readings on both sides."""

    def __init__(self, series: bool) -> None:
        self.series = series

    def __call__(self, call: Call, status: int, body: bytes) -> str | None:
        if status != 200:
            return f"{call.label}: HTTP {status}: {body[:200]!r}"
        answer = orjson.loads(body)
        if self.series:
            points = [bucket["dataPoints"] for bucket in answer["buckets"]]
            vehicle = sum(p["vehicle"] for p in points)
            meter = sum(p["meter"] for p in points)
        else:
            vehicle, meter = answer["dataPoints"]["vehicle"], answer["dataPoints"]["meter"]
        return None if vehicle and meter else f"{call.label}: no data: {vehicle}, {meter}"


def _figures(result: LoadResult) -> dict[str, Any]:
    return {
        "requests": result.requests,
        "p50_ms": round(result.percentile(0.50) * 1000, 2),
        "p99_ms": round(result.percentile(0.99) * 1000, 2),
        "statuses": dict(result.statuses),
        "problems": result.problems[:3],
    }


async def measure(options: argparse.Namespace) -> dict[str, Any]:
    interval = timedelta(minutes=1)
    end = datetime.now(UTC).replace(second=0, microsecond=0)
    start = end - timedelta(days=options.days)
    fleet = analytics.make_fleet(options.devices, 0.5)
    days = {day_of(start + timedelta(days=offset)) for offset in range(options.days + 1)}
    days.add(day_of(datetime.now(UTC)))
    window = f"from={format_timestamp(start)}&to={format_timestamp(end)}"
    rng = random.Random(options.seed)
    picked = rng.choices(fleet.vehicles, k=options.warmup + options.requests)
    figures: dict[str, Any] = {"devices": options.devices, "days": options.days}
    _LOG.parent.mkdir(exist_ok=True)
    with _LOG.open("wb") as log:
        async with scratch_database(options.database_url, f"eie_bench_series_{os.getpid()}") as url:
            await prepare_schema(url, days)
            await install_key(url)
            await analytics.register_fleet(url, fleet, start - timedelta(days=1))
            load = await analytics.load_history(url, start, end, interval, len(fleet.vehicles))
            figures["history_rows"] = load.rows
            figures["load_seconds"] = round(load.load_seconds + load.vacuum_seconds, 1)
            port = free_port()
            command = engine_command(url, port, 1)
            async with running_server("engine, series", command, port, log, 120.0):
                paths = {
                    "series_1h": "/v1/analytics/vehicle/{vehicle}/series?step=1h&" + window,
                    "performance": "/v1/analytics/performance/{vehicle}?" + window,
                }
                for name, template in paths.items():
                    calls = get_calls([template.format(vehicle=vehicle) for vehicle in picked])
                    check = _Check(series=name != "performance")
                    await drive(
                        HOST, port, calls[: options.warmup], clients=1,
                        request_timeout=30.0, inspect=check,
                    )  # fmt: skip
                    result = await drive(
                        HOST, port, calls[options.warmup :], clients=1,
                        request_timeout=30.0, inspect=check,
                    )  # fmt: skip
                    figures[name] = _figures(result)
    return figures


def parse_options(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.series", description=__doc__)
    parser.add_argument("--database-url", required=True, help="A server to make a database on.")
    parser.add_argument("--devices", type=int, default=200, help="Vehicles, and as many meters.")
    parser.add_argument("--days", type=int, default=7, help="Days of history (at most 29).")
    parser.add_argument("--requests", type=int, default=500, help="Measured requests per path.")
    parser.add_argument("--warmup", type=int, default=100, help="Unmeasured requests first.")
    parser.add_argument("--seed", type=int, default=1)
    options = parser.parse_args(argv)
    if not 1 <= options.days <= 29:
        parser.error("--days must be 1–29 (the engine's back-fill window)")
    return options


def main(argv: Sequence[str] | None = None) -> int:
    options = parse_options(argv)
    note = fit_connection_cap()
    figures = asyncio.run(measure(options))
    if note:
        figures["note"] = note
    sys.stdout.write(orjson.dumps(figures, option=orjson.OPT_INDENT_2).decode() + "\n")
    failed = any(figures[name]["problems"] for name in ("series_1h", "performance"))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
