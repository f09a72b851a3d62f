"""The whole benchmark in one run (`python -m bench`, `make bench`).

One process tree on this machine: a throw-away durable PostgreSQL (or `--database-url`'s server,
where it creates and drops its own databases), the servers under test as subprocesses on
loopback, and the load generator. Every figure is reported with its ratio to a baseline measured
in the same run:

1. storage floor — binary COPY into history + live upsert, no HTTP, no validation;
2. engine, batch HTTP (1 and 2 workers), against the floor, and the engine's writer alone (in
   process, no HTTP), which splits the gap between the database's work and the server's;
3. engine, one reading per request from many clients, against
4. the naive baseline — one transaction per reading behind the same HTTP stack — and the HTTP
   server with nothing behind it, the ceiling of any server on this stack and machine;
5. analytics latency with 1 and 7 days of fleet history: one vehicle's performance, the whole
   fleet's (24 h, 7 days), one vehicle's series (7 days at 1h);
6. bytes per reading of history, as the engine wrote it and as bulk-loaded;
7. ingest with the rollups kept, against the same writer without them;
8. ingest of register readings (register only, and both fields) against interval readings,
   with bytes per reading of each.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import sys
import tempfile
import time
from collections.abc import Sequence
from contextlib import ExitStack
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import IO, Any
from urllib.parse import urlsplit

import orjson
import uvloop

from bench import analytics, registers, rollups
from bench.activity import CoreShares, DatabaseActivity
from bench.database import (
    admin_server,
    checkpoint,
    count_stored_rows,
    history_storage,
    install_key,
    prepare_schema,
    scratch_database,
    server_settings,
)
from bench.floor import write_floor
from bench.http_load import Call, LoadResult, drive, post_calls
from bench.machine import ForeignLoad, engine_version, machine_facts
from bench.profile import summarize_phases
from bench.readings import Reading, batch_bodies, generate_timeline, single_bodies
from bench.report import (
    condense_log,
    log_problems,
    redacted_command,
    render_markdown,
    scrub,
)
from bench.servers import (
    HOST,
    Profiler,
    ServerProcess,
    engine_command,
    fit_connection_cap,
    free_port,
    http_alone_command,
    naive_command,
    running_server,
    start_profiler,
    stop_profiler,
)
from bench.writer import write_through_writer
from energy_ingest.analytics.service import floor_hour
from energy_ingest.db.partitions import day_of
from energy_ingest.wire import format_timestamp

BENCH_DIR = Path(__file__).resolve().parent
PHASES = ("floor", "engine", "naive", "analytics", "rollups", "registers")
# The engine refuses readings older than its back-fill window (30 days); stay well inside it.
MAX_MINUTES = 29 * 24 * 60


# --- answers ------------------------------------------------------------------------------------


@dataclass(slots=True)
class BatchAnswers:
    """Sums of the batch answers' counters; anything but a full success is a problem."""

    totals: dict[str, int] = field(
        default_factory=lambda: {
            "total": 0,
            "successful": 0,
            "failed": 0,
            "stored": 0,
            "duplicates": 0,
        }
    )

    def inspect(self, call: Call, status: int, body: bytes) -> str | None:
        if status != 201:
            return f"{call.label}: HTTP {status}: {body[:300]!r}"
        summary = orjson.loads(body)
        for key in self.totals:
            self.totals[key] += int(summary[key])
        if summary["total"] != call.readings or summary["stored"] != call.readings:
            return f"{call.label}: {call.readings} sent, answer {body[:300]!r}"
        return None


def inspect_single(call: Call, status: int, body: bytes) -> str | None:
    """A new reading must be stored: 201 and `"status": "stored"`."""
    if status != 201 or b'"stored"' not in body:
        return f"{call.label}: HTTP {status}: {body[:300]!r}"
    return None


def _load_figures(result: LoadResult, **extra: Any) -> dict[str, Any]:
    return {
        "requests": result.requests,
        "readings": result.readings,
        "seconds": round(result.seconds, 3),
        "requests_per_second": round(result.requests_per_second, 1),
        "readings_per_second": round(result.readings_per_second, 1),
        "p50_ms": round(result.percentile(0.50) * 1000, 2),
        "p99_ms": round(result.percentile(0.99) * 1000, 2),
        "max_ms": round(max(result.latencies, default=0.0) * 1000, 2),
        "statuses": dict(result.statuses),
        "ran_out_of_readings": result.ran_out,
        "problem_count": result.problem_count,
        "problems": result.problems,
        **extra,
    }


# --- the run --------------------------------------------------------------------------------------


