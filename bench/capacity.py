"""A capacity model: what 100,000 and 1,000,000 devices need, from figures the bench measured.

    python -m bench.capacity --measure [--database-url …]   # about a minute; writes
                                                             # bench/results/capacity.json
    python -m bench.capacity                                 # the model, printed with its figures

`--measure` runs the engine (one worker) on a throw-away embedded PostgreSQL (fsync on), drives
HTTP batches, HTTP single readings and MQTT single readings through it, and samples the CPU
time of the engine's processes, of the PostgreSQL server's processes and of Mosquitto's from
/proc while each path runs: CPU-seconds per reading, whatever else shares the machine (the load
generators' CPU is not counted). It also measures bytes per rollup row (hourly and day rows)
once the folder has folded what the paths wrote.

The model reads that file and `bench/results/latest.json` (bytes per reading of history, as the
engine writes an open day and after a closed day's compaction) and computes, for each fleet
size and ingest path, the engine cores and machines, PostgreSQL cores and nodes, broker cores,
and disk per day and per year. The assumptions it adds (headroom, how fast a minute's burst
must be written, cores a machine, retention) are options, printed beside the result; every
rate comes from the two files, none is written here.
"""

from __future__ import annotations

import argparse
import asyncio
import math
import os
import shutil
import sys
import tempfile
import threading
import time
from collections.abc import Sequence
from contextlib import ExitStack
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import asyncpg
import orjson

from bench.database import admin_server, install_key, prepare_schema, scratch_database
from bench.http_load import drive, post_calls
from bench.machine import engine_version, machine_facts
from bench.readings import batch_bodies, generate_timeline, single_bodies
from bench.servers import HOST, engine_command, free_port, running_server
from bench.sql import bench_sql

REPOSITORY = Path(__file__).resolve().parents[1]
RESULTS = REPOSITORY / "bench" / "results"
PATHS = ("http batch", "http single", "mqtt single")
_TICKS_PER_SECOND = os.sysconf("SC_CLK_TCK")
_PROC = Path("/proc")


# --- measuring -------------------------------------------------------------------------------


def _stat(pid: int) -> tuple[int, int] | None:
    """(parent pid, CPU ticks so far) of a process, None when it is gone."""
    try:
        text = (_PROC / str(pid) / "stat").read_text()
    except OSError:
        return None
    fields = text[text.rindex(")") + 2 :].split()
    return int(fields[1]), int(fields[11]) + int(fields[12])


