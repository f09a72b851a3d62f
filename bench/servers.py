"""The HTTP servers under test as real subprocesses: the engine and the naive baseline."""

from __future__ import annotations

import asyncio
import os
import resource
import signal
import socket
import sys
import time
from collections.abc import AsyncIterator, Mapping, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from bench.http_load import HttpConnection, ProtocolError, encode_call
from energy_ingest.config import Settings
from energy_ingest.server import FILE_DESCRIPTOR_RESERVE

HOST = "127.0.0.1"
_STOP_TIMEOUT_SECONDS = 60.0


def free_port() -> int:
    """A loopback TCP port nobody listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind((HOST, 0))
        port: int = probe.getsockname()[1]
        return port


def fit_connection_cap() -> str | None:
    """Cap the engine's connections to what this machine's open-file limit holds, unless set.

    The engine lowers its default cap (sized for a fleet) to the hard open-file limit minus a
    reserve itself, but warns, and the bench counts every warning of the servers' log as a
    problem. The bench opens at most a few dozen connections, so on a machine whose limit is
    below the default it sets EIE_MAX_CONNECTIONS to the same value the engine would choose;
    the report lists it with the engine's environment. A note saying so, or None.
    """
    if "EIE_MAX_CONNECTIONS" in os.environ:
        return None
    default = Settings.model_fields["max_connections"].default
    hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
    if hard == resource.RLIM_INFINITY or hard - FILE_DESCRIPTOR_RESERVE >= default:
        return None
    fits = max(1, hard - FILE_DESCRIPTOR_RESERVE)
    os.environ["EIE_MAX_CONNECTIONS"] = str(fits)
    return (
        f"EIE_MAX_CONNECTIONS={fits}: this machine's open-file limit ({hard}) holds fewer than "
        f"the engine's default {default:,} connections, so the bench sets the cap the engine "
        "would lower itself to (without its warning); the bench opens at most a few dozen."
    )


def engine_command(database_url: str, port: int, workers: int) -> list[str]:
    """`energy-ingest serve` of this virtual environment, on loopback."""
    executable = Path(sys.executable).parent / "energy-ingest"
    return [
        str(executable), "serve", "--host", HOST, "--port", str(port),
        "--workers", str(workers), "--database-url", database_url,
    ]  # fmt: skip


def naive_command(database_url: str, port: int, connections: int) -> list[str]:
    """The engine's HTTP stack with the per-reading writer (`python -m bench.naive_server`)."""
    return [
        sys.executable, "-m", "bench.naive_server", "--host", HOST, "--port", str(port),
        "--connections", str(connections), "--database-url", database_url,
    ]  # fmt: skip


def http_alone_command(port: int) -> list[str]:
    """The HTTP server with nothing behind it (`python -m bench.http_alone`)."""
    return [sys.executable, "-m", "bench.http_alone", "--host", HOST, "--port", str(port)]


@dataclass(slots=True)
class ServerProcess:
    """A running server subprocess and what its start and stop took."""

    name: str
    process: asyncio.subprocess.Process
    port: int
    startup_seconds: float = 0.0
    exit_code: int | None = None
    shutdown_seconds: float | None = None

    @property
    def pid(self) -> int:
        """The process id (the supervisor's, with several workers)."""
        return self.process.pid


async def _wait_until_ready(server: ServerProcess) -> None:
    probe = encode_call("GET", "/readyz")
    while True:
        if server.process.returncode is not None:
            raise RuntimeError(
                f"{server.name} exited with {server.process.returncode} before it was ready"
            )
        connection = HttpConnection(HOST, server.port)
        try:
            status, _ = await connection.call(probe)
            if status == 200:
                return
        except (OSError, asyncio.IncompleteReadError, ProtocolError):
            pass
        finally:
            await connection.close()
        await asyncio.sleep(0.1)


@asynccontextmanager
async def running_server(
    name: str,
    command: Sequence[str],
    port: int,
    log: IO[bytes],
    startup_timeout: float,
    environment: Mapping[str, str] | None = None,
) -> AsyncIterator[ServerProcess]:
    """Start `command` (in `environment`, default this process's), wait for /readyz; on exit
    SIGTERM it and wait (SIGKILL after a minute)."""
    log.write(f"\n===== {name} =====\n".encode())
    log.flush()
    started = time.perf_counter()
    process = await asyncio.create_subprocess_exec(
        *command, stdin=asyncio.subprocess.DEVNULL, stdout=log, stderr=log, env=environment
    )
    server = ServerProcess(name, process, port)
    try:
        try:
            async with asyncio.timeout(startup_timeout):
                await _wait_until_ready(server)
        except TimeoutError as exc:
            raise RuntimeError(f"{name} was not ready within {startup_timeout:g} s") from exc
        server.startup_seconds = time.perf_counter() - started
        yield server
    finally:
        if process.returncode is None:
            stopping = time.perf_counter()
            process.send_signal(signal.SIGTERM)
            try:
                await asyncio.wait_for(process.wait(), timeout=_STOP_TIMEOUT_SECONDS)
            except TimeoutError:
                process.kill()
                await process.wait()
            server.shutdown_seconds = time.perf_counter() - stopping
        server.exit_code = process.returncode


@dataclass(slots=True)
class Profiler:
    """`py-spy record` attached to a server for one phase (only with --profile-dir)."""

    process: asyncio.subprocess.Process
    output: Path


async def start_profiler(
    py_spy: Path, server: ServerProcess, output: Path, log: IO[bytes]
) -> Profiler:
    """Sample the server and its worker processes into a collapsed-stack file."""
    process = await asyncio.create_subprocess_exec(
        str(py_spy), "record", "--pid", str(server.pid), "--subprocesses", "--format", "raw",
        "--rate", "200", "--nonblocking", "--output", str(output),
        stdin=asyncio.subprocess.DEVNULL, stdout=log, stderr=log,
    )  # fmt: skip
    await asyncio.sleep(1.0)  # let it attach before the load starts
    return Profiler(process, output)


async def stop_profiler(profiler: Profiler) -> None:
    """Stop sampling (SIGINT makes py-spy write its file)."""
    if profiler.process.returncode is None:
        profiler.process.send_signal(signal.SIGINT)
        try:
            await asyncio.wait_for(profiler.process.wait(), timeout=30.0)
        except TimeoutError:
            profiler.process.kill()
            await profiler.process.wait()