@dataclass(slots=True)
class Run:
    """What every phase shares: options, the server, the readings, the log, the problems."""

    options: argparse.Namespace
    admin_url: str
    log: IO[bytes]
    load: ForeignLoad
    prefix: str
    batch_readings: list[Reading]
    batch_calls: list[Call]
    single_calls: list[Call]
    problems: list[str] = field(default_factory=list)
    profiles: list[str] = field(default_factory=list)

    @property
    def days(self) -> set[date]:
        """UTC days of every generated reading (their partitions are made beforehand)."""
        return {day_of(reading.at) for reading in self.batch_readings} | {day_of(datetime.now(UTC))}

    def database_name(self, phase: str) -> str:
        """A scratch database name unique to this run."""
        return f"{self.prefix}_{phase}"

    def check_rows(self, phase: str, stored: dict[str, int], expected_history: int) -> None:
        """History holds every reading answered as stored; live one row per device."""
        history = stored["meter_readings"] + stored["vehicle_readings"]
        if history != expected_history:
            self.problems.append(
                f"{phase}: history holds {history:,} readings, {expected_history:,} were stored"
            )
        devices = self.options.devices
        for table in ("meter_live", "vehicle_live"):
            if stored[table] != devices:
                self.problems.append(
                    f"{phase}: {table} has {stored[table]:,} rows, not {devices:,}"
                )

    async def profile(self, server: ServerProcess, phase: str) -> Profiler | None:
        """Start py-spy on `server` when --profile-dir is given."""
        folder: Path | None = self.options.profile_dir
        if folder is None:
            return None
        py_spy = Path(sys.executable).parent / "py-spy"
        if not py_spy.exists():
            found = shutil.which("py-spy")
            if found is None:
                self.problems.append("--profile-dir given but py-spy is not installed")
                return None
            py_spy = Path(found)
        stem = f"{server.name.replace(' ', '-').replace(',', '')}-{phase}"
        taken = sum(1 for path in self.profiles if Path(path).stem.startswith(stem))
        output = folder / f"{stem}{f'-{taken + 1}' if taken else ''}.txt"
        self.profiles.append(str(output))
        return await start_profiler(py_spy, server, output, self.log)


@dataclass(slots=True)
class _Watch:
    """The cores and the database's backends during one load (bench/activity.py)."""

    cores: CoreShares
    database: DatabaseActivity | None

    async def stop(self) -> dict[str, Any]:
        figures: dict[str, Any] = {"cores": self.cores.stop()}
        if self.database is not None:
            figures["database"] = await self.database.stop()
        return figures


async def _watch(run: Run, server: ServerProcess, url: str) -> _Watch:
    """Start watching a load; the database only when profiling (its polls cost a little)."""
    cores = CoreShares(server.pid)
    database = None
    if run.options.profile_dir is not None:
        database = DatabaseActivity(url, urlsplit(url).path.lstrip("/"))
        await database.start()
    cores.start()
    return _Watch(cores, database)


async def _measure_server(
    run: Run, server: ServerProcess, url: str, batch_calls: list[Call]
) -> dict[str, Any]:
    """Batch phase, storage as written, then the single-reading phase, on one running server."""
    options = run.options
    await checkpoint(url)
    answers = BatchAnswers()
    profiler = await run.profile(server, "batch")
    watch = await _watch(run, server, url)
    try:
        batch = await drive(
            HOST, server.port, batch_calls, clients=options.batch_clients,
            request_timeout=options.request_timeout, inspect=answers.inspect,
        )  # fmt: skip
    finally:
        batch_machine = await watch.stop()
        if profiler:
            await stop_profiler(profiler)
    storage = await history_storage(url)
    await checkpoint(url)
    profiler = await run.profile(server, "single")
    watch = await _watch(run, server, url)
    try:
        single = await drive(
            HOST, server.port, run.single_calls, clients=options.single_clients,
            request_timeout=options.request_timeout, inspect=inspect_single,
            warmup=options.warmup, duration=options.duration,
        )  # fmt: skip
    finally:
        single_machine = await watch.stop()
        if profiler:
            await stop_profiler(profiler)
    for name, result in (("batch", batch), ("single", single)):
        if result.problem_count:
            run.problems.append(
                f"{server.name}, {name}: {result.problem_count} bad answers, first: "
                f"{result.problems[0]}"
            )
    if single.ran_out:
        run.problems.append(f"{server.name}: ran out of single readings; raise --single-minutes")
    return {
        "batch": _load_figures(batch, answers=answers.totals, machine=batch_machine),
        "single": _load_figures(single, machine=single_machine),
        "storage": storage,
        "expected_history": answers.totals["stored"] + single.statuses.get("201", 0),
    }


def _server_facts(server: ServerProcess) -> dict[str, Any]:
    return {
        "startup_seconds": round(server.startup_seconds, 2),
        "shutdown_seconds": round(server.shutdown_seconds or 0.0, 2),
        "exit_code": server.exit_code,
    }


