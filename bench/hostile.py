"""What the worst requests of the outside probe cost the engine: `python -m bench.hostile`.

Each request is sent alone, with the least-privileged ingest credential (a key bound to
`vehicle:V-1`), to a real `energy-ingest serve` (one worker) on a fresh database, while a side
task asks `/healthz` every 10 ms. For each request the report gives its status, the answer's
size, the time it took, the server's peak memory during it and the longest `/healthz` wait
during it: how much one request can take from everyone else.

With several `--engine-dir` (or `--baseline-dir` and `--engine-dir`), each engine is measured
in turn on the same requests and the report sets them side by side with ratios, first engine
as the baseline.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import ExitStack, asynccontextmanager
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any

from bench.database import admin_server, scratch_database
from bench.http_load import HttpConnection, ProtocolError
from bench.machine import engine_version, machine_facts
from bench.report import redacted_command, scrub
from bench.servers import HOST, ServerProcess, free_port, running_server

BENCH_DIR = Path(__file__).resolve().parent
REPOSITORY = BENCH_DIR.parent
DEVICE = "V-1"
OTHER_DEVICE = "V-2"
_PROC = Path("/proc")
_PAGE_KIB = os.sysconf("SC_PAGE_SIZE") // 1024
_TICKS_PER_SECOND = os.sysconf("SC_CLK_TCK")
# A kept-alive /healthz connection that the server stopped answering is given up after this.
_SUBPROCESS_TIMEOUT_SECONDS = 120.0


# --- the requests ---------------------------------------------------------------------------


def _unknown_fields(count: int) -> str:
    """`"0":0,"1":0,…` with hexadecimal names: `count` distinct fields no model knows."""
    return ",".join(f'"{i:x}":0' for i in range(count))


def _invalid_readings(device: str, count: int) -> bytes:
    """`count` readings of `device`, each with every value out of range or malformed."""
    item = (
        f'{{"vehicleId":"{device}","soc":150,"kwhDeliveredDc":-1,'
        f'"batteryTemp":500,"timestamp":"yesterday"}}'
    )
    return ("[" + ",".join([item] * count) + "]").encode()


@dataclass(frozen=True, slots=True)
class Case:
    """One hostile request: what it is, where it goes, and how to build its body."""

    key: str
    label: str
    path: str
    build: Callable[[], bytes]


CASES: tuple[Case, ...] = (
    Case(
        "a",
        "one object, 100 k unknown keys",
        "/v1/ingest/vehicle",
        lambda: ("{" + _unknown_fields(100_000) + "}").encode(),
    ),
    Case(
        "b",
        "one object, 1.6 M unknown keys",
        "/v1/ingest/vehicle",
        lambda: ("{" + _unknown_fields(1_600_000) + "}").encode(),
    ),
    Case(
        "c",
        f"batch of 10,000 items of {DEVICE}, 150 unknown fields each",
        "/v1/ingest/vehicle/batch",
        lambda: (
            "["
            + ",".join([f'{{"vehicleId":"{DEVICE}",' + _unknown_fields(150) + "}"] * 10_000)
            + "]"
        ).encode(),
    ),
    Case(
        "d",
        f"batch of 10,000 invalid readings of {DEVICE}",
        "/v1/ingest/vehicle/batch",
        lambda: _invalid_readings(DEVICE, 10_000),
    ),
    Case(
        "e",
        "batch of 5 M empty arrays",
        "/v1/ingest/vehicle/batch",
        lambda: ("[" + ",".join(["[]"] * 5_000_000) + "]").encode(),
    ),
    Case(
        "f",
        f"batch of 10,000 invalid readings of {OTHER_DEVICE} (another device)",
        "/v1/ingest/vehicle/batch",
        lambda: _invalid_readings(OTHER_DEVICE, 10_000),
    ),
    # The same shapes, as large as the hardened engine's body limits let in (4 KiB for one
    # reading, 4 MiB for a batch): what is left of each attack once its size is refused.
    Case(
        "g",
        "one object, 500 unknown keys (3.7 kB, under 4 KiB)",
        "/v1/ingest/vehicle",
        lambda: ("{" + _unknown_fields(500) + "}").encode(),
    ),
    Case(
        "h",
        f"batch of 10,000 items of {DEVICE}, 55 unknown fields each (under 4 MiB)",
        "/v1/ingest/vehicle/batch",
        lambda: (
            "["
            + ",".join([f'{{"vehicleId":"{DEVICE}",' + _unknown_fields(55) + "}"] * 10_000)
            + "]"
        ).encode(),
    ),
    Case(
        "i",
        "batch of 1.39 M empty arrays (under 4 MiB)",
        "/v1/ingest/vehicle/batch",
        lambda: ("[" + ",".join(["[]"] * 1_390_000) + "]").encode(),
    ),
)


def encode_request(path: str, body: bytes, token: str) -> bytes:
    """A POST with the device key, JSON headers and a loopback Host."""
    head = (
        f"POST {path} HTTP/1.1\r\nhost: {HOST}\r\nauthorization: Bearer {token}\r\n"
        f"content-type: application/json\r\ncontent-length: {len(body)}\r\n\r\n"
    )
    return head.encode("ascii") + body


# --- the server's memory and CPU --------------------------------------------------------------


def _status_kib(pid: int, field_name: str) -> int | None:
    """A `kB` line of /proc/<pid>/status (VmRSS, VmHWM), or None when it cannot be read."""
    with contextlib.suppress(OSError, ValueError, IndexError):
        for line in (_PROC / str(pid) / "status").read_text().splitlines():
            if line.startswith(field_name + ":"):
                return int(line.split()[1])
    return None


def _reset_peak(pid: int) -> bool:
    """Reset the process's peak RSS (VmHWM) to its current RSS; False where not allowed."""
    try:
        (_PROC / str(pid) / "clear_refs").write_text("5")
    except OSError:
        return False
    return True


