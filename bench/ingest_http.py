"""HTTP ingest benchmark: the engine's batch endpoints against the seed's reading-at-a-time path.

Run as `python -m bench.ingest_http`. One run starts a throw-away durable PostgreSQL (or uses
`--database-url`'s server, creating and dropping its own databases there), generates one
deterministic set of readings, then measures:

* the engine as a real subprocess (`energy-ingest serve`), fed through the batch endpoints by a
  few concurrent HTTP clients;
* the naive baseline: the seed's write path (one transaction per reading: history INSERT, live
  UPSERT) with asyncpg over a pool of connections, on the first `--naive-readings` readings.

It prints a Markdown table of readings/s and the ratio to the naive path, and writes it to
`bench/results/latest.md` and `latest.json` (engine log: `latest-engine.log`).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import random
import shlex
import signal
import socket
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Iterator, Sequence
from contextlib import AsyncExitStack, ExitStack, asynccontextmanager, suppress
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from itertools import zip_longest
from pathlib import Path
from typing import IO, Any, Literal
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import httpx
import orjson

from energy_ingest.db.embedded import embedded_postgres
from energy_ingest.db.migrations import migrate
from energy_ingest.db.partitions import PartitionManager, day_of
from energy_ingest.db.sql import parse_named_blocks, quote_identifier
from energy_ingest.http import format_timestamp

BENCH_DIR = Path(__file__).resolve().parent
QUERIES = parse_named_blocks((BENCH_DIR / "queries.sql").read_text(encoding="utf-8"))
METER_PATH = "/v1/ingest/meter/batch"
VEHICLE_PATH = "/v1/ingest/vehicle/batch"
# The engine refuses readings older than its back-fill window (30 days); stay well inside it.
MAX_MINUTES = 29 * 24 * 60
LOG_PROBLEM_MARKERS = ("Traceback", " ERROR ", " WARNING ", " CRITICAL ", "Exception")

Kind = Literal["meter", "vehicle"]


# --- the readings -------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Reading:
    """One generated reading; `values` is (kwh, voltage) for a meter, (soc, kwh, temp) else."""

    kind: Kind
    device_id: str
    at: datetime
    values: tuple[float, ...]

    def payload(self) -> dict[str, Any]:
        """The reading as the engine's wire format (camelCase, ISO 8601 timestamp with Z)."""
        stamp = format_timestamp(self.at)
        if self.kind == "meter":
            kwh, voltage = self.values
            return {
                "meterId": self.device_id,
                "kwhConsumedAc": kwh,
                "voltage": voltage,
                "timestamp": stamp,
            }
        soc, kwh, temp = self.values
        return {
            "vehicleId": self.device_id,
            "soc": soc,
            "kwhDeliveredDc": kwh,
            "batteryTemp": temp,
            "timestamp": stamp,
        }


def generate_readings(devices: int, minutes: int, seed: int, end: datetime) -> list[Reading]:
    """Minute by minute, every meter then every vehicle; values depend only on `seed`.

    The last minute is the whole minute before `end`, so every timestamp is in the past and
    inside the engine's back-fill window. A vehicle charges from the meter of the same number:
    DC is AC times an efficiency between 80 and 96%.
    """
    rng = random.Random(seed)
    last = end.replace(second=0, microsecond=0) - timedelta(minutes=1)
    first = last - timedelta(minutes=minutes - 1)
    voltage = [rng.uniform(225.0, 240.0) for _ in range(devices)]
    charge_kw = [rng.choice((3.7, 7.4, 11.0)) for _ in range(devices)]
    efficiency = [rng.uniform(0.80, 0.96) for _ in range(devices)]
    capacity_kwh = [rng.choice((40.0, 60.0, 77.0, 100.0)) for _ in range(devices)]
    soc = [rng.uniform(10.0, 60.0) for _ in range(devices)]
    temp = [rng.uniform(18.0, 32.0) for _ in range(devices)]
    readings: list[Reading] = []
    for minute in range(minutes):
        at = first + timedelta(minutes=minute)
        delivered: list[float] = []
        for device in range(devices):
            ac = charge_kw[device] / 60 * rng.uniform(0.95, 1.0)
            delivered.append(ac * efficiency[device])
            volts = voltage[device] + rng.uniform(-2.0, 2.0)
            readings.append(
                Reading("meter", f"meter-{device:05d}", at, (round(ac, 5), round(volts, 2)))
            )
        for device in range(devices):
            dc = delivered[device]
            soc[device] = min(100.0, soc[device] + dc / capacity_kwh[device] * 100)
            temp[device] = min(45.0, temp[device] + rng.uniform(-0.05, 0.1))
            readings.append(
                Reading(
                    "vehicle",
                    f"vehicle-{device:05d}",
                    at,
                    (round(soc[device], 3), round(dc, 5), round(temp[device], 2)),
                )
            )
    return readings