async def run_floor(run: Run, number: int) -> dict[str, Any]:
    """(1) The batch readings straight into PostgreSQL."""
    options = run.options
    async with scratch_database(run.admin_url, run.database_name(f"floor_{number}")) as url:
        await prepare_schema(url, run.days)
        await checkpoint(url)
        floor = await write_floor(
            url,
            run.batch_readings,
            transaction_size=options.floor_transaction_size,
            connections=options.floor_connections,
        )
        stored = await count_stored_rows(url)
        run.check_rows("floor", stored, len(run.batch_readings))
        floor["stored_rows"] = stored
        floor["storage"] = await history_storage(url)
    return floor


async def run_writer(run: Run, number: int) -> dict[str, Any]:
    """(2) The engine's writer alone, in process: the batch readings without HTTP or JSON."""
    options = run.options
    async with scratch_database(run.admin_url, run.database_name(f"writer_{number}")) as url:
        await prepare_schema(url, run.days)
        await checkpoint(url)
        figures = await write_through_writer(
            url, run.batch_readings, batch_size=options.batch_size, clients=options.batch_clients
        )
        stored = await count_stored_rows(url)
        run.check_rows("writer", stored, len(run.batch_readings))
    return figures


async def run_engine(run: Run, workers: int, number: int) -> dict[str, Any]:
    """(2, 3) The engine as `energy-ingest serve --workers N` on a fresh database."""
    options = run.options
    name = f"engine, {workers} worker{'s' if workers > 1 else ''}"
    database = run.database_name(f"engine{workers}_{number}")
    async with scratch_database(run.admin_url, database) as url:
        await prepare_schema(url, run.days)
        await install_key(url)
        port = free_port()
        command = engine_command(url, port, workers)
        async with running_server(name, command, port, run.log, options.startup_timeout) as server:
            figures = await _measure_server(run, server, url, run.batch_calls)
        stored = await count_stored_rows(url)
    run.check_rows(name, stored, figures.pop("expected_history"))
    figures.update(workers=workers, stored_rows=stored, server=_server_facts(server))
    if server.exit_code != 0:
        run.problems.append(f"{name} exited with {server.exit_code} after SIGTERM")
    return figures


async def run_naive(run: Run, number: int) -> dict[str, Any]:
    """(4) The per-reading writer behind the engine's HTTP stack (bench/naive_server.py)."""
    options = run.options
    name = "naive server"
    calls: list[Call] = []
    for call in run.batch_calls:
        if sum(c.readings for c in calls) >= options.naive_batch_readings:
            break
        calls.append(call)
    async with scratch_database(run.admin_url, run.database_name(f"naive_{number}")) as url:
        await prepare_schema(url, run.days)
        await install_key(url)
        port = free_port()
        command = naive_command(url, port, options.naive_connections)
        async with running_server(name, command, port, run.log, options.startup_timeout) as server:
            figures = await _measure_server(run, server, url, calls)
        stored = await count_stored_rows(url)
    run.check_rows(name, stored, figures.pop("expected_history"))
    figures.update(connections=options.naive_connections, stored_rows=stored)
    figures["server"] = _server_facts(server)
    if server.exit_code != 0:
        run.problems.append(f"{name} exited with {server.exit_code} after SIGTERM")
    return figures


async def run_http_alone(run: Run) -> dict[str, Any]:
    """(4) The single-reading load against the HTTP server with nothing behind it."""
    options = run.options
    name = "HTTP server alone"
    port = free_port()
    command = http_alone_command(port)
    async with running_server(name, command, port, run.log, options.startup_timeout) as server:
        cores = CoreShares(server.pid)
        cores.start()
        single = await drive(
            HOST, server.port, run.single_calls, clients=options.single_clients,
            request_timeout=options.request_timeout, inspect=inspect_single,
            warmup=options.warmup, duration=options.duration,
        )  # fmt: skip
        machine = {"cores": cores.stop()}
    if single.problem_count:
        run.problems.append(
            f"{name}: {single.problem_count} bad answers, first: {single.problems[0]}"
        )
    return {"single": _load_figures(single, machine=machine)}