def _cpu_seconds(pid: int) -> float:
    """User plus system CPU the process used so far."""
    with contextlib.suppress(OSError, ValueError, IndexError):
        text = (_PROC / str(pid) / "stat").read_text()
        fields = text[text.rindex(")") + 2 :].split()
        return (int(fields[11]) + int(fields[12])) / _TICKS_PER_SECOND
    return 0.0


# --- one measurement --------------------------------------------------------------------------


@dataclass(slots=True)
class Measurement:
    """What one hostile request cost."""

    case: str
    label: str
    request_bytes: int
    status: str = ""
    answer_bytes: int = 0
    seconds: float = 0.0
    server_cpu_seconds: float = 0.0
    rss_before_mib: float = 0.0
    peak_rss_mib: float = 0.0
    rss_after_mib: float = 0.0
    healthz_max_ms: float = 0.0
    healthz_calls: int = 0
    healthz_failures: int = 0
    answer_start: str = ""


@dataclass(slots=True)
class _Watch:
    """The side tasks' findings during one request."""

    peak_rss_kib: int = 0
    healthz_max: float = 0.0
    healthz_calls: int = 0
    healthz_failures: int = 0
    ready: asyncio.Event = field(default_factory=asyncio.Event)
    stop: asyncio.Event = field(default_factory=asyncio.Event)