@dataclass(frozen=True, slots=True)
class Batch:
    """One request body of readings of one kind, encoded before the clock starts."""

    path: str
    body: bytes
    count: int


def make_batches(readings: Sequence[Reading], batch_size: int) -> list[Batch]:
    """Each kind in reading order, `batch_size` a request; meter and vehicle requests alternate."""
    per_kind: list[list[Batch]] = []
    for kind, path in (("meter", METER_PATH), ("vehicle", VEHICLE_PATH)):
        of_kind = [reading for reading in readings if reading.kind == kind]
        per_kind.append(
            [
                Batch(
                    path,
                    orjson.dumps([reading.payload() for reading in chunk]),
                    len(chunk),
                )
                for chunk in (
                    of_kind[start : start + batch_size]
                    for start in range(0, len(of_kind), batch_size)
                )
            ]
        )
    return [batch for pair in zip_longest(*per_kind) for batch in pair if batch is not None]


# --- databases ----------------------------------------------------------------------------------


def with_database(url: str, database: str) -> str:
    """The same server URL, pointing at another database."""
    parts = urlsplit(url)
    return urlunsplit(parts._replace(path="/" + database))


def redact(url: str) -> str:
    """The URL without its password, for output."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.replace(":" + parts.password + "@", ":***@", 1)
    return urlunsplit(parts._replace(netloc=netloc))


@asynccontextmanager
async def scratch_database(admin_url: str, name: str) -> AsyncIterator[str]:
    """A new, empty database on the server of `admin_url`; dropped on exit."""
    statement = QUERIES["create_database"].format(database=quote_identifier(name))
    drop = QUERIES["drop_database"].format(database=quote_identifier(name))
    admin = await asyncpg.connect(admin_url)
    try:
        await admin.execute(drop)
        await admin.execute(statement)
    finally:
        await admin.close()
    try:
        yield with_database(admin_url, name)
    finally:
        admin = await asyncpg.connect(admin_url)
        try:
            await admin.execute(drop)
        finally:
            await admin.close()


async def checkpoint(url: str) -> bool:
    """Flush dirty buffers before a measured path; False when the role may not checkpoint."""
    connection = await asyncpg.connect(url)
    try:
        await connection.execute(QUERIES["checkpoint"])
    except asyncpg.InsufficientPrivilegeError:
        return False
    finally:
        await connection.close()
    return True


async def server_settings(url: str) -> dict[str, str]:
    """Version and durability settings of the server the benchmark runs on."""
    connection = await asyncpg.connect(url)
    try:
        row = await connection.fetchrow(QUERIES["show_server_settings"])
    finally:
        await connection.close()
    assert row is not None
    return {key: str(value) for key, value in row.items()}


async def count_stored_rows(url: str) -> dict[str, int]:
    """Rows in the history and live tables of the database at `url`."""
    connection = await asyncpg.connect(url)
    try:
        row = await connection.fetchrow(QUERIES["count_stored_rows"])
    finally:
        await connection.close()
    assert row is not None
    return {key: int(value) for key, value in row.items()}


# --- one measured path --------------------------------------------------------------------------


@dataclass(slots=True)
class PathResult:
    """What one path did: how many readings in how long, and whether it did it right."""

    name: str
    readings: int
    seconds: float
    problems: list[str] = field(default_factory=list)
    details: dict[str, Any] = field(default_factory=dict)

    @property
    def rate(self) -> float:
        """Readings per second of wall clock."""
        return self.readings / self.seconds if self.seconds > 0 else 0.0


# --- the engine over HTTP -----------------------------------------------------------------------


def free_port() -> int:
    """A loopback TCP port nobody listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


@dataclass(slots=True)
class EngineProcess:
    """A running `energy-ingest serve` subprocess and where it listens."""

    process: asyncio.subprocess.Process
    base_url: str
    startup_seconds: float
    exit_code: int | None = None
    shutdown_seconds: float | None = None


