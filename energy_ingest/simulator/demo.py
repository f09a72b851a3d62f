"""`energy-ingest demo`: the engine on a fresh embedded database, a day of a fleet, the verdicts.

The engine runs as a child process (`energy-ingest serve`), so the simulator and the engine
each have a core of their own, as they would in production. Its database lives in a demo
folder of its own that is wiped at every start: a second demo starts from the same empty
state and shows the same result, and a demo killed hard leaves nothing behind that blocks the
next one (its engine and database are stopped first).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, replace
from pathlib import Path
from urllib.parse import quote

import httpx
from rich.console import Console

from energy_ingest.simulator.client import EngineClient, UnexpectedAnswer, wire_time
from energy_ingest.simulator.command import (
    EXIT_INTERRUPTED,
    RunOptions,
    RunResult,
    SimulationAborted,
    install_stop_signals,
    quiet_http_logs,
    run,
)
from energy_ingest.simulator.console import make_console, worst

MARKER = ".energy-ingest-demo"
_READY_TIMEOUT_SECONDS = 180.0
_STOP_TIMEOUT_SECONDS = 120.0


def default_folder() -> Path:
    """A folder in the system's temporary directory, one per user."""
    return Path(tempfile.gettempdir()) / f"energy-ingest-demo-{os.getuid()}"


class DemoFailed(Exception):
    """The demo cannot start or the engine failed; the message says why."""


@dataclass(frozen=True, slots=True)
class DemoOptions:
    """Where the demo's engine lives and listens, and the run it is fed."""

    folder: Path
    host: str
    port: int
    run: RunOptions


def _running(pid: int, command: bytes = b"") -> bool:
    """Whether `pid` is a live process (not a zombie) whose command line holds `command`.

    Checking the command line keeps a recycled process id from passing for a demo's process.
    """
    if Path("/proc/self").is_dir():
        proc = Path(f"/proc/{pid}")
        try:
            state = (proc / "stat").read_text().rpartition(")")[2].split()[0]
            return state not in {"Z", "X"} and command in (proc / "cmdline").read_bytes()
        except (OSError, IndexError):
            return False
    try:  # no /proc (macOS): existence is all there is to know
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _wait_gone(pid: int, seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if not _running(pid):
            return True
        time.sleep(0.1)
    return not _running(pid)


def _stop_leftovers(folder: Path) -> None:
    """Stop what a demo killed hard left running: its engine, then its PostgreSQL."""
    owner, _, engine = (folder / MARKER).read_text().partition(" ")
    if owner.strip().isdigit() and int(owner) != os.getpid() and _running(int(owner), b"demo"):
        raise DemoFailed(
            f"a demo is already running (pid {owner.strip()}) in {folder}; stop it with Ctrl-C "
            "or give this one another --data-dir"
        )
    if engine.strip().isdigit() and _running(int(engine), b"energy_ingest"):
        os.kill(int(engine), signal.SIGTERM)  # it stops its own PostgreSQL on the way out
        _wait_gone(int(engine), _STOP_TIMEOUT_SECONDS)
    pid_file = folder / "postgres" / "postmaster.pid"
    with contextlib.suppress(OSError, ValueError, IndexError):
        postmaster = int(pid_file.read_text().splitlines()[0])
        if _running(postmaster, b"postgres"):
            os.kill(postmaster, signal.SIGINT)  # PostgreSQL's "fast" shutdown
            _wait_gone(postmaster, _STOP_TIMEOUT_SECONDS)


def prepare_folder(folder: Path) -> Path:
    """Wipe the demo folder (only if it is one) and return the embedded database's folder in it."""
    folder = folder.expanduser().resolve()
    if folder.exists():
        if not (folder / MARKER).exists():
            if any(folder.iterdir()):
                raise DemoFailed(
                    f"{folder} is not empty and is not a demo folder; the demo wipes its folder "
                    "at every start, so give it an empty or new one with --data-dir"
                )
        else:
            _stop_leftovers(folder)
        shutil.rmtree(folder)
    folder.mkdir(parents=True)
    (folder / MARKER).write_text(str(os.getpid()))
    return folder / "postgres"


def free_port(host: str, wanted: int) -> int:
    """`wanted` if it can be bound on `host`, otherwise a free port the system picks."""
    for port in (wanted, 0):
        with socket.socket() as probe:
            try:
                probe.bind((host, port))
            except OSError:
                continue
            found: int = probe.getsockname()[1]
            return found
    raise DemoFailed(f"no free port to listen on at {host}")


def _key_file(options: DemoOptions) -> Path:
    return options.folder / "admin.key"


def _log_tail(path: Path, lines: int = 25) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


async def _start_engine(
    options: DemoOptions, database_folder: Path, port: int
) -> asyncio.subprocess.Process:
    log = (options.folder / "engine.log").open("wb")
    # The demo always brings its own embedded database, whatever the shell points at.
    environment = {
        key: value
        for key, value in os.environ.items()
        if key not in {"DATABASE_URL", "EIE_DATABASE_URL", "EIE_AUTH_ENABLED"}
    }
    if options.run.mqtt_url is not None:
        # A session and a group of this demo's own, short-lived: a broker the machine shares
        # must not keep queueing for a demo long gone, nor hand it other engines' devices.
        environment.update(
            EIE_MQTT_URL=options.run.mqtt_url,
            EIE_MQTT_CLIENT_ID=f"energy-ingest-demo-{os.getpid()}",
            EIE_MQTT_GROUP=f"energy-ingest-demo-{os.getpid()}",
            EIE_MQTT_SESSION_EXPIRY_SECONDS="60",
        )
    if options.run.ocpp:
        environment["EIE_OCPP_ENABLED"] = "true"
    try:
        engine = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "energy_ingest",
            "serve",
            "--host",
            options.host,
            "--port",
            str(port),
            "--data-dir",
            str(database_folder),
            # A fresh database: the engine mints its first admin key and hands it over here.
            "--admin-key-file",
            str(_key_file(options)),
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            env=environment,
            # Its own session: Ctrl-C reaches only the demo, which then stops the engine in
            # order (engine first, its database last) instead of both at once.
            start_new_session=True,
        )
    finally:
        log.close()
    (options.folder / MARKER).write_text(f"{os.getpid()} {engine.pid}")
    return engine


