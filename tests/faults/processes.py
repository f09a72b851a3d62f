"""Real `energy-ingest serve` processes for the fault tests: started, watched, killed, stopped."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Iterator, Mapping
from pathlib import Path
from typing import IO

from tests.support import free_port, wait_until_ready

READY_TIMEOUT_SECONDS = 90.0
EXIT_TIMEOUT_SECONDS = 60.0

# Variables of the test run that must not leak into the engine under test.
_ISOLATED = ("DATABASE_URL", "EIE_", "PROMETHEUS_MULTIPROC_DIR")


def process_stats() -> Iterator[tuple[int, list[str]]]:
    """Every process's pid and the fields of /proc/PID/stat after its name (state, ppid, pgrp
    …): the name may hold spaces and parentheses, so the fields are split after it."""
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue  # ended while we looked
        yield int(entry.name), stat.rsplit(")", 1)[1].split()


def living_members(group: int) -> list[int]:
    """Processes of a process group that still run (zombies left to be reaped do not count)."""
    return [
        pid
        for pid, (state, _, process_group, *_) in process_stats()
        if int(process_group) == group and state not in {"Z", "X"}
    ]


def children_of(parent: int) -> list[int]:
    """The processes whose parent is `parent`."""
    return [pid for pid, (_, ppid, *_) in process_stats() if int(ppid) == parent]


class EngineProcess:
    """`python -m energy_ingest serve` in a process group of its own, its output in a temp file.

    With `--workers N` the process started is uvicorn's supervisor and the workers are its
    children; the group holds them all, so a hard kill reaches every process of the engine.
    """

    def __init__(
        self,
        database_url: str,
        log: IO[bytes],
        scratch: Path,
        *,
        workers: int = 1,
        environment: Mapping[str, str] | None = None,
    ) -> None:
        self.database_url = database_url
        self.workers = workers
        self.port = free_port()
        self.base_url = f"http://127.0.0.1:{self.port}"
        # Authentication stays on, as in production: the first start mints the admin key and
        # writes it here, and every request of the tests carries it.
        self.key_file = scratch / "admin.key"
        self._environment = {
            **{k: v for k, v in os.environ.items() if not k.startswith(_ISOLATED)},
            "EIE_LOG_LEVEL": "warning",
            "EIE_ADMIN_KEY_FILE": str(self.key_file),
            **(environment or {}),
        }
        self._log = log
        self._scratch = scratch
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def headers(self) -> dict[str, str]:
        """The Authorization header with the admin key the engine's first start created."""
        return {"Authorization": f"Bearer {self.key_file.read_text().strip()}"}

    @property
    def pid(self) -> int:
        assert self._process is not None, "not started"
        return self._process.pid

    def alive(self) -> bool:
        return self._process is not None and self._process.poll() is None

    def output(self) -> str:
        """Everything the engine printed so far (for assertion messages)."""
        self._log.seek(0)
        return self._log.read().decode(errors="replace")[-6000:]

    async def start(self) -> float:
        """Start the engine and wait until /readyz answers 200; seconds it took."""
        assert not self.alive(), "already running"
        started = time.monotonic()
        self._spawn()
        await self.wait_ready(started + READY_TIMEOUT_SECONDS)
        return time.monotonic() - started

    def _spawn(self) -> None:
        command = [sys.executable, "-m", "energy_ingest", "serve", "--workers", str(self.workers)]
        command += ["--port", str(self.port), "--database-url", self.database_url]
        # A multi-worker engine keeps its metric files in a temporary folder that it removes on
        # a clean exit only; a fresh one of ours per start, so a killed engine leaves nothing.
        metrics = tempfile.mkdtemp(prefix="metrics-", dir=self._scratch)
        self._process = subprocess.Popen(
            command,
            env={**self._environment, "PROMETHEUS_MULTIPROC_DIR": metrics},
            stdin=subprocess.DEVNULL,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group: a kill reaches every worker
        )

    async def wait_ready(self, deadline: float) -> None:
        await wait_until_ready(
            self.base_url,
            within=deadline - time.monotonic(),
            alive=self.alive,
            output=self.output,
        )

    def kill_hard(self) -> None:
        """SIGKILL to every process of the engine at once, then wait until they are all gone."""
        if self._process is None:
            return
        group = self._process.pid
        # The group id is ours while its leader is not reaped or a member lives; once free it
        # may be reused by an unrelated process group, which must never get this signal.
        if self._process.returncode is None or living_members(group):
            with contextlib.suppress(ProcessLookupError):
                os.killpg(group, signal.SIGKILL)
        self._process.wait(timeout=EXIT_TIMEOUT_SECONDS)
        deadline = time.monotonic() + EXIT_TIMEOUT_SECONDS
        while living_members(group):
            assert time.monotonic() < deadline, "engine processes survived SIGKILL"
            time.sleep(0.02)

    async def terminate(self) -> int:
        """SIGTERM to the engine's main process (what an orchestrator sends); its exit status."""
        assert self._process is not None, "not started"
        self._process.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + EXIT_TIMEOUT_SECONDS
        while (status := self._process.poll()) is None:
            assert time.monotonic() < deadline, f"no exit after SIGTERM:\n{self.output()}"
            await asyncio.sleep(0.02)
        return status


@contextlib.asynccontextmanager
async def engine_process(
    database_url: str, *, workers: int = 1, environment: Mapping[str, str] | None = None
) -> AsyncIterator[EngineProcess]:
    """An engine (not started yet); its processes and files are all gone when the block ends."""
    with (
        tempfile.TemporaryFile() as log,
        tempfile.TemporaryDirectory(prefix="eie-faults-") as scratch,
    ):
        engine = EngineProcess(
            database_url, log, Path(scratch), workers=workers, environment=environment
        )
        try:
            yield engine
        finally:
            engine.kill_hard()


@contextlib.asynccontextmanager
async def ocpp_engine(
    database_url: str, environment: Mapping[str, str] | None = None
) -> AsyncIterator[EngineProcess]:
    """`energy-ingest serve` with OCPP on (and authentication, as in production), started."""
    async with engine_process(
        database_url, environment={"EIE_OCPP_ENABLED": "true", **(environment or {})}
    ) as engine:
        await engine.start()
        yield engine