async def _wait_until_ready(engine: EngineProcess, log_path: Path) -> None:
    async with httpx.AsyncClient(base_url=engine.base_url, timeout=2.0) as client:
        while True:
            if engine.process.returncode is not None:
                raise RuntimeError(
                    f"the engine exited with {engine.process.returncode} before it was ready;"
                    f" see {log_path}"
                )
            with suppress(httpx.TransportError):
                answer = await client.get("/readyz")
                if answer.status_code == 200:
                    return
            await asyncio.sleep(0.1)


@asynccontextmanager
async def running_engine(
    database_url: str, log: IO[bytes], log_path: Path, startup_timeout: float
) -> AsyncIterator[EngineProcess]:
    """Start the engine as a subprocess on a free loopback port; SIGTERM it on exit."""
    executable = Path(sys.executable).parent / "energy-ingest"
    port = free_port()
    started = time.perf_counter()
    process = await asyncio.create_subprocess_exec(
        str(executable),
        "serve",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--database-url",
        database_url,
        stdin=asyncio.subprocess.DEVNULL,
        stdout=log,
        stderr=log,
    )
    engine = EngineProcess(process, f"http://127.0.0.1:{port}", 0.0)
    try:
        try:
            async with asyncio.timeout(startup_timeout):
                await _wait_until_ready(engine, log_path)
        except TimeoutError as exc:
            message = f"the engine was not ready within {startup_timeout:g} s; see {log_path}"
            raise RuntimeError(message) from exc
        engine.startup_seconds = time.perf_counter() - started
        yield engine
    finally:
        if process.returncode is None:
            stopping = time.perf_counter()
            process.send_signal(signal.SIGTERM)
            try:
                await asyncio.wait_for(process.wait(), timeout=30.0)
            except TimeoutError:
                process.kill()
                await process.wait()
            engine.shutdown_seconds = time.perf_counter() - stopping
        engine.exit_code = process.returncode


def _percentile(values: Sequence[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))] if ordered else 0.0


async def post_batches(
    base_url: str,
    batches: Sequence[Batch],
    batch_size: int,
    clients: int,
    request_timeout: float,
) -> PathResult:
    """Post every batch with `clients` concurrent clients; time first request to last answer."""
    pending: Iterator[Batch] = iter(batches)
    latencies: list[float] = []
    statuses: dict[str, int] = {}
    totals = {"total": 0, "successful": 0, "failed": 0, "stored": 0, "duplicates": 0}
    problems: list[str] = []

    async def client_loop(client: httpx.AsyncClient) -> None:
        for batch in pending:
            sent = time.perf_counter()
            answer = await client.post(
                batch.path, content=batch.body, headers={"content-type": "application/json"}
            )
            latencies.append(time.perf_counter() - sent)
            statuses[str(answer.status_code)] = statuses.get(str(answer.status_code), 0) + 1
            if answer.status_code != 201:
                problems.append(f"{batch.path}: HTTP {answer.status_code}: {answer.text[:300]}")
                continue
            summary = answer.json()
            for key in totals:
                totals[key] += int(summary[key])
            if summary["total"] != batch.count or summary["successful"] != summary["total"]:
                problems.append(
                    f"{batch.path}: {batch.count} sent, answer {json.dumps(summary)[:300]}"
                )

    limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)
    timeout = httpx.Timeout(request_timeout)
    async with httpx.AsyncClient(base_url=base_url, limits=limits, timeout=timeout) as client:
        started = time.perf_counter()
        await asyncio.gather(*(client_loop(client) for _ in range(clients)))
        seconds = time.perf_counter() - started
    sent = sum(batch.count for batch in batches)
    return PathResult(
        name=f"engine, batch HTTP ({batch_size:,}/request, {clients} clients)",
        readings=sent,
        seconds=seconds,
        problems=problems,
        details={
            "requests": len(batches),
            "statuses": statuses,
            "answers": totals,
            "latency_seconds": {
                "p50": round(_percentile(latencies, 0.50), 4),
                "p95": round(_percentile(latencies, 0.95), 4),
                "max": round(max(latencies, default=0.0), 4),
            },
        },
    )