async def _poll_healthz(port: int, watch: _Watch, interval: float, give_up: float) -> None:
    """GET /healthz every `interval` until told to stop; the longest wait is kept.

    The call in flight when the request ends is finished and counted: it is the one a blocked
    event loop delays most.
    """
    probe = f"GET /healthz HTTP/1.1\r\nhost: {HOST}\r\n\r\n".encode("ascii")
    connection = HttpConnection(HOST, port)
    try:
        # The connection is opened and used once before the request starts: not counted.
        with contextlib.suppress(OSError, TimeoutError, asyncio.IncompleteReadError, ProtocolError):
            async with asyncio.timeout(give_up):
                await connection.call(probe)
        watch.ready.set()
        while not watch.stop.is_set():
            started = time.perf_counter()
            try:
                async with asyncio.timeout(give_up):
                    status, _ = await connection.call(probe)
                if status != 200:
                    watch.healthz_failures += 1
            except (OSError, TimeoutError, asyncio.IncompleteReadError, ProtocolError):
                watch.healthz_failures += 1
                await connection.close()
            watch.healthz_max = max(watch.healthz_max, time.perf_counter() - started)
            watch.healthz_calls += 1
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(watch.stop.wait(), timeout=interval)
    finally:
        watch.ready.set()
        await connection.close()


async def _poll_rss(pid: int, watch: _Watch, interval: float) -> None:
    """The server's resident memory every `interval` (backs up VmHWM where it is not reset)."""
    while not watch.stop.is_set():
        rss = _status_kib(pid, "VmRSS")
        if rss is not None:
            watch.peak_rss_kib = max(watch.peak_rss_kib, rss)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(watch.stop.wait(), timeout=interval)


def _mib(kib: int | None) -> float:
    return round((kib or 0) / 1024, 1)


async def measure(
    case: Case, body: bytes, token: str, server: ServerProcess, options: argparse.Namespace
) -> Measurement:
    """Send one hostile request while /healthz and the server's memory are watched."""
    pid = server.pid
    result = Measurement(case.key, case.label, len(body))
    raw = encode_request(case.path, body, token)
    await asyncio.sleep(options.settle)  # the previous request's after-effects
    result.rss_before_mib = _mib(_status_kib(pid, "VmRSS"))
    peak_reset = _reset_peak(pid)
    cpu_before = _cpu_seconds(pid)
    watch = _Watch()
    pollers = [
        asyncio.create_task(
            _poll_healthz(server.port, watch, options.poll_interval, options.request_timeout)
        ),
        asyncio.create_task(_poll_rss(pid, watch, options.poll_interval)),
    ]
    await asyncio.wait_for(watch.ready.wait(), options.request_timeout)
    connection = HttpConnection(HOST, server.port)
    started = time.perf_counter()
    try:
        async with asyncio.timeout(options.request_timeout):
            status, answer = await connection.call(raw)
        result.status = str(status)
        result.answer_bytes = len(answer)
        result.answer_start = answer[:160].decode("utf-8", errors="replace")
    except TimeoutError:
        result.status = f"no answer in {options.request_timeout:g} s"
    except (OSError, asyncio.IncompleteReadError, ProtocolError) as exc:
        result.status = f"{type(exc).__name__}"
    finally:
        result.seconds = round(time.perf_counter() - started, 3)
        await connection.close()
        watch.stop.set()
        await asyncio.wait_for(
            asyncio.gather(*pollers, return_exceptions=True), options.request_timeout
        )
    result.server_cpu_seconds = round(_cpu_seconds(pid) - cpu_before, 2)
    hwm = _status_kib(pid, "VmHWM") if peak_reset else None
    result.peak_rss_mib = _mib(max(hwm or 0, watch.peak_rss_kib))
    result.rss_after_mib = _mib(_status_kib(pid, "VmRSS"))
    result.healthz_max_ms = round(watch.healthz_max * 1000, 1)
    result.healthz_calls = watch.healthz_calls
    result.healthz_failures = watch.healthz_failures
    return result


# --- an engine from a checkout ----------------------------------------------------------------


