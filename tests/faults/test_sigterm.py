"""SIGTERM under load: stop accepting, commit everything accepted, exit 0."""

from __future__ import annotations

import asyncio
import time

import httpx
import pytest

from tests.faults.audit import audit
from tests.faults.load import Fleet, Ledger, Load
from tests.faults.processes import engine_process, living_members
from tests.figures import RecordFigures


async def _first_refusal(base_url: str, stopping: asyncio.Task[int]) -> float:
    """Seconds until a new connection is refused (the listening socket closed)."""
    started = time.monotonic()
    while True:
        try:
            async with httpx.AsyncClient(base_url=base_url, timeout=5) as client:
                await client.get("/healthz")
        except httpx.ConnectError:
            return time.monotonic() - started
        except httpx.TransportError:
            pass  # accepted, then closed by the shutdown: try again
        if stopping.done():
            return time.monotonic() - started
        await asyncio.sleep(0.005)


@pytest.mark.parametrize("workers", [1, 2])
async def test_sigterm_under_load_commits_every_accepted_reading_and_exits_0(
    workers: int, database_url: str, record_figures: RecordFigures
) -> None:
    fleet = Fleet(meters=48, vehicles=48)
    ledger = Ledger()
    async with engine_process(database_url, workers=workers) as engine:
        await engine.start()
        group = engine.pid
        async with Load(engine.base_url, fleet, ledger, headers=engine.headers, clients=12) as load:
            await load.wait_for_acknowledgements(5_000)
            answered_before = len(load.figures.acknowledged_at)
            signalled = time.monotonic()
            stopping = asyncio.create_task(engine.terminate())
            refused_after = await _first_refusal(engine.base_url, stopping)
            status = await stopping
            exited_after = time.monotonic() - signalled
        assert status == 0, engine.output()
        assert not living_members(group), "a worker outlived the engine"
    assert not load.figures.unexpected, load.summary()

    result = await audit(database_url, ledger)
    # Exact: nothing acknowledged is missing and nothing was stored without its 2xx answer, so
    # every request the engine had accepted was committed *and* answered before it exited.
    result.assert_exact()
    record_figures(
        {
            "readings acknowledged": len(ledger),
            "acknowledged readings lost": 0,
            "stored without an answer": result.stored_unacknowledged,
            "2xx answers after SIGTERM": len(load.figures.acknowledged_at) - answered_before,
            "new connections refused after (s)": refused_after,
            "SIGTERM to exit 0 (s)": exited_after,
            "connection errors (closed while stopping)": load.figures.connection_errors,
        }
    )