async def _wait_ready(
    client: EngineClient, engine: asyncio.subprocess.Process, log: Path, stop: asyncio.Event
) -> None:
    deadline = time.monotonic() + _READY_TIMEOUT_SECONDS
    while not await client.is_ready():
        if engine.returncode is not None:
            raise DemoFailed(
                f"the engine exited ({engine.returncode}); its log ends:\n{_log_tail(log)}"
            )
        if time.monotonic() > deadline:
            raise DemoFailed(f"the engine was not ready after {_READY_TIMEOUT_SECONDS:.0f} s")
        if stop.is_set():
            return
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(engine.wait(), timeout=0.2)


async def _stop_engine(engine: asyncio.subprocess.Process, console: Console) -> int | None:
    if engine.returncode is None:
        console.print("stopping the engine and its embedded PostgreSQL …")
        engine.send_signal(signal.SIGTERM)
        try:
            await asyncio.wait_for(engine.wait(), timeout=_STOP_TIMEOUT_SECONDS)
        except TimeoutError:
            engine.kill()
            await engine.wait()
    return engine.returncode


def _print_next_steps(console: Console, base: str, result: RunResult, api_key: str) -> None:
    simulation = result.simulation
    start, end = simulation.window
    window = f"from={quote(wire_time(start))}&to={quote(wire_time(end))}"
    lines: list[tuple[str, str]] = [("API documentation (Authorize: the key)", f"{base}/docs")]
    if result.detection is not None:
        worst_vehicle = worst(result.detection, 1)[0]
        lines += [
            (
                f"lowest efficiency ({worst_vehicle.vehicle_id})",
                f"{base}/v1/analytics/performance/{worst_vehicle.vehicle_id}?{window}",
            ),
            (
                "its live state",
                f"{base}/v1/analytics/vehicle/{worst_vehicle.vehicle_id}/live",
            ),
            (
                "its charger's meter",
                f"{base}/v1/analytics/meter/{worst_vehicle.meter_ids[-1]}/live",
            ),
        ]
        if simulation.fleet.spec.connector_meters:
            charge_point = worst_vehicle.meter_ids[-1].rpartition(":")[0]
            lines.append(
                (
                    "its charge point (OCPP connectors)",
                    f"{base}/v1/analytics/charger/{charge_point}/live",
                )
            )
    moved = next((v for v in simulation.fleet.vehicles if v.change is not None), None)
    if moved is not None:
        lines.append(
            ("a vehicle that changed charger", f"{base}/v1/vehicles/{moved.vehicle_id}/assignments")
        )
        lines.append(
            (
                "  …its efficiency across both",
                f"{base}/v1/analytics/performance/{moved.vehicle_id}?{window}",
            )
        )
    lines.append(("readiness and writer state (no key)", f"{base}/readyz"))
    console.print(f"[bold]The demo's admin key[/] (this engine only): {api_key}", soft_wrap=True)
    console.print(
        f'[bold]Try next[/] with  curl -H "Authorization: Bearer $KEY"  (KEY={api_key}):',
        soft_wrap=True,
    )
    width = max(len(label) for label, _ in lines)
    for label, url in lines:
        console.print(f"  {label:<{width}}  {url}", soft_wrap=True)
    console.print(
        f"  {'a fleet reporting live':<{width}}  energy-ingest simulate --realtime "
        f"--url {base} --api-key $KEY --prefix live --vehicles 100 --duration 1h",
        soft_wrap=True,
    )