async def run_engine_path(
    database_url: str,
    readings: Sequence[Reading],
    options: argparse.Namespace,
    log: IO[bytes],
    log_path: Path,
) -> PathResult:
    """Start the engine on `database_url`, post every reading, stop it, check what it stored."""
    batches = make_batches(readings, options.batch_size)
    async with running_engine(database_url, log, log_path, options.startup_timeout) as engine:
        await checkpoint(database_url)
        result = await post_batches(
            engine.base_url, batches, options.batch_size, options.clients, options.request_timeout
        )
    result.details["engine"] = {
        "startup_seconds": round(engine.startup_seconds, 2),
        "shutdown_seconds": round(engine.shutdown_seconds or 0.0, 2),
        "exit_code": engine.exit_code,
    }
    if engine.exit_code != 0:
        result.problems.append(f"the engine exited with {engine.exit_code} after SIGTERM")
    result.details["stored_rows"] = stored = await count_stored_rows(database_url)
    result.problems.extend(_row_problems(stored, readings))
    return result


# --- the naive baseline ---------------------------------------------------------------------------


async def run_naive_path(
    database_url: str, readings: Sequence[Reading], connections: int
) -> PathResult:
    """The seed's way: one transaction per reading (history INSERT + live UPSERT), N at a time."""
    connection = await asyncpg.connect(database_url)
    try:
        await migrate(connection)
    finally:
        await connection.close()
    pool = await asyncpg.create_pool(database_url, min_size=connections, max_size=connections)
    try:
        await PartitionManager(pool).ensure({day_of(reading.at) for reading in readings})
        await checkpoint(database_url)
        pending: Iterator[Reading] = iter(readings)
        failures: list[str] = []

        async def worker() -> None:
            # Like Promise.allSettled over a connection pool: every reading is attempted, a
            # failure is counted and does not stop the others.
            async with pool.acquire() as connection:
                for reading in pending:
                    insert, upsert = (
                        ("naive_insert_meter_reading", "naive_upsert_meter_live")
                        if reading.kind == "meter"
                        else ("naive_insert_vehicle_reading", "naive_upsert_vehicle_live")
                    )
                    arguments = (reading.at, *reading.values, reading.device_id)
                    try:
                        async with connection.transaction():
                            await connection.execute(QUERIES[insert], *arguments)
                            await connection.execute(QUERIES[upsert], *arguments)
                    except asyncpg.PostgresError as exc:
                        failures.append(f"{reading.device_id} {reading.at}: {exc!r}")

        started = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(connections)))
        seconds = time.perf_counter() - started
    finally:
        await pool.close()
    result = PathResult(
        name=f"naive, one transaction per reading ({connections} connections)",
        readings=len(readings),
        seconds=seconds,
        problems=[f"{len(failures)} readings failed, first: {failures[0]}"] if failures else [],
    )
    result.details["stored_rows"] = stored = await count_stored_rows(database_url)
    result.problems.extend(_row_problems(stored, readings))
    return result


def _row_problems(stored: dict[str, int], readings: Sequence[Reading]) -> list[str]:
    expected = {
        "meter_history": sum(1 for r in readings if r.kind == "meter"),
        "vehicle_history": sum(1 for r in readings if r.kind == "vehicle"),
        "meter_live": len({r.device_id for r in readings if r.kind == "meter"}),
        "vehicle_live": len({r.device_id for r in readings if r.kind == "vehicle"}),
    }
    return [
        f"{table}: {stored[table]} rows, expected {count}"
        for table, count in expected.items()
        if stored[table] != count
    ]


# --- the report ---------------------------------------------------------------------------------


def machine_facts() -> dict[str, Any]:
    """Cores, CPU model, memory and OS of this machine."""
    cpu_model = platform.processor() or "unknown"
    with suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu_model = line.split(":", 1)[1].strip()
                break
    memory_gib = None
    with suppress(OSError, ValueError, IndexError):
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                memory_gib = round(int(line.split()[1]) / 1024 / 1024, 1)
                break
    return {
        "cores": os.cpu_count(),
        "usable_cores": len(os.sched_getaffinity(0)),
        "cpu": cpu_model,
        "memory_gib": memory_gib,
        "os": platform.platform(),
        "python": platform.python_version(),
    }