async def run_analytics(run: Run) -> tuple[dict[str, Any], dict[str, Any], dict[str, Any]]:
    """(5, 6) Analytics with 1 day, then N days of history; bytes per reading, then compacted."""
    options = run.options
    interval = timedelta(minutes=options.analytics_interval_minutes)
    fleet = analytics.make_fleet(options.analytics_devices, options.analytics_assigned_share)
    epoch = datetime(2000, 1, 1, tzinfo=UTC)
    end = epoch + (datetime.now(UTC) - epoch) // interval * interval
    start = end - timedelta(days=options.analytics_days)
    day_start = end - timedelta(days=1)
    # Partitions are made just before the history that fills them: the engine compacts closed
    # days at start-up, and a day it found empty would stay uncompacted (as in production, where
    # a day is full before it closes).
    first_days = {day_of(day_start), day_of(end), day_of(datetime.now(UTC))}
    older_days = {
        day_of(start + timedelta(days=offset)) for offset in range(options.analytics_days)
    }
    figures: dict[str, Any] = {
        "devices": options.analytics_devices,
        "assigned_vehicles": fleet.assigned,
        "same_id_vehicles": len(fleet.vehicles) - fleet.assigned,
        "interval_minutes": options.analytics_interval_minutes,
    }
    async with scratch_database(run.admin_url, run.database_name("analytics")) as url:
        await prepare_schema(url, first_days)
        await install_key(url)
        await analytics.register_fleet(url, fleet, start - timedelta(days=1))
        steps = [await analytics.load_history(url, day_start, end, interval, len(fleet.vehicles))]
        port = free_port()
        command = engine_command(url, port, 1)
        name = "engine, analytics"
        async with running_server(name, command, port, run.log, options.startup_timeout) as server:
            for key, step_days in (("one_day", 1), ("seven_days", options.analytics_days)):
                if step_days > 1:
                    await prepare_schema(url, older_days)
                    steps.append(
                        await analytics.load_history(
                            url, start, day_start, interval, len(fleet.vehicles)
                        )
                    )
                latency = await analytics.measure_latency(
                    server.port,
                    fleet.vehicles,
                    requests=options.analytics_requests,
                    warmup_requests=options.analytics_warmup_requests,
                    clients=options.analytics_clients,
                    request_timeout=options.request_timeout,
                    seed=options.seed + step_days,
                )
                latency["history_rows"] = sum(step.rows for step in steps)
                latency["history_days"] = step_days
                figures[key] = latency
                # The fleet at its default window (the last 24 whole hours), then, with the
                # whole history loaded, over 7 days: on whole hours as the dashboard asks, and
                # from/to to the minute (each vehicle's partial hours read from history).
                fleet_windows = [("fleet_24h", "")]
                if step_days > 1:
                    hour_end = floor_hour(datetime.now(UTC)) + timedelta(hours=1)
                    minute_end = datetime.now(UTC).replace(second=0, microsecond=0)
                    fleet_windows += [
                        ("fleet_7d", _window_query(hour_end - timedelta(days=7), hour_end)),
                        (
                            "fleet_7d_minutes",
                            _window_query(minute_end - timedelta(days=7), minute_end),
                        ),
                    ]
                for fleet_key, query in fleet_windows:
                    latency[fleet_key] = await analytics.measure_fleet(
                        server.port,
                        len(fleet.vehicles),
                        query=query,
                        requests=options.fleet_requests,
                        warmup_requests=options.fleet_warmup_requests,
                        request_timeout=options.request_timeout,
                    )
                if step_days > 1:
                    latency["series_7d_1h"] = await analytics.measure_series(
                        server.port,
                        fleet.vehicles,
                        start=end - timedelta(days=7),
                        end=end,
                        requests=options.series_requests,
                        warmup_requests=options.series_warmup_requests,
                        request_timeout=options.request_timeout,
                        seed=options.seed,
                    )
                for part in ("", "fleet_24h", "fleet_7d", "fleet_7d_minutes", "series_7d_1h"):
                    measured = latency.get(part) if part else latency
                    if measured and measured["problem_count"]:
                        run.problems.append(
                            f"analytics {part or 'performance'}, {step_days} day(s): "
                            f"{measured['problem_count']} bad answers, "
                            f"first: {measured['problems'][0]}"
                        )
        storage = await history_storage(url)
        # The engine's rule: yesterday may still get late readings, the day before is closed.
        closed_before = datetime.now(UTC).date() - timedelta(days=1)
        compacted, seconds = await analytics.compact_closed_days(url, closed_before)
        figures["compaction"] = {"partitions": len(compacted), "seconds": round(seconds, 1)}
        compacted_storage = await history_storage(
            url,
            partitions=compacted,
            before=datetime(closed_before.year, closed_before.month, closed_before.day, tzinfo=UTC),
        )
    figures["loads"] = [step.as_json() for step in steps]
    figures["server"] = _server_facts(server)
    if server.exit_code != 0:
        run.problems.append(f"{name} exited with {server.exit_code} after SIGTERM")
    return figures, storage, compacted_storage


def _window_query(start: datetime, end: datetime) -> str:
    return f"from={format_timestamp(start)}&to={format_timestamp(end)}"


async def run_rollups(run: Run) -> dict[str, Any]:
    """(7) Ingest with the rollups kept (writer's inbox + the folder beside it) against the
    same writer without them, in process (bench/rollups.py), on fresh databases."""
    options = run.options
    best = await rollups.run(
        run.admin_url,
        options.rollup_devices,
        options.rollup_minutes,
        options.rounds,
        name_prefix=run.database_name("rollups"),
    )
    return {
        "devices": options.rollup_devices,
        "minutes": options.rollup_minutes,
        "readings": 2 * options.rollup_devices * options.rollup_minutes,
        "fold_seconds": rollups.FOLD_SECONDS,
        **best,
    }