def engine_cli(engine_dir: Path) -> tuple[list[str], dict[str, str]]:
    """How to run `energy-ingest` of a checkout: its own virtual environment's script, or
    `python -m energy_ingest` of this interpreter with the checkout first on PYTHONPATH."""
    script = engine_dir / ".venv" / "bin" / "energy-ingest"
    environment = {key: value for key, value in os.environ.items() if not key.startswith("EIE_")}
    if script.exists():
        return [str(script)], environment
    environment["PYTHONPATH"] = os.pathsep.join(
        [str(engine_dir), *filter(None, [os.environ.get("PYTHONPATH")])]
    )
    return [sys.executable, "-m", "energy_ingest"], environment


def _run_cli(engine_dir: Path, arguments: Sequence[str], log: IO[bytes]) -> str:
    """Run one `energy-ingest` command of the checkout; its standard output."""
    command, environment = engine_cli(engine_dir)
    finished = subprocess.run(
        [*command, *arguments],
        env=environment,
        cwd=engine_dir,
        capture_output=True,
        timeout=_SUBPROCESS_TIMEOUT_SECONDS,
        check=False,
    )
    log.write(finished.stderr)
    if finished.returncode != 0:
        last = finished.stderr.decode(errors="replace").strip().splitlines()[-1:]
        raise RuntimeError(
            f"energy-ingest {' '.join(arguments[:2])} failed ({finished.returncode}): "
            + (last[0] if last else "no message")
        )
    return finished.stdout.decode().strip()


async def prepare_engine_database(engine_dir: Path, url: str, log: IO[bytes]) -> str:
    """Migrate the database at `url` with the checkout's own CLI and create a key bound to
    vehicle V-1 with it (before any start, so no admin key is minted); the key."""
    await asyncio.to_thread(_run_cli, engine_dir, ["db", "migrate", "--database-url", url], log)
    output = await asyncio.to_thread(
        _run_cli,
        engine_dir,
        [
            "keys", "create", "--scope", "ingest", "--device", DEVICE, "--device-kind", "vehicle",
            "--name", "hostile-bench", "--database-url", url,
        ],
        log,
    )  # fmt: skip
    return output.splitlines()[-1]


@asynccontextmanager
async def running_engine(
    engine_dir: Path, url: str, log: IO[bytes], startup_timeout: float
) -> AsyncIterator[ServerProcess]:
    """The checkout's `energy-ingest serve` on `url`: auth on, one worker, loopback."""
    port = free_port()
    command, environment = engine_cli(engine_dir)
    serve = [
        *command, "serve", "--host", HOST, "--port", str(port), "--workers", "1",
        "--database-url", url,
    ]  # fmt: skip
    async with running_server(
        f"engine {engine_dir.name}", serve, port, log, startup_timeout, environment
    ) as server:
        yield server


async def measure_engine(
    engine_dir: Path,
    number: int,
    admin_url: str,
    cases: Sequence[Case],
    bodies: dict[str, bytes],
    options: argparse.Namespace,
    log: IO[bytes],
) -> dict[str, Any]:
    """Every case against one engine, on a database of its own; each case on a server process
    of its own, so that no request finds memory an earlier one left allocated."""
    name = f"eie_hostile_{os.getpid()}_{number}"
    version = engine_version(engine_dir)
    results: list[Measurement] = []
    idle: list[float] = []
    async with scratch_database(admin_url, name) as url:
        token = await prepare_engine_database(engine_dir, url, log)
        for case in cases:
            print(f"  ({case.key}) {case.label} …", file=sys.stderr, flush=True)
            async with running_engine(engine_dir, url, log, options.startup_timeout) as server:
                # One request first, so that the idle size includes what answering costs.
                await _warm_up(server.port, token)
                idle.append(_mib(_status_kib(server.pid, "VmRSS")))
                result = await measure(case, bodies[case.key], token, server, options)
            print(
                f"      {result.status}, {result.answer_bytes:,} B, {result.seconds:.2f} s, "
                f"peak {result.peak_rss_mib:,.0f} MiB, "
                f"/healthz max {result.healthz_max_ms:,.1f} ms",
                file=sys.stderr,
                flush=True,
            )
            results.append(result)
    return {
        "engine": engine_dir.name,
        "commit": version.get("commit"),
        "local_changes": version.get("local_changes"),
        "idle_rss_mib": round(sum(idle) / len(idle), 1) if idle else 0.0,
        "measurements": [asdict(result) for result in results],
    }