def log_problems(log_path: Path) -> list[str]:
    """Lines of the engine log that speak of errors, warnings or exceptions."""
    text = log_path.read_text(encoding="utf-8", errors="replace")
    return [line for line in text.splitlines() if any(m in line for m in LOG_PROBLEM_MARKERS)]


def render_markdown(report: dict[str, Any]) -> str:
    """The report as a short Markdown page: setup, the table, the checks."""
    machine, server = report["machine"], report["postgres"]
    rows = report["results"]
    naive = next(row for row in rows if row["path"].startswith("naive"))
    lines = [
        "# HTTP ingest benchmark",
        "",
        f"`{report['command']}` ({report['started_at']})",
        "",
        f"Machine: {machine['usable_cores']} cores ({machine['cpu']}), "
        f"{machine['memory_gib']} GiB RAM, {machine['os']}, Python {machine['python']}. "
        "Engine, PostgreSQL and the load generator share these cores.",
        "",
        f"PostgreSQL {server['server_version']} ({report['database']}): fsync={server['fsync']}, "
        f"synchronous_commit={server['synchronous_commit']}, "
        f"shared_buffers={server['shared_buffers']}.",
        "",
        "| path | readings | seconds | readings/s | × naive |",
        "|---|---:|---:|---:|---:|",
    ]
    for row in rows:
        lines.append(
            f"| {row['path']} | {row['readings']:,} | {row['seconds']:.2f} "
            f"| {row['readings_per_second']:,.0f} | {row['ratio_to_naive']:.1f}× |"
        )
    engine = next(row for row in rows if row["path"].startswith("engine"))
    details = engine["details"]
    answers, latency = details["answers"], details["latency_seconds"]
    lines += [
        "",
        f"Readings: {report['options']['devices']:,} meters + {report['options']['devices']:,} "
        f"vehicles × {report['options']['minutes']} minutes = {report['readings']:,} "
        f"(seed {report['options']['seed']}). The naive path ran on the first "
        f"{naive['readings']:,} of them and the ratio compares rates (readings/s).",
        "",
        f"Engine: {details['requests']} requests, statuses {details['statuses']}; "
        f"{answers['stored']:,} stored, {answers['duplicates']:,} duplicates, "
        f"{answers['failed']:,} failed; request latency p50 {latency['p50']:.3f} s, "
        f"p95 {latency['p95']:.3f} s, max {latency['max']:.3f} s; "
        f"ready after {details['engine']['startup_seconds']} s, exit code "
        f"{details['engine']['exit_code']} {details['engine']['shutdown_seconds']} s after "
        f"SIGTERM; engine log: {len(report['engine_log_problems'])} error/warning lines.",
        "",
        "Checks: " + ("all passed." if not report["problems"] else "FAILED:"),
    ]
    lines += [f"- {problem}" for problem in report["problems"]]
    return "\n".join(lines) + "\n"


# --- the run ------------------------------------------------------------------------------------


async def run(
    admin_url: str,
    database: str,
    options: argparse.Namespace,
    log: IO[bytes],
    log_path: Path,
) -> dict[str, Any]:
    """Generate the readings, measure both paths, return the report."""
    started_at = datetime.now(UTC)
    readings = generate_readings(options.devices, options.minutes, options.seed, started_at)
    naive_readings = readings[: options.naive_readings]
    prefix = f"eie_bench_{os.getpid()}"
    async with asyncio.timeout(options.time_limit), AsyncExitStack() as stack:
        server = await server_settings(admin_url)
        engine_url = await stack.enter_async_context(
            scratch_database(admin_url, f"{prefix}_engine")
        )
        naive_url = await stack.enter_async_context(scratch_database(admin_url, f"{prefix}_naive"))
        engine = await run_engine_path(engine_url, readings, options, log, log_path)
        naive = await run_naive_path(naive_url, naive_readings, options.naive_connections)
    log.flush()
    engine_log = log_problems(log_path)
    problems = [f"engine: {p}" for p in engine.problems] + [f"naive: {p}" for p in naive.problems]
    if engine_log:
        problems.append(f"engine log has {len(engine_log)} error/warning lines, see {log_path}")
    return {
        "command": shlex.join(_redacted_command()),
        "started_at": started_at.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "machine": machine_facts(),
        "postgres": server,
        "database": database,
        "engine_environment": {
            key: value
            for key, value in os.environ.items()
            if key.startswith("EIE_") and "DATABASE_URL" not in key
        },
        "options": {
            # Folders are reported by name only: a report names no path of the machine it ran on.
            key: value.name if isinstance(value, Path) else value
            for key, value in vars(options).items()
            if key != "database_url"
        },
        "readings": len(readings),
        "results": [
            {
                "path": result.name,
                "readings": result.readings,
                "seconds": round(result.seconds, 3),
                "readings_per_second": round(result.rate, 1),
                "ratio_to_naive": round(result.rate / naive.rate, 2) if naive.rate else 0.0,
                "problems": result.problems,
                "details": result.details,
            }
            for result in (engine, naive)
        ],
        "engine_log_problems": engine_log[:50],
        "problems": problems,
    }