async def run_registers(run: Run) -> dict[str, Any]:
    """(8) Register readings against interval readings, in process (bench/registers.py)."""
    options = run.options
    best = await registers.run(
        run.admin_url,
        options.register_devices,
        options.register_minutes,
        options.rounds,
        name_prefix=run.database_name("registers"),
    )
    return {
        "devices": options.register_devices,
        "minutes": options.register_minutes,
        "readings": 2 * options.register_devices * options.register_minutes,
        "variants": best,
    }


def _best_of(rounds: list[dict[str, Any]], *phases: tuple[str, str]) -> dict[str, Any]:
    """Round 1's figures, each measured phase replaced by its best round's (least disturbed)."""
    best = dict(rounds[0])
    for phase, rate in phases:
        best[phase] = max((r[phase] for r in rounds), key=lambda figures: figures[rate])
    best["rounds"] = [
        {phase: r[phase][rate] for phase, rate in phases} for r in rounds
    ]  # every round's rate, for the record
    return best


async def run_all(run: Run) -> dict[str, Any]:
    """Every selected phase, in order, within --time-limit; ingest paths once per round."""
    options = run.options
    results: dict[str, Any] = {}
    floors: list[dict[str, Any]] = []
    writers: list[dict[str, Any]] = []
    engines: dict[int, list[dict[str, Any]]] = {}
    naives: list[dict[str, Any]] = []
    alones: list[dict[str, Any]] = []
    async with asyncio.timeout(options.time_limit):
        for number in range(1, options.rounds + 1):
            tag = f" (round {number} of {options.rounds})" if options.rounds > 1 else ""
            if "floor" in options.phases:
                _progress(run.load, "storage floor" + tag)
                floors.append(await run_floor(run, number))
            if "engine" in options.phases:
                _progress(run.load, "engine's writer in process" + tag)
                writers.append(await run_writer(run, number))
                for workers in options.engine_workers:
                    _progress(
                        run.load, f"engine, {workers} worker{'s' if workers > 1 else ''}{tag}"
                    )
                    engines.setdefault(workers, []).append(await run_engine(run, workers, number))
            if "naive" in options.phases:
                _progress(run.load, "naive baseline" + tag)
                naives.append(await run_naive(run, number))
                _progress(run.load, "HTTP server alone" + tag)
                alones.append(await run_http_alone(run))
        if floors:
            results["floor"] = max(floors, key=lambda floor: floor["readings_per_second"])
            results["floor"]["rounds"] = [floor["readings_per_second"] for floor in floors]
        if writers:
            results["writer"] = max(writers, key=lambda writer: writer["readings_per_second"])
            results["writer"]["rounds"] = [writer["readings_per_second"] for writer in writers]
        if engines:
            phases = (("batch", "readings_per_second"), ("single", "requests_per_second"))
            results["engine"] = [_best_of(rounds, *phases) for rounds in engines.values()]
            results["engine_storage"] = results["engine"][0]["storage"]
        if naives:
            phases = (("batch", "readings_per_second"), ("single", "requests_per_second"))
            results["naive"] = _best_of(naives, *phases)
            results["http_alone"] = _best_of(alones, ("single", "requests_per_second"))
        if "analytics" in options.phases:
            _progress(run.load, "analytics")
            (
                results["analytics"],
                results["bulk_storage"],
                results["compacted_storage"],
            ) = await run_analytics(run)
        if "rollups" in options.phases:
            _progress(run.load, "rollups")
            results["rollups"] = await run_rollups(run)
        if "registers" in options.phases:
            _progress(run.load, "registers")
            results["registers"] = await run_registers(run)
    return results


def _progress(load: ForeignLoad, phase: str) -> None:
    load.mark(phase)
    print(f"[bench] {datetime.now(UTC):%H:%M:%S} {phase} …", file=sys.stderr, flush=True)


