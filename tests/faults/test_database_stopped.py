"""PostgreSQL stopped hard (immediate shutdown) under load, then started again.

The test owns its PostgreSQL (durable: fsync on, as in production) whatever TEST_DATABASE_URL
says, since it has to kill it.
"""

from __future__ import annotations

import asyncio
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest

from energy_ingest.db.embedded import EmbeddedServer
from tests.faults.audit import audit, live_over_http
from tests.faults.load import Fleet, Ledger, Load
from tests.faults.processes import EngineProcess, engine_process
from tests.figures import RecordFigures
from tests.support import wait_until_ready

OUTAGE_SECONDS = 3.0


@dataclass(frozen=True)
class OwnPostgres:
    server: EmbeddedServer
    url: str

    def stop_immediately(self) -> None:
        """`pg_ctl -m immediate stop`: every backend killed, no checkpoint; recovery on start."""
        subprocess.run(
            [str(self.server.bin / "pg_ctl"), "-D", str(self.server.data_dir), "-m", "immediate",
             "-w", "stop"],
            user=self.server.user,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            check=True,
            timeout=60,
        )  # fmt: skip

    def start(self) -> None:
        assert self.server.start() == self.url, "the server came back elsewhere"


@pytest.fixture(scope="module")
def own_postgres() -> Iterator[OwnPostgres]:
    # Short path: the server's socket lives in its data folder, removed with it.
    folder = Path(tempfile.mkdtemp(prefix="eie-faults-"))
    server = EmbeddedServer(folder / "data", durable=True)
    try:
        yield OwnPostgres(server, server.start())
    finally:
        server.stop()
        shutil.rmtree(folder, ignore_errors=True)


@dataclass
class Probes:
    """What /readyz and /healthz answered, and whether the engine process was alive."""

    ready: list[int] = field(default_factory=list)
    healthy: list[int | str] = field(default_factory=list)


async def _probe(engine: EngineProcess, until: asyncio.Event) -> Probes:
    probes = Probes()
    async with httpx.AsyncClient(base_url=engine.base_url, timeout=10) as client:
        while not until.is_set():
            assert engine.alive(), f"the engine died with the database:\n{engine.output()}"
            probes.ready.append((await client.get("/readyz")).status_code)
            probes.healthy.append((await client.get("/healthz")).status_code)
            await asyncio.sleep(0.1)
    return probes


async def test_postgres_immediate_shutdown_mid_load(
    own_postgres: OwnPostgres, record_figures: RecordFigures
) -> None:
    fleet = Fleet(meters=32, vehicles=32)
    ledger = Ledger()
    async with engine_process(own_postgres.url) as engine:
        await engine.start()
        async with Load(engine.base_url, fleet, ledger, headers=engine.headers, clients=8) as load:
            await load.wait_for_acknowledgements(3_000)
            stopping = time.monotonic()
            await asyncio.to_thread(own_postgres.stop_immediately)
            down = time.monotonic()
            refused_before = load.figures.answers_503

            outage_over = asyncio.Event()
            watching = asyncio.create_task(_probe(engine, outage_over))
            await asyncio.sleep(OUTAGE_SECONDS)
            outage_over.set()
            during = await watching
            refused_during = load.figures.answers_503 - refused_before

            await asyncio.to_thread(own_postgres.start)
            up = time.monotonic()
            ready_after = await wait_until_ready(
                engine.base_url,
                alive=engine.alive,
                output=engine.output,
                interval=0.05,
                request_timeout=10,
            )
            await load.wait_for_acknowledgements(3_000)  # served again, by the same process
            first_ingest = load.figures.first_acknowledgement_after(up)
            assert first_ingest is not None
        assert engine.alive(), f"the engine died:\n{engine.output()}"  # never restarted either
        assert not load.figures.unexpected, load.summary()
        assert load.figures.answers_503_without_retry_after == 0, load.summary()
        assert refused_during > 0, "ingest never answered 503 while the database was down"
        assert set(during.ready) == {503}, f"/readyz during the outage: {during.ready}"
        assert set(during.healthy) == {200}, f"/healthz during the outage: {during.healthy}"

        result = await audit(own_postgres.url, ledger)
        result.assert_nothing_lost()
        assert not await live_over_http(engine.base_url, ledger, engine.headers)
        assert await engine.terminate() == 0

    record_figures(
        {
            "readings acknowledged": len(ledger),
            "acknowledged readings lost": 0,
            "stored, answer lost in the crash": result.stored_unacknowledged,
            "answers 503 (all with Retry-After)": load.figures.answers_503,
            "answers 503 while the database was down": refused_during,
            "connection errors": load.figures.connection_errors,
            "/readyz 503 while down (probes)": len(during.ready),
            "immediate stop took (s)": down - stopping,
            "database down for (s)": up - down,
            "database up to /readyz 200 (s)": ready_after,
            "database up to first 2xx ingest (s)": first_ingest - up,
        }
    )
