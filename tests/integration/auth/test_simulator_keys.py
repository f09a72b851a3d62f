"""The simulator against a secured engine: refused without a key, complete with one."""

from __future__ import annotations

from datetime import timedelta

import pytest

from energy_ingest.simulator.client import AccessRefused, EngineClient
from energy_ingest.simulator.fleet import FleetSpec, build_fleet
from energy_ingest.simulator.mess import MessRates
from energy_ingest.simulator.runner import backfill
from energy_ingest.simulator.simulation import FleetSimulation, minute_floor
from tests.factories import minute
from tests.support import Engine, MakeKey


def _small_run() -> FleetSimulation:
    spec = FleetSpec(vehicles=4, faulty_share=0.0, change_share=0.0, seed=5)
    start = minute_floor(minute(0)) - timedelta(minutes=30)
    return FleetSimulation(build_fleet(spec, 30), MessRates(silence=0.0), start)


async def test_without_a_key_the_simulator_stops_with_what_to_do(secured: Engine) -> None:
    with pytest.raises(AccessRefused, match="--api-key or EIE_API_KEY"):
        await EngineClient(secured.client).has_assignments("sim-v0001")


async def test_an_ingest_key_is_not_enough_for_the_simulator(
    secured: Engine, make_key: MakeKey
) -> None:
    secured.client.headers.update(await make_key("ingest"))
    with pytest.raises(AccessRefused, match="403"):
        await backfill(EngineClient(secured.client), _small_run(), batch_size=500)


async def test_with_an_admin_key_every_reading_is_stored(
    secured: Engine, make_key: MakeKey
) -> None:
    secured.client.headers.update(await make_key("admin"))
    simulation = _small_run()
    tally = await backfill(EngineClient(secured.client), simulation, batch_size=500)
    assert tally.rejected == 0, tally.messages
    assert tally.stored == simulation.counts.unique_delivered > 0