async def _warm_up(port: int, token: str) -> None:
    """One valid reading of the key's own vehicle through the ingest path."""
    now = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.000Z")
    body = (
        f'{{"vehicleId":"{DEVICE}","soc":50,"kwhDeliveredDc":1.5,"batteryTemp":25,'
        f'"timestamp":"{now}"}}'
    ).encode()
    connection = HttpConnection(HOST, port)
    try:
        async with asyncio.timeout(_SUBPROCESS_TIMEOUT_SECONDS):
            status, answer = await connection.call(
                encode_request("/v1/ingest/vehicle", body, token)
            )
    finally:
        await connection.close()
    if status not in (200, 201):
        raise RuntimeError(f"a valid reading got {status}: {answer[:200]!r}")


# --- the report -------------------------------------------------------------------------------


def _size(count: int) -> str:
    """Bytes as B, kB or MB (decimal, as the probe wrote them)."""
    if count >= 1_000_000:
        return f"{count / 1_000_000:,.1f} MB"
    if count >= 1_000:
        return f"{count / 1_000:,.1f} kB"
    return f"{count} B"


def _ratio(before: float, after: float, resolution: float) -> str:
    """before / after: how many times less the later engine's request costs. An `after` below
    the measurement's resolution counts as the resolution, and the ratio is a lower bound."""
    if before < resolution:
        return "–"  # nothing measurable to compare
    if after < resolution:
        return f"≥ {before / resolution:,.0f}×"
    return f"{before / after:,.1f}×"


def _engine_name(engine: dict[str, Any]) -> str:
    commit = engine.get("commit") or "unknown commit"
    return f"{commit}{' + local changes' if engine.get('local_changes') else ''}"


def _growth(row: dict[str, Any]) -> float:
    """MiB the server's peak rose above its resident size just before the request."""
    return max(0.0, float(row["peak_rss_mib"]) - float(row["rss_before_mib"]))


def _cells(row: dict[str, Any]) -> list[str]:
    return [
        str(row["status"]),
        _size(int(row["answer_bytes"])),
        f"{float(row['seconds']):.2f}",
        f"{float(row['peak_rss_mib']):,.0f} (+{_growth(row):,.0f})",
        f"{float(row['healthz_max_ms']):,.1f}",
    ]