async def _demo(options: DemoOptions, console: Console) -> int:
    began = time.monotonic()
    stop = asyncio.Event()
    remove_signals = install_stop_signals(stop)
    # The folder first: preparing it stops what a demo killed hard left running (its port too).
    database_folder = await asyncio.to_thread(prepare_folder, options.folder)
    port = free_port(options.host, options.port)
    if port != options.port:
        console.print(f"[yellow]port {options.port} is taken; the engine listens on {port}[/]")
    base = f"http://{options.host}:{port}"
    engine = await _start_engine(options, database_folder, port)
    log = options.folder / "engine.log"
    outcome = "failed"
    try:
        async with httpx.AsyncClient(base_url=base, timeout=options.run.timeout_seconds) as http:
            console.print(
                f"starting the engine on {base} with an embedded PostgreSQL in {options.folder} …"
            )
            await _wait_ready(EngineClient(http), engine, log, stop)
            if stop.is_set():
                outcome = "interrupted"
                return EXIT_INTERRUPTED
            ready = time.monotonic() - began
            api_key = _key_file(options).read_text().strip()
            http.headers["Authorization"] = f"Bearer {api_key}"
            console.print(f"engine ready in {ready:.1f} s; simulating the fleet …\n")
            result = await run(
                replace(options.run, url=base, api_key=api_key), console, http=http, stop=stop
            )
        if result.tally.interrupted:
            outcome = "interrupted"
            return EXIT_INTERRUPTED
        console.print()
        _print_next_steps(console, base, result, api_key)
        console.print(
            f"\nthe demo took {time.monotonic() - began:.0f} s (engine start {ready:.0f} s, "
            f"{result.tally.sent:,} readings in {result.tally.elapsed:.0f} s). "
            "[bold]The engine keeps running: Ctrl-C stops it.[/]"
        )
        console.print(
            f"[bold]The dashboard:[/] {base}/ (sign in with the key {api_key})", soft_wrap=True
        )
        stopped = asyncio.ensure_future(stop.wait())
        exited = asyncio.ensure_future(engine.wait())
        await asyncio.wait({stopped, exited}, return_when=asyncio.FIRST_COMPLETED)
        stopped.cancel()
        exited.cancel()
        if engine.returncode is not None:
            raise DemoFailed(
                f"the engine exited ({engine.returncode}); its log ends:\n{_log_tail(log)}"
            )
        outcome = "done"
        return 0
    finally:
        code = await _stop_engine(engine, console)
        remove_signals()
        if outcome == "failed" or code != 0:
            console.print(f"the engine exited with status {code}; its log is kept in {log}")
        else:
            shutil.rmtree(options.folder, ignore_errors=True)
            console.print(f"engine and database stopped; demo folder {options.folder} removed")


def demo(options: DemoOptions) -> int:
    """Run the demo until Ctrl-C or SIGTERM; the exit status."""
    console = make_console()
    quiet_http_logs()
    try:
        return asyncio.run(_demo(options, console))
    except (DemoFailed, SimulationAborted, UnexpectedAnswer) as problem:
        make_console(stderr=True).print(f"[red]demo: {problem}[/]")
        return 1
    except (asyncio.CancelledError, KeyboardInterrupt):
        return EXIT_INTERRUPTED
