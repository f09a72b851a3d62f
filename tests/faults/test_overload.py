"""Far more load than the engine can commit: 503 + Retry-After, no crash, normal service after."""

from __future__ import annotations

import asyncio
import time

import httpx

from tests.faults.audit import audit
from tests.faults.load import BATCH_SHAPES, Fleet, Ledger, Load, send_one
from tests.faults.processes import EngineProcess, engine_process
from tests.figures import RecordFigures

CALM_SECONDS = 3.0
FLOOD_SECONDS = 6.0
# A small queue (two requests' worth) and one commit at a time: the writer, not the HTTP
# side, is the bottleneck, and the queue overflows as soon as the flood starts.
_TIGHT_WRITER = {
    "EIE_WRITER_QUEUE_LIMIT": "2000",
    "EIE_WRITER_BATCH_SIZE": "250",
    "EIE_WRITER_CONCURRENCY": "1",
}


async def _watch(engine: EngineProcess, until: asyncio.Event) -> None:
    """Check every 100 ms that the engine process is alive."""
    while not until.is_set():
        assert engine.alive(), f"the engine died under overload:\n{engine.output()}"
        await asyncio.sleep(0.1)


def _batches(
    engine: EngineProcess,
    fleet: Fleet,
    ledger: Ledger,
    *,
    clients: int,
    seconds: float,
    pause: float = 0.05,
) -> Load:
    """Clients posting batches of 500–1,000 readings; `pause` after each 503."""
    return Load(
        engine.base_url,
        fleet,
        ledger,
        headers=engine.headers,
        clients=clients,
        shapes=BATCH_SHAPES,
        batch_size=(500, 1000),
        pause_after_refusal=pause,
        max_seconds=seconds,
    )


async def test_flood_is_refused_with_503_and_service_resumes(
    database_url: str, record_figures: RecordFigures
) -> None:
    fleet = Fleet(meters=96, vehicles=96)
    ledger = Ledger()
    async with engine_process(database_url, environment=_TIGHT_WRITER) as engine:
        await engine.start()
        # What it sustains: clients that back off after a 503, as well-behaved ones do.
        calm = _batches(engine, fleet, ledger, clients=8, seconds=CALM_SECONDS)
        calm_started = time.monotonic()
        async with calm:
            await asyncio.sleep(CALM_SECONDS)
        sustained = calm.figures.readings_acknowledged / (time.monotonic() - calm_started)
        assert not calm.figures.unexpected, calm.summary()

        flooding = asyncio.Event()
        watcher = asyncio.create_task(_watch(engine, flooding))
        # A hostile flood does not honour Retry-After: it re-sends at once.
        flood = _batches(engine, fleet, ledger, clients=48, seconds=FLOOD_SECONDS, pause=0.0)
        started = time.monotonic()
        async with flood:
            await asyncio.sleep(FLOOD_SECONDS)
        ended = time.monotonic()
        flood_seconds = ended - started
        flooding.set()
        await watcher

        # Recovery: the first request after the flood (retried, bounded for liveness only).
        deadline = ended + 60
        while True:
            sent = time.monotonic()
            answer = await send_one(engine.base_url, fleet, ledger, engine.headers)
            if answer.status_code == 201:
                break
            assert answer.status_code == 503, answer.text
            assert time.monotonic() < deadline, "no service after the flood"
            await asyncio.sleep(0.05)
        answered = time.monotonic()
        recovered_after = answered - ended
        probe_latency = answered - sent
        async with httpx.AsyncClient(base_url=engine.base_url, timeout=30) as client:
            assert (await client.get("/readyz")).status_code == 200
        assert engine.alive()
        assert await engine.terminate() == 0

    figures = flood.figures
    assert not figures.unexpected, flood.summary()
    assert figures.answers_503 > 0, "the queue never overflowed"
    assert figures.answers_503_without_retry_after == 0
    assert figures.connection_errors == 0, flood.summary()
    result = await audit(database_url, ledger)
    result.assert_exact()
    offered = figures.readings_sent / flood_seconds
    committed = figures.readings_acknowledged / flood_seconds
    record_figures(
        {
            "sustained, clients backing off (readings/s)": round(sustained),
            "flood clients × readings per request": "48 × 500–1000, re-sent at once on 503",
            "flood duration (s)": flood_seconds,
            "readings offered per s": round(offered),
            "offered ÷ sustained": offered / sustained,
            "readings committed per s during the flood": round(committed),
            "requests": figures.requests,
            "answers 503 (all with Retry-After)": figures.answers_503,
            "readings acknowledged": len(ledger),
            "acknowledged readings lost": 0,
            "flood end to first 2xx (s)": recovered_after,
            "latency of that request (s)": probe_latency,
        }
    )