def _notes(options: argparse.Namespace, results: dict[str, Any]) -> list[str]:
    devices, batch_minutes = options.devices, options.batch_minutes
    notes = [
        f"Readings: {devices:,} meters and {devices:,} vehicles, one reading a minute each; the "
        f"floor and every batch path write the same {2 * devices * batch_minutes:,} readings "
        f"({batch_minutes} minutes, arrival order: each minute every meter, then every vehicle; "
        f"seed {options.seed}). The naive batch path writes the first "
        f"{min(options.naive_batch_readings, 2 * devices * batch_minutes):,} of them.",
        f"One reading a request: {options.single_clients} clients, each waits for its answer "
        f"before sending the next reading (meter and vehicle alternating, newer minutes than "
        f"the batches); counted over {options.duration:g} s after {options.warmup:g} s of warm-up.",
        f"Each ingest path ran {options.rounds} time(s), each on a fresh database; the table "
        "shows each measured phase's best round (the least disturbed by other work on the "
        "machine), latest.json has every round's rate.",
        "The floor registers every device in the key dictionaries before its clock starts and "
        "builds its COPY records beforehand; the engine registers devices on first sight, "
        "inside its measured time.",
        "Each path gets a fresh database made by the engine's own migrations and partitions; "
        "a CHECKPOINT precedes each measured phase. Load generator: a keep-alive HTTP/1.1 "
        "client sending pre-encoded requests (bench/http_load.py).",
    ]
    analytics_figures = results.get("analytics")
    if analytics_figures:
        one = analytics_figures.get("one_day", {})
        notes.append(
            f"Analytics: {options.analytics_devices:,} vehicles and as many meters "
            f"({analytics_figures['assigned_vehicles']:,} vehicles linked by assignment, "
            f"{analytics_figures['same_id_vehicles']:,} by same id), history bulk-loaded with SQL "
            f"in arrival order at one reading every {options.analytics_interval_minutes} minutes "
            f"per device and stream ({60 / options.analytics_interval_minutes:g} an hour instead "
            f"of 60 at full density), then VACUUM (ANALYZE). Each answer covers the "
            f"last 24 h: median {one.get('median_points', {}).get('vehicle', 0):g} vehicle and "
            f"{one.get('median_points', {}).get('meter', 0):g} meter readings. "
            f"{options.analytics_requests:,} requests for random vehicles after "
            f"{options.analytics_warmup_requests:,} warm-up requests, "
            f"{options.analytics_clients} clients. Loads: "
            + "; ".join(
                f"{load['rows']:,} rows in {load['load_seconds']:g} s + VACUUM (ANALYZE) "
                f"{load['vacuum_analyze_seconds']:g} s"
                for load in analytics_figures["loads"]
            )
            + "."
        )
    if analytics_figures and analytics_figures.get("one_day", {}).get("fleet_24h"):
        notes.append(
            f"Fleet and series (5): the same fleet and history, its rollups built from the "
            f"loaded history as the writer's inbox and the folder keep them. The fleet answer: "
            f"{options.fleet_requests} requests after {options.fleet_warmup_requests} warm-up, "
            f"one at a time, each for the whole fleet (a page of 100 rows and the summary); "
            f"the series: {options.series_requests} requests for random vehicles after "
            f"{options.series_warmup_requests} warm-up, one at a time, 7 days to the minute at "
            f"1h (whole hours from the rollups; the partial first and last hour, and each "
            f"bucket's last SoC, from history). History at one reading every "
            f"{options.analytics_interval_minutes} minutes makes the rollups no smaller (one "
            f"row per device and hour or day either way) but the partial hours' history "
            f"{options.analytics_interval_minutes}× lighter than at full density; "
            f"`python -m bench.series` measures the series at full density."
        )
    rollup_figures = results.get("rollups")
    if rollup_figures:
        notes.append(
            f"Rollups (7): in process, no HTTP, the engine's batch path (one transaction per "
            f"batch of {2 * rollup_figures['devices']:,} readings, every device once a minute) "
            f"writes {rollup_figures['readings']:,} readings into a fresh database, with the "
            f"writer's rollup inbox and the engine's folder running beside it every "
            f"{rollup_figures['fold_seconds']:g} s on its own connection. The ratio is the rate "
            f"readings commit while the folder runs (the steady state of a loaded engine; it "
            f"holds because the folder folds faster than readings arrive, which the row shows); "
            f"the rate until the last fold has taken the whole inbox is beside it (a finite "
            f"run's tail, {rollup_figures['tail_seconds']:.1f} s here). The baseline is the "
            f"same writer with the history inserts as they were before rollups. Best of "
            f"{options.rounds} rounds each."
        )
    register_figures = results.get("registers")
    if register_figures:
        notes.append(
            f"Registers (8): the rollups phase's set-up (in process, the folder beside the "
            f"writer, a fresh database per variant and round) writes the same fleet "
            f"({register_figures['devices']:,} meters and as many vehicles, "
            f"{register_figures['minutes']} minutes) three ways: the interval energy only, the "
            f"cumulative register only, both. Rates until the last fold; a register reading in "
            f"order books its step from two index probes, the others through their chain."
        )
    notes.append(
        "Bytes per reading: pg_total_relation_size of every daily partition of a history table "
        "(heap, primary-key index, free-space and visibility maps) divided by its rows; the "
        "device dictionaries (one row per device) are left out."
    )
    return notes


# --- options and main -----------------------------------------------------------------------------