def _command(pid: int) -> str:
    try:
        return (_PROC / str(pid) / "cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return ""


class CpuMeter:
    """Samples, in a thread, the CPU time of the engine's processes (this process's descendants
    running `energy-ingest serve`), Mosquitto's (descendants named mosquitto) and PostgreSQL's
    (the server process `postmaster` and its children). A process that ends keeps the CPU it
    had at its last sample (every `interval` seconds), so short-lived ones count nearly whole."""

    def __init__(self, postmaster: int, interval: float = 0.1) -> None:
        self.postmaster = postmaster
        self.interval = interval
        self._last: dict[int, tuple[str, int]] = {}  # pid → (group, ticks at last sample)
        self._base: dict[int, int] = {}  # ticks of each process when first seen by start()
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._loop, name="cpu-meter", daemon=True)

    def _group(self, pid: int, parents: dict[int, int]) -> str | None:
        chain, seen = pid, set()
        while chain > 1 and chain not in seen:
            seen.add(chain)
            if chain == self.postmaster:
                return "postgres"
            if chain == os.getpid():
                command = _command(pid)
                if "energy-ingest" in command and " serve" in command:
                    return "engine"
                if "mosquitto" in command.split(" ", 1)[0]:
                    return "broker"
                return None
            chain = parents.get(chain, 0)
        return None

    def _sample(self, *, baseline: bool = False) -> None:
        found: dict[int, tuple[int, int]] = {}
        for entry in _PROC.iterdir():
            if entry.name.isdigit() and (stat := _stat(int(entry.name))) is not None:
                found[int(entry.name)] = stat
        parents = {pid: parent for pid, (parent, _) in found.items()}
        with self._lock:
            for pid, (_, ticks) in found.items():
                known = self._last.get(pid)
                group = known[0] if known else self._group(pid, parents)
                if group is None:
                    continue
                if known is None and baseline:
                    self._base[pid] = ticks
                self._last[pid] = (group, ticks)

    def _loop(self) -> None:
        while not self._stop.wait(self.interval):
            self._sample()

    def start(self) -> None:
        self._sample(baseline=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()

    def totals(self) -> dict[str, float]:
        """CPU-seconds of each group since start(), as of now."""
        self._sample()
        with self._lock:
            totals = {"engine": 0.0, "postgres": 0.0, "broker": 0.0}
            for pid, (group, ticks) in self._last.items():
                totals[group] += (ticks - self._base.get(pid, 0)) / _TICKS_PER_SECOND
            return totals


def _spent(before: dict[str, float], after: dict[str, float], readings: int) -> dict[str, Any]:
    return {
        "readings": readings,
        **{
            f"{group}_cpu_seconds_per_reading": (after[group] - before[group]) / readings
            for group in ("engine", "postgres", "broker")
        },
    }


async def _postmaster(url: str) -> int:
    connection = await asyncpg.connect(url)
    try:
        stat = _stat(await connection.fetchval(bench_sql("backend_pid")))  # while it lives
    finally:
        await connection.close()
    assert stat is not None, "the database server must run on this machine"
    return stat[0]


async def _rollup_storage(url: str) -> dict[str, Any]:
    """Bytes per row of the hourly and day rollups, once the folder has taken the inbox."""
    connection = await asyncpg.connect(url)
    try:
        deadline = time.monotonic() + 60
        while True:
            counts = await connection.fetchrow(bench_sql("count_rollup_rows"))
            assert counts is not None
            if not counts["inbox"]:
                break
            assert time.monotonic() < deadline, "the rollup inbox was never folded"
            await asyncio.sleep(0.2)
        await connection.execute("ANALYZE")
        sizes = {
            row["rollup_table"]: int(row["total_bytes"])
            for row in await connection.fetch(
                bench_sql("measure_rollup_storage"),
                ["meter_rollups", "vehicle_rollups", "meter_rollup_days", "vehicle_rollup_days"],
            )
        }
    finally:
        await connection.close()
    hourly_rows = counts["meter_rollups"] + counts["vehicle_rollups"]
    day_rows = counts["meter_rollup_days"] + counts["vehicle_rollup_days"]
    return {
        "hourly_rows": hourly_rows,
        "hourly_bytes": sizes["meter_rollups"] + sizes["vehicle_rollups"],
        "bytes_per_hourly_row": (sizes["meter_rollups"] + sizes["vehicle_rollups"]) / hourly_rows,
        "day_rows": day_rows,
        "day_bytes": sizes["meter_rollup_days"] + sizes["vehicle_rollup_days"],
        "bytes_per_day_row": (sizes["meter_rollup_days"] + sizes["vehicle_rollup_days"]) / day_rows,
    }


async def measure(options: argparse.Namespace) -> dict[str, Any]:
    """CPU-seconds per reading of each path; bytes per rollup row."""
    from bench.mqtt import mqtt_messages, run_mqtt_phase

    with ExitStack() as stack:
        scratch = Path(tempfile.mkdtemp(prefix="eie-bench-capacity-"))
        stack.callback(shutil.rmtree, scratch, True)
        admin_url, where = admin_server(stack, scratch, options.database_url)
        log = stack.enter_context((scratch / "servers.log").open("wb"))
        minutes = options.minutes
        timeline = generate_timeline(options.devices, 3 * minutes, options.seed, datetime.now(UTC))
        days = {reading.at.date() for minute in timeline.minutes for reading in minute[:1]}
        meter = CpuMeter(await _postmaster(admin_url))
        meter.start()
        stack.callback(meter.stop)
        results: dict[str, Any] = {
            "command": " ".join(["python -m bench.capacity", *sys.argv[1:]]),
            "measured_at": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
            "database": where,
            "engine_version": engine_version(REPOSITORY),
            "machine": machine_facts(),
            "devices": options.devices,
            "engine_workers": 1,
        }
        database = f"eie_bench_capacity_{os.getpid()}"
        async with scratch_database(admin_url, database) as url:
            await prepare_schema(url, days)
            await install_key(url)
            port = free_port()
            environment = {**os.environ, "EIE_ACCESS_LOG": "false", "EIE_ROLLUP_FOLD_SECONDS": "1"}
            command = engine_command(url, port, 1)
            async with running_server("engine", command, port, log, 120, environment):
                print("HTTP batches …", file=sys.stderr)
                before = meter.totals()
                batch = await drive(
                    HOST, port, post_calls(batch_bodies(timeline.readings(0, minutes), 1_000)),
                    clients=4, request_timeout=60,
                    inspect=lambda call, status, body: None if status < 300 else f"{status}",
                )  # fmt: skip
                results["http batch"] = _spent(before, meter.totals(), batch.readings)
                results["http batch"]["readings_per_second"] = round(batch.readings_per_second)
                print("HTTP single readings …", file=sys.stderr)
                before = meter.totals()
                single = await drive(
                    HOST, port,
                    post_calls(single_bodies(timeline.interleaved(minutes, 2 * minutes))),
                    clients=64, request_timeout=60,
                    inspect=lambda call, status, body: None if status < 300 else f"{status}",
                )  # fmt: skip
                results["http single"] = _spent(before, meter.totals(), single.readings)
                results["http single"]["readings_per_second"] = round(single.readings_per_second)
                problems = batch.problem_count + single.problem_count
                assert problems == 0, batch.problems + single.problems
                results["rollup_storage"] = await _rollup_storage(url)
        # An MQTT phase starts its own database, broker and engine: a first run with a handful
        # of readings measures what that costs, and is taken off the measured run.
        readings = timeline.readings(2 * minutes, 3 * minutes)
        spent: list[dict[str, float]] = []
        for name, sent in (("capacity mqtt start-up", readings[:10]), ("capacity mqtt", readings)):
            print(f"{name} …", file=sys.stderr)
            before = meter.totals()
            mqtt = await run_mqtt_phase(
                name, admin_url, scratch, log, mqtt_messages(sent, 1), len(sent),
                publishers=2, receive_maximum=10_000, limits=True, days=days,
            )  # fmt: skip
            assert mqtt["not_stored"] == 0, mqtt
            after = meter.totals()
            spent.append({group: after[group] - before[group] for group in after})
        start_up, run = spent
        results["mqtt single"] = _spent(start_up, run, len(readings))
        results["mqtt single"]["readings_per_second"] = mqtt["readings_per_second"]
        results["mqtt single"]["start_up_cpu_seconds_taken_off"] = start_up
        return results


# --- the model -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Figures:
    """What the model computes from, each with where it came from."""

    cpu_per_reading: dict[str, dict[str, float]]  # path → group → CPU-seconds per reading
    bytes_per_reading_open: float
    bytes_per_reading_closed: float
    bytes_per_hourly_row: float
    bytes_per_day_row: float
    sources: list[str]

    @classmethod
    def load(cls, capacity: dict[str, Any], latest: dict[str, Any]) -> Figures:
        def mean_bytes(storage: dict[str, Any]) -> float:
            tables = [storage[name] for name in ("meter_readings", "vehicle_readings")]
            total = sum(int(t["total_bytes"]) for t in tables)
            return total / sum(int(t["readings"]) for t in tables)

        rollups = capacity["rollup_storage"]
        return cls(
            cpu_per_reading={
                path: {
                    group: capacity[path][f"{group}_cpu_seconds_per_reading"]
                    for group in ("engine", "postgres", "broker")
                }
                for path in PATHS
            },
            bytes_per_reading_open=mean_bytes(latest["engine_storage"]),
            bytes_per_reading_closed=mean_bytes(latest["compacted_storage"]),
            bytes_per_hourly_row=rollups["bytes_per_hourly_row"],
            bytes_per_day_row=rollups["bytes_per_day_row"],
            sources=[
                f"results/capacity.json: {capacity['command']} ({capacity['measured_at']}, "
                f"{capacity['database']}, engine with {capacity['engine_workers']} worker, commit"
                f" {capacity['engine_version']['commit']}, {capacity['machine']['cores']} cores)",
                f"results/latest.json: {latest['command']} ({latest['started_at']}, "
                f"engine commit {latest['engine_version']['commit']})",
            ],
        )


@dataclass(frozen=True)
class Assumptions:
    """What the model adds to the measured figures: choices, not measurements."""

    burst_seconds: float = 15.0  # a minute boundary's readings are all written within this
    utilization: float = 0.5  # share of a core planned busy: the rest is headroom
    cores_per_machine: int = 16
    disk_per_node_bytes: float = 8e12  # what one database node holds
    retention_days: int = 365
    broker_cores_per_process: float = 1.0  # Mosquitto runs on one thread


@dataclass(frozen=True)
class Need:
    devices: int
    path: str
    average_readings_per_second: float
    burst_readings_per_second: float
    engine_cores: float
    engine_machines: int
    postgres_cores: float
    database_nodes: int
    broker_cores: float
    brokers: int
    disk_per_day_bytes: float
    disk_per_year_bytes: float
    database_nodes_for_cpu: int
    database_nodes_for_disk: int


def need(devices: int, path: str, figures: Figures, assume: Assumptions) -> Need:
    """What `devices` meters and as many vehicles, each reporting once a minute, need on `path`."""
    per_minute = 2 * devices  # one reading a minute from each meter and each vehicle
    burst = per_minute / assume.burst_seconds
    cpu = figures.cpu_per_reading[path]
    engine_cores = burst * cpu["engine"] / assume.utilization
    postgres_cores = burst * cpu["postgres"] / assume.utilization
    broker_cores = burst * cpu["broker"] / assume.utilization
    per_day = per_minute * 1440 * figures.bytes_per_reading_closed + per_minute * (
        24 * figures.bytes_per_hourly_row + figures.bytes_per_day_row
    )
    # The day being written is larger until its index is compacted; one such day at a time.
    open_day = (
        per_minute * 1440 * (figures.bytes_per_reading_open - figures.bytes_per_reading_closed)
    )
    kept = per_day * assume.retention_days + open_day
    for_cpu = math.ceil(postgres_cores / assume.cores_per_machine)
    for_disk = math.ceil(kept / assume.disk_per_node_bytes)
    return Need(
        devices=devices,
        path=path,
        average_readings_per_second=per_minute / 60,
        burst_readings_per_second=burst,
        engine_cores=engine_cores,
        engine_machines=math.ceil(engine_cores / assume.cores_per_machine),
        postgres_cores=postgres_cores,
        database_nodes=max(for_cpu, for_disk),
        broker_cores=broker_cores,
        brokers=math.ceil(broker_cores / assume.broker_cores_per_process) if broker_cores else 0,
        disk_per_day_bytes=per_day,
        disk_per_year_bytes=kept,
        database_nodes_for_cpu=for_cpu,
        database_nodes_for_disk=for_disk,
    )


def _size(value: float) -> str:
    for unit, scale in (("TB", 1e12), ("GB", 1e9), ("MB", 1e6)):
        if value >= scale:
            return f"{value / scale:,.1f} {unit}"
    return f"{value:,.0f} B"


def report(figures: Figures, assume: Assumptions, fleets: Sequence[int]) -> str:
    """The model as Markdown: the figures it used, the assumptions, the table."""
    lines = ["# Capacity model", "", "Figures (measured):", ""]
    lines += [f"- {source}" for source in figures.sources]
    lines += ["", "| path | engine | PostgreSQL | broker | readings/s per engine core |"]
    lines += ["|---|---:|---:|---:|---:|"]
    for path in PATHS:
        cpu = figures.cpu_per_reading[path]
        lines.append(
            f"| {path} | {cpu['engine'] * 1e6:.1f} µs | {cpu['postgres'] * 1e6:.1f} µs"
            f" | {cpu['broker'] * 1e6:.1f} µs | {1 / cpu['engine']:,.0f} |"
        )
    lines += [
        "",
        "(CPU per reading; PostgreSQL: "
        + ", ".join(
            f"{path} {1 / figures.cpu_per_reading[path]['postgres']:,.0f} readings/s per core"
            for path in PATHS
        )
        + ")",
        "",
        f"- history: {figures.bytes_per_reading_open:.1f} B a reading as the engine writes an"
        f" open day, {figures.bytes_per_reading_closed:.1f} B once compacted (results/latest.json)",
        f"- rollups: {figures.bytes_per_hourly_row:.1f} B an hourly row, "
        f"{figures.bytes_per_day_row:.1f} B a day row (results/capacity.json)",
        "",
        "Assumptions (options): a minute boundary's readings written within "
        f"{assume.burst_seconds:g} s; cores planned {assume.utilization:.0%} busy; "
        f"{assume.cores_per_machine} cores a machine; {_size(assume.disk_per_node_bytes)} of disk"
        f" a database node; {assume.retention_days} days kept; "
        f"{assume.broker_cores_per_process:g} core a broker process.",
        "",
        "| devices (meters + as many vehicles) | path | readings/s average / burst | engine cores"
        " (machines) | PostgreSQL cores | database nodes (for CPU, for disk) |"
        f" broker cores (processes) | disk a day | disk for {assume.retention_days} days |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for devices in fleets:
        for path in PATHS:
            n = need(devices, path, figures, assume)
            broker = f"{n.broker_cores:,.1f} ({n.brokers})" if path.startswith("mqtt") else "–"
            lines.append(
                f"| {devices:,} | {path} | {n.average_readings_per_second:,.0f} /"
                f" {n.burst_readings_per_second:,.0f} | {n.engine_cores:,.1f}"
                f" ({n.engine_machines}) | {n.postgres_cores:,.1f} | {n.database_nodes}"
                f" ({n.database_nodes_for_cpu}, {n.database_nodes_for_disk}) |"
                f" {broker} | {_size(n.disk_per_day_bytes)} | {_size(n.disk_per_year_bytes)} |"
            )
    lines += [
        "",
        "Not in the model: the Citus coordinator (it routes every batch), standbys (each holds"
        " another copy of the disk), WAL and backups, the analytics' own CPU, and the network.",
    ]
    return "\n".join(lines) + "\n"


def parse_options(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.capacity", description=__doc__)
    parser.add_argument("--measure", action="store_true", help="measure, write capacity.json")
    parser.add_argument("--database-url", help="a server to measure on (default: embedded)")
    parser.add_argument("--devices", type=int, default=5_000, help="meters (and as many vehicles)")
    parser.add_argument("--minutes", type=int, default=6, help="minutes of readings per path")
    parser.add_argument("--seed", type=int, default=15)
    parser.add_argument("--results-dir", type=Path, default=RESULTS)
    parser.add_argument("--fleet", type=int, action="append", help="fleet sizes to model")
    defaults = Assumptions()
    parser.add_argument("--burst-seconds", type=float, default=defaults.burst_seconds)
    parser.add_argument("--utilization", type=float, default=defaults.utilization)
    parser.add_argument("--cores-per-machine", type=int, default=defaults.cores_per_machine)
    parser.add_argument("--retention-days", type=int, default=defaults.retention_days)
    parser.add_argument(
        "--disk-per-node-tb", type=float, default=defaults.disk_per_node_bytes / 1e12
    )
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    options = parse_options(argv)
    capacity_file = options.results_dir / "capacity.json"
    if options.measure:
        results = asyncio.run(measure(options))
        capacity_file.write_bytes(orjson.dumps(results, option=orjson.OPT_INDENT_2) + b"\n")
        print(f"wrote {capacity_file}", file=sys.stderr)
    if not capacity_file.exists():
        print(
            f"no {capacity_file}: run `python -m bench.capacity --measure` first", file=sys.stderr
        )
        return 2
    figures = Figures.load(
        orjson.loads(capacity_file.read_bytes()),
        orjson.loads((options.results_dir / "latest.json").read_bytes()),
    )
    assume = Assumptions(
        burst_seconds=options.burst_seconds,
        utilization=options.utilization,
        cores_per_machine=options.cores_per_machine,
        retention_days=options.retention_days,
        disk_per_node_bytes=options.disk_per_node_tb * 1e12,
    )
    print(report(figures, assume, options.fleet or [100_000, 1_000_000]), end="")
    return 0


if __name__ == "__main__":
    sys.exit(main())