def render_markdown(report: dict[str, Any]) -> str:
    """The report: how it was run, on what, and one table (side by side with ratios for two
    or more engines, the first one the baseline)."""
    machine = report["machine"]
    engines: list[dict[str, Any]] = report["engines"]
    lines = [
        "# Hostile requests: what one request costs the engine",
        "",
        f"`{report['command']}` ({report['started_at']}, {report['run_seconds']:g} s)",
        "",
        f"Machine: {machine['cores']} cores ({machine['cpu']}), {machine['memory_gib']} GiB RAM, "
        f"{machine['os']}, Python {machine['python']}. Engine, PostgreSQL ({report['database']}) "
        "and this client share these cores; all traffic is loopback.",
        "",
        "Engines (each `energy-ingest serve`, 1 worker, auth on, a fresh database): "
        + "; ".join(
            f"{'baseline ' if index == 0 and len(engines) > 1 else ''}commit "
            f"{_engine_name(engine)} (idle RSS {engine['idle_rss_mib']:,.0f} MiB)"
            for index, engine in enumerate(engines)
        )
        + ".",
        "",
        f"Each request is sent alone with an ingest key bound to `vehicle:{DEVICE}`, while "
        f"`GET /healthz` is asked every {report['poll_interval_ms']:g} ms on another connection. "
        "*s*: seconds until the whole answer was read; *peak RSS*: the server's highest resident "
        "memory during the request in MiB (+ how much it rose above its size just before; memory a "
        "previous request left allocated is not counted again); *healthz*: the longest "
        "`/healthz` wait during it, in ms (a blocked event loop shows here). (a)–(f) are the "
        "probe's requests; (g)–(i) the same shapes as large as the hardened engine's body limits "
        "let in (4 KiB for one reading, 4 MiB for a batch).",
        "",
    ]
    if len(engines) == 1:
        lines += [
            "| request | body | status | answer | s | peak RSS MiB | healthz ms |",
            "|---|---:|---|---:|---:|---:|---:|",
        ]
        engine = engines[0]
        for row in engine["measurements"]:
            lines.append(
                f"| ({row['case']}) {row['label']} | {_size(int(row['request_bytes']))} | "
                + " | ".join(_cells(row))
                + " |"
            )
    else:
        base = engines[0]
        for engine in engines[1:]:
            lines += [
                f"Before: {_engine_name(base)}; after: {_engine_name(engine)}. Ratios are "
                "before ÷ after (how many times less the request costs now); memory ratios "
                "compare the rises (+).",
                "",
                "| request | body | status before → after | answer before → after | "
                "s before → after | × | peak RSS MiB before → after | × | "
                "healthz ms before → after | × |",
                "|---|---:|---|---:|---:|---:|---:|---:|---:|---:|",
            ]
            after_rows = {row["case"]: row for row in engine["measurements"]}
            for row in base["measurements"]:
                other = after_rows.get(row["case"])
                if other is None:
                    continue
                grow_before, grow_after = _growth(row), _growth(other)
                lines.append(
                    f"| ({row['case']}) {row['label']} | {_size(int(row['request_bytes']))} | "
                    f"{row['status']} → {other['status']} | "
                    f"{_size(int(row['answer_bytes']))} → {_size(int(other['answer_bytes']))} | "
                    f"{float(row['seconds']):.2f} → {float(other['seconds']):.2f} | "
                    f"{_ratio(float(row['seconds']), float(other['seconds']), 0.01)} | "
                    f"{float(row['peak_rss_mib']):,.0f} (+{grow_before:,.0f}) → "
                    f"{float(other['peak_rss_mib']):,.0f} (+{grow_after:,.0f}) | "
                    f"{_ratio(grow_before, grow_after, 1.0)} | "
                    f"{float(row['healthz_max_ms']):,.1f} → "
                    f"{float(other['healthz_max_ms']):,.1f} | "
                    f"{_ratio(float(row['healthz_max_ms']), float(other['healthz_max_ms']), 1.0)} |"
                )
            lines.append("")
    lines += ["", "Answers (first bytes):", ""]
    for engine in engines:
        for row in engine["measurements"]:
            start = " ".join(str(row["answer_start"]).split())[:120].replace("|", "\\|")
            lines.append(f"- {engine.get('commit')} ({row['case']}): `{start}`")
    failures = [
        f"{engine.get('commit')} ({row['case']}): {row['healthz_failures']} failed"
        for engine in engines
        for row in engine["measurements"]
        if row["healthz_failures"]
    ]
    if failures:
        lines += ["", "`/healthz` calls that failed: " + "; ".join(failures) + "."]
    return "\n".join(lines).rstrip() + "\n"


# --- running it -------------------------------------------------------------------------------