def _redacted_command() -> list[str]:
    return [redact(part) if "://" in part else part for part in sys.orig_argv]


_OPTIONS: tuple[tuple[str, type, object, str], ...] = (
    ("--devices", int, 2000, "Meters, and as many vehicles."),
    ("--minutes", int, 30, "Readings per device, one a minute."),
    ("--seed", int, 1, "Seed of the generated values."),
    ("--batch-size", int, 1000, "Readings per HTTP request (the engine takes up to 10,000)."),
    ("--clients", int, 4, "Concurrent HTTP clients."),
    ("--naive-readings", int, 20_000, "How many readings (the first ones) the naive path writes."),
    ("--naive-connections", int, 10, "Connections of the naive path's pool."),
    ("--results-dir", Path, BENCH_DIR / "results", "Folder of latest.md/.json/-engine.log."),
    ("--time-limit", float, 600.0, "Give up after this many seconds."),
    ("--startup-timeout", float, 60.0, "Seconds the engine may take to become ready."),
    ("--request-timeout", float, 120.0, "Seconds one HTTP request may take."),
)


def parse_options(argv: Sequence[str] | None = None) -> argparse.Namespace:
    """Command-line options; each also read from an `EIE_BENCH_*` environment variable."""
    parser = argparse.ArgumentParser(
        prog="python -m bench.ingest_http",
        description="Engine batch HTTP ingest vs the seed's one-transaction-per-reading path.",
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
        # argparse converts a string default (from the environment) with `type` too.
        parser.add_argument(
            flag, type=kind, default=os.environ.get(variable, default), help=f"{text} [{variable}]"
        )
    options = parser.parse_args(argv)
    for name in ("devices", "minutes", "batch_size", "clients", "naive_connections"):
        if getattr(options, name) < 1:
            parser.error(f"--{name.replace('_', '-')} must be at least 1")
    if options.minutes > MAX_MINUTES:
        parser.error(f"--minutes must be at most {MAX_MINUTES} (the engine's back-fill window)")
    if not 1 <= options.batch_size <= 10_000:
        parser.error("--batch-size must be between 1 and 10,000")
    total = 2 * options.devices * options.minutes
    options.naive_readings = max(1, min(options.naive_readings, total))
    return options


def main(argv: Sequence[str] | None = None) -> int:
    """Run the benchmark once; print the table; 0 when every check passed, 1 otherwise."""
    options = parse_options(argv)
    results_dir: Path = options.results_dir
    results_dir.mkdir(parents=True, exist_ok=True)
    log_path = results_dir / "latest-engine.log"
    with ExitStack() as stack:
        if options.database_url:
            admin_url: str = options.database_url
            database = f"server at {redact(admin_url)}"
        else:
            scratch = stack.enter_context(tempfile.TemporaryDirectory(prefix="eie-bench-"))
            print("starting a throw-away embedded PostgreSQL (fsync on) …", file=sys.stderr)
            engine_url = stack.enter_context(
                embedded_postgres(Path(scratch) / "data", delete_on_exit=True, durable=True)
            )
            admin_url = with_database(engine_url, "postgres")
            database = "embedded, throw-away"
        log = stack.enter_context(log_path.open("wb"))
        try:
            report = asyncio.run(run(admin_url, database, options, log, log_path))
        except TimeoutError:
            print(f"gave up after --time-limit {options.time_limit:g} s", file=sys.stderr)
            return 2
    markdown = render_markdown(report)
    (results_dir / "latest.md").write_text(markdown, encoding="utf-8")
    (results_dir / "latest.json").write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    print(markdown)
    return 1 if report["problems"] else 0


if __name__ == "__main__":
    sys.exit(main())