_OPTIONS: tuple[tuple[str, type, object, str], ...] = (
    ("--devices", int, 10_000, "Meters, and as many vehicles, of the ingest paths."),
    ("--batch-minutes", int, 20, "Minutes of readings written by the floor and batch paths."),
    ("--single-minutes", int, 10, "Minutes of readings available to the single-reading paths."),
    ("--seed", int, 1, "Seed of the generated values."),
    ("--batch-size", int, 1000, "Readings per batch request (the engine takes up to 10,000)."),
    ("--batch-clients", int, 4, "Concurrent clients of the batch paths."),
    ("--single-clients", int, 64, "Concurrent clients of the single-reading paths."),
    ("--warmup", float, 3.0, "Seconds of single-reading load before counting."),
    ("--duration", float, 15.0, "Seconds of single-reading load counted."),
    ("--engine-workers", str, "1,2", "Engine worker counts to measure, comma-separated."),
    ("--rounds", int, 2, "Times each ingest path runs; its best round is reported."),
    ("--floor-transaction-size", int, 10_000, "Readings per transaction of the storage floor."),
    (
        "--floor-connections",
        int,
        2,
        "Connections of the storage floor (the engine's writer has 2).",
    ),
    ("--naive-connections", int, 10, "Connections of the naive writer's pool."),
    ("--naive-batch-readings", int, 20_000, "Readings the naive batch path writes."),
    ("--analytics-devices", int, 10_000, "Vehicles, and as many meters, of the analytics fleet."),
    ("--analytics-days", int, 7, "Days of history for the second analytics measurement."),
    ("--analytics-interval-minutes", int, 10, "Minutes between bulk-loaded readings of a device."),
    ("--analytics-assigned-share", float, 0.5, "Share of vehicles linked by assignment."),
    ("--analytics-requests", int, 1000, "Measured analytics requests per history size."),
    ("--analytics-warmup-requests", int, 200, "Unmeasured analytics requests before those."),
    ("--analytics-clients", int, 4, "Concurrent analytics clients."),
    ("--fleet-requests", int, 30, "Measured fleet-performance requests per window."),
    ("--fleet-warmup-requests", int, 5, "Unmeasured fleet-performance requests before those."),
    ("--series-requests", int, 300, "Measured series requests (random vehicles, 7 days at 1h)."),
    ("--series-warmup-requests", int, 50, "Unmeasured series requests before those."),
    ("--rollup-devices", int, 5_000, "Meters, and as many vehicles, of the rollups phase."),
    ("--rollup-minutes", int, 60, "Minutes of readings the rollups phase writes."),
    ("--register-devices", int, 5_000, "Meters, and as many vehicles, of the registers phase."),
    ("--register-minutes", int, 20, "Minutes of readings the registers phase writes per variant."),
    ("--phases", str, ",".join(PHASES), "Phases to run, comma-separated: " + ", ".join(PHASES)),
    ("--results-dir", Path, BENCH_DIR / "results", "Folder of latest.md, latest.json and the log."),
    ("--profile-dir", Path, None, "Record py-spy profiles of each server phase into this folder."),
    ("--time-limit", float, 3600.0, "Give up (stopping everything) after this many seconds."),
    ("--startup-timeout", float, 60.0, "Seconds a server may take to become ready."),
    ("--request-timeout", float, 60.0, "Seconds one HTTP request may take."),
)