def parse_options(argv: Sequence[str] | None = None) -> argparse.Namespace:
    """Command-line options."""
    parser = argparse.ArgumentParser(
        prog="python -m bench.hostile",
        description=__doc__.split("\n\n", 1)[0] if __doc__ else None,
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument(
        "--engine-dir",
        action="append",
        type=Path,
        help="An engine checkout to measure (repeat to compare; the first is the baseline). "
        "Default: this repository.",
    )
    parser.add_argument(
        "--baseline-dir",
        type=Path,
        help="An engine checkout measured first, as the baseline of the others.",
    )
    parser.add_argument(
        "--database-url",
        default=os.environ.get("EIE_BENCH_DATABASE_URL"),
        help="A PostgreSQL server to run on (a database per engine is created and dropped "
        "there). Unset: a throw-away embedded PostgreSQL. [EIE_BENCH_DATABASE_URL]",
    )
    parser.add_argument(
        "--cases",
        default=",".join(case.key for case in CASES),
        help="Which requests, by letter: " + "; ".join(f"{c.key} {c.label}" for c in CASES),
    )
    parser.add_argument("--results-dir", type=Path, default=BENCH_DIR / "results")
    parser.add_argument("--request-timeout", type=float, default=60.0)
    parser.add_argument("--startup-timeout", type=float, default=60.0)
    parser.add_argument("--poll-interval", type=float, default=0.01, help="Seconds.")
    parser.add_argument(
        "--settle", type=float, default=1.0, help="Seconds of quiet before each request."
    )
    options = parser.parse_args(argv)
    dirs: list[Path] = list(options.engine_dir or [])
    if options.baseline_dir is not None:
        dirs.insert(0, options.baseline_dir)
    if not options.engine_dir:
        dirs.append(REPOSITORY)
    options.engine_dirs = [path.resolve() for path in dirs]
    for path in options.engine_dirs:
        if not (path / "energy_ingest").is_dir():
            parser.error(f"{path} is not an engine checkout (no energy_ingest package)")
    known = {case.key for case in CASES}
    chosen = [key.strip() for key in options.cases.split(",") if key.strip()]
    if not chosen or set(chosen) - known:
        parser.error(f"--cases takes letters among {', '.join(sorted(known))}")
    options.chosen = [case for case in CASES if case.key in chosen]
    if options.request_timeout <= 0 or options.poll_interval <= 0 or options.settle < 0:
        parser.error("timeouts and intervals must be positive")
    return options


async def _main(
    options: argparse.Namespace, admin_url: str, database: str, log: IO[bytes]
) -> dict[str, Any]:
    started_at = datetime.now(UTC)
    clock = time.perf_counter()
    print("building the request bodies …", file=sys.stderr, flush=True)
    bodies = {case.key: case.build() for case in options.chosen}
    engines = []
    for number, engine_dir in enumerate(options.engine_dirs, start=1):
        print(f"engine {engine_dir.name}:", file=sys.stderr, flush=True)
        engines.append(
            await measure_engine(
                engine_dir, number, admin_url, options.chosen, bodies, options, log
            )
        )
    return {
        "command": redacted_command(),
        "started_at": started_at.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "run_seconds": round(time.perf_counter() - clock, 1),
        "machine": machine_facts(),
        "database": database,
        "poll_interval_ms": options.poll_interval * 1000,
        "engines": engines,
    }


def main(argv: Sequence[str] | None = None) -> int:
    """Measure each engine; write bench/results/hostile.md and print it."""
    options = parse_options(argv)
    results_dir: Path = options.results_dir
    results_dir.mkdir(parents=True, exist_ok=True)
    with ExitStack() as stack:
        scratch = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="eie-hostile-")))
        admin_url, database = admin_server(stack, scratch, options.database_url)
        log_path = scratch / "servers.log"
        log = stack.enter_context(log_path.open("wb"))
        try:
            report = asyncio.run(_main(options, admin_url, database, log))
        finally:
            log.flush()
            text = scrub(
                log_path.read_text(encoding="utf-8", errors="replace"),
                {str(scratch): "<scratch>", str(Path.cwd()): "."},
            )
            (results_dir / "hostile-servers.log").write_text(text, encoding="utf-8")
    markdown = render_markdown(report)
    (results_dir / "hostile.md").write_text(markdown, encoding="utf-8")
    print(markdown)
    return 0


if __name__ == "__main__":
    sys.exit(main())
