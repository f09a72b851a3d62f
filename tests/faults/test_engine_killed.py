"""kill -9 of the whole engine (supervisor and workers) mid-load, round after round."""

from __future__ import annotations

import asyncio
import random

from tests.faults.audit import audit, live_over_http
from tests.faults.load import Fleet, Ledger, Load
from tests.faults.processes import engine_process, living_members
from tests.figures import RecordFigures

ROUNDS = 3


async def test_kill_9_mid_load_loses_no_acknowledged_reading(
    database_url: str, record_figures: RecordFigures
) -> None:
    fleet = Fleet(meters=48, vehicles=48)
    ledger = Ledger()
    rng = random.Random(9)
    restarts: list[float] = []
    refused = broken = 0
    async with engine_process(database_url, workers=2) as engine:
        await engine.start()
        for round_number in range(ROUNDS):
            async with Load(
                engine.base_url,
                fleet,
                ledger,
                headers=engine.headers,
                clients=12,
                seed=round_number,
            ) as load:
                await load.wait_for_acknowledgements(3_000)
                await asyncio.sleep(rng.uniform(0.1, 0.6))  # somewhere mid-load, not on a boundary
                group = engine.pid
                engine.kill_hard()
                assert not living_members(group)
            assert not load.figures.unexpected, load.summary()
            assert load.figures.answers_503_without_retry_after == 0
            refused += load.figures.answers_503
            broken += load.figures.connection_errors

            # With the engine dead, the database alone must hold everything acknowledged.
            after_kill = await audit(database_url, ledger)
            after_kill.assert_nothing_lost()

            restarts.append(await engine.start())
            after_restart = await audit(database_url, ledger)
            after_restart.assert_nothing_lost()
            assert not await live_over_http(engine.base_url, ledger, engine.headers)
        assert await engine.terminate() == 0

    record_figures(
        {
            "kill -9 rounds": ROUNDS,
            "readings acknowledged": len(ledger),
            "acknowledged readings lost": 0,
            "stored, answer lost in the kill": after_restart.stored_unacknowledged,
            "live newer than acknowledged (devices)": after_restart.live_newer_than_acknowledged,
            "connection errors (killed mid-request)": broken,
            "answers 503": refused,
            "restart to ready, slowest (s)": max(restarts),
            "restart to ready, mean (s)": sum(restarts) / len(restarts),
        }
    )