def parse_options(argv: Sequence[str] | None = None) -> argparse.Namespace:
    """Command-line options; each also read from an `EIE_BENCH_*` environment variable."""
    parser = argparse.ArgumentParser(
        prog="python -m bench",
        description=__doc__.split("\n\n", 1)[0] if __doc__ else None,
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument(
        "--database-url",
        default=os.environ.get("EIE_BENCH_DATABASE_URL"),
        help="A server to run on (its own databases are created and dropped there). "
        "Unset: a throw-away embedded PostgreSQL, fsync on. [EIE_BENCH_DATABASE_URL]",
    )
    for flag, kind, default, text in _OPTIONS:
        variable = "EIE_BENCH_" + flag.removeprefix("--").replace("-", "_").upper()
        parser.add_argument(
            flag, type=kind, default=os.environ.get(variable, default), help=f"{text} [{variable}]"
        )
    options = parser.parse_args(argv)
    options.phases = [phase.strip() for phase in options.phases.split(",") if phase.strip()]
    unknown = set(options.phases) - set(PHASES)
    if unknown:
        parser.error(f"unknown phases: {', '.join(sorted(unknown))}")
    try:
        options.engine_workers = [int(value) for value in options.engine_workers.split(",")]
    except ValueError:
        parser.error("--engine-workers takes comma-separated integers, e.g. 1,2")
    for name in (
        "devices", "batch_minutes", "single_minutes", "batch_clients", "single_clients", "rounds",
        "floor_transaction_size", "floor_connections", "naive_connections", "analytics_devices",
        "analytics_days", "analytics_interval_minutes", "analytics_requests", "analytics_clients",
        "fleet_requests", "series_requests", "rollup_devices", "rollup_minutes",
    ):  # fmt: skip
        if getattr(options, name) < 1:
            parser.error(f"--{name.replace('_', '-')} must be at least 1")
    if options.batch_minutes + options.single_minutes > MAX_MINUTES:
        parser.error(f"--batch-minutes + --single-minutes must be at most {MAX_MINUTES}")
    if options.analytics_days > 29:
        parser.error("--analytics-days must be at most 29 (the engine's back-fill window)")
    if not 1 <= options.batch_size <= 10_000:
        parser.error("--batch-size must be between 1 and 10,000")
    return options


async def _main(
    options: argparse.Namespace, admin_url: str, database: str, log: IO[bytes], load: ForeignLoad
) -> dict[str, Any]:
    started_at = datetime.now(UTC)
    clock = time.perf_counter()
    _progress(load, "generating readings")
    timeline = generate_timeline(
        options.devices, options.batch_minutes + options.single_minutes, options.seed, started_at
    )
    batch_readings = timeline.readings(0, options.batch_minutes)
    run = Run(
        options=options,
        admin_url=admin_url,
        log=log,
        load=load,
        prefix=f"eie_bench_{os.getpid()}",
        batch_readings=batch_readings,
        batch_calls=post_calls(batch_bodies(batch_readings, options.batch_size)),
        single_calls=post_calls(single_bodies(timeline.interleaved(options.batch_minutes))),
    )
    server = await server_settings(admin_url)
    results = await run_all(run)
    results["foreign_load"] = load.stop()
    # On a server of its own, the database's processes are not the bench's children.
    results["foreign_load"]["includes_database_server"] = bool(options.database_url)
    return {
        "command": redacted_command(),
        "started_at": started_at.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "run_seconds": round(time.perf_counter() - clock, 1),
        "machine": machine_facts(),
        "engine_version": engine_version(BENCH_DIR.parent),
        "postgres": server,
        "database": database,
        "engine_environment": {
            key: value
            for key, value in os.environ.items()
            if key.startswith("EIE_") and "DATABASE_URL" not in key
        },
        "options": {
            # Folders by name only: a report names no path of the machine it ran on.
            key: value.name if isinstance(value, Path) else value
            for key, value in vars(options).items()
            if key != "database_url"
        },
        **results,
        "notes": _notes(options, results),
        "problems": run.problems,
        "profiles": run.profiles,
    }


def main(argv: Sequence[str] | None = None) -> int:
    """Run the benchmark once; write and print the report. 0 when every check passed."""
    options = parse_options(argv)
    results_dir: Path = options.results_dir
    results_dir.mkdir(parents=True, exist_ok=True)
    if options.profile_dir is not None:
        options.profile_dir.mkdir(parents=True, exist_ok=True)
    with ExitStack() as stack:
        scratch = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="eie-bench-")))
        admin_url, database = admin_server(stack, scratch, options.database_url)
        connection_note = fit_connection_cap()
        load = ForeignLoad()
        postmaster = scratch / "data" / "postmaster.pid"
        if postmaster.exists():
            load.add_root(int(postmaster.read_text().split()[0]))
        load.start()
        log_path = scratch / "servers.log"
        log = stack.enter_context(log_path.open("wb"))
        try:
            with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
                report = runner.run(_main(options, admin_url, database, log, load))
        except TimeoutError:
            print(f"gave up after --time-limit {options.time_limit:g} s", file=sys.stderr)
            return 2
        finally:
            log.flush()
            folders = {
                str(scratch): "<scratch>",
                str(Path.cwd()): ".",
                tempfile.gettempdir(): "<tmp>",
            }
            text = scrub(log_path.read_text(encoding="utf-8", errors="replace"), folders)
            condensed, access_lines = condense_log(text)
            (results_dir / "latest-servers.log").write_text(condensed, encoding="utf-8")
    problems = log_problems(text)
    if problems:
        report["problems"].append(
            f"the servers' log has {len(problems)} error/warning lines (latest-servers.log), "
            f"first: {problems[0]}"
        )
    if connection_note:
        report["notes"].insert(0, connection_note)
    report["server_log_problems"] = problems[:50]
    report["server_access_log_lines"] = access_lines
    report["profiles"] = summarize_phases(
        [Path(path) for path in report["profiles"] if Path(path).exists()]
    )
    markdown = render_markdown(report)
    (results_dir / "latest.md").write_text(markdown, encoding="utf-8")
    (results_dir / "latest.json").write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    print(markdown)
    return 1 if report["problems"] else 0
