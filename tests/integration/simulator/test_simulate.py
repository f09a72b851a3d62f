"""The simulator against the real engine: every reading accounted for, faults found exactly."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import httpx
import pytest

from energy_ingest.config import Settings
from energy_ingest.simulator.client import EngineClient
from energy_ingest.simulator.detection import evaluate
from energy_ingest.simulator.fleet import FleetSpec, build_fleet
from energy_ingest.simulator.mess import MessRates
from energy_ingest.simulator.runner import backfill, realtime, realtime_start
from energy_ingest.simulator.simulation import FleetSimulation, minute_floor
from tests.support import start_engine

NOW = datetime.now(UTC)


def _simulation(spec: FleetSpec, minutes: int, mess: MessRates) -> FleetSimulation:
    # Ends at the current minute: every timestamp is in the past, none older than the run.
    start = minute_floor(NOW) - timedelta(minutes=minutes)
    return FleetSimulation(build_fleet(spec, minutes), mess, start)


async def test_backfill_flags_exactly_the_faulty_chargers(client: httpx.AsyncClient) -> None:
    spec = FleetSpec(vehicles=30, faulty_share=0.2, change_share=0.2, seed=11)
    # Every kind of mess but silence, which loses data: the next test covers that.
    mess = MessRates(jitter=0.5, retry=0.03, late=0.03, silence=0.0)
    simulation = _simulation(spec, 180, mess)

    tally = await backfill(EngineClient(client), simulation, batch_size=2_000, concurrency=3)

    counts = simulation.counts
    assert tally.rejected == 0, tally.messages
    assert tally.sent == counts.deliveries
    assert tally.stored == counts.unique_delivered
    assert tally.duplicates == counts.retries > 0
    assert counts.late > 0

    detection = await evaluate(EngineClient(client), simulation)
    assert all(verdict.judged for verdict in detection.verdicts)
    flagged = {v.vehicle_id for v in detection.verdicts if v.flagged}
    assert flagged == simulation.fleet.faulty_vehicle_ids
    assert len(flagged) == 6
    assert detection.exact
    assert {v.status for v in detection.verdicts} == {"ok", "underperforming"}


async def test_charger_changes_are_correlated_across_the_change(client: httpx.AsyncClient) -> None:
    spec = FleetSpec(vehicles=20, faulty_share=0.25, change_share=0.5, seed=3)
    simulation = _simulation(spec, 240, MessRates(silence=0.0))
    engine = EngineClient(client)

    await backfill(engine, simulation, batch_size=1_000)

    movers = [v for v in simulation.fleet.vehicles if v.change is not None]
    assert len(movers) == 10
    start, end = simulation.window
    for vehicle in movers:
        assert vehicle.change is not None
        answer = await engine.performance(vehicle.vehicle_id, start, end)
        assert answer["meterIds"] == [vehicle.charger.meter_id, vehicle.change.spare.meter_id]
        assert answer["correlation"] == "assignment"
        truth = simulation.truths[vehicle.vehicle_id]
        assert answer["energyConsumedAc"] == pytest.approx(truth.ac_sent, rel=1e-9)
        assert answer["energyDeliveredDc"] == pytest.approx(truth.dc_sent, rel=1e-9)
        assert answer["status"] == ("underperforming" if vehicle.faulty else "ok")


async def test_silent_devices_are_kept_apart_and_statuses_match_the_data_sent(
    client: httpx.AsyncClient,
) -> None:
    spec = FleetSpec(vehicles=30, faulty_share=0.2, change_share=0.1, seed=5)
    simulation = _simulation(spec, 180, MessRates(silence=0.02))

    await backfill(EngineClient(client), simulation, batch_size=2_000)
    detection = await evaluate(EngineClient(client), simulation)

    assert simulation.counts.lost > 0
    assert detection.data_lost, "the seed is chosen so that some readings are lost while charging"
    assert detection.disagreements == ()
    assert detection.false_positives == detection.false_negatives == 0
    assert detection.true_positives == sum(1 for v in detection.verdicts if v.judged and v.faulty)


async def test_realtime_posts_single_readings_that_are_never_in_the_future(
    client: httpx.AsyncClient,
) -> None:
    spec = FleetSpec(vehicles=5, faulty_share=0.2, change_share=0.2, seed=2)
    minutes, speedup = 20, 100_000.0
    start = minute_floor(realtime_start(datetime.now(UTC), minutes, speedup))
    simulation = FleetSimulation(
        build_fleet(spec, minutes), MessRates(retry=0.05, late=0.05, silence=0.0), start
    )

    tally = await realtime(EngineClient(client), simulation, speedup=speedup)

    counts = simulation.counts
    assert tally.rejected == 0, tally.messages
    assert tally.requests == tally.sent == counts.deliveries
    assert tally.stored == counts.unique_delivered
    assert tally.duplicates == counts.retries
    detection = await evaluate(EngineClient(client), simulation)
    assert detection.disagreements == ()


async def test_an_overloaded_engine_is_retried_until_every_reading_is_stored(
    settings: Settings,
) -> None:
    # A write queue shorter than two batches: concurrent batches overflow it and get 503 (how
    # many depends on timing; the client's retry rule itself is tested without an engine).
    overloaded = settings.model_copy(update={"writer_queue_limit": 1_500})
    spec = FleetSpec(vehicles=20, seed=8)
    simulation = _simulation(spec, 120, MessRates(silence=0.0))

    async def brief_sleep(seconds: float) -> None:
        await asyncio.sleep(0.01)  # Retry-After is whole seconds; the test need not wait them

    async with start_engine(overloaded) as engine:
        client = EngineClient(engine.client, attempts=1_000, sleep=brief_sleep)
        tally = await backfill(client, simulation, batch_size=1_000, concurrency=6)

    assert tally.rejected == 0
    assert tally.stored == simulation.counts.unique_delivered
    assert tally.duplicates == simulation.counts.retries
