"""Register devices, their faults, gaps and standby against the real engine: found as injected."""

from __future__ import annotations

import io
from datetime import UTC, datetime, timedelta

import httpx
import pytest
from rich.console import Console

from energy_ingest.config import Settings
from energy_ingest.simulator.client import EngineClient
from energy_ingest.simulator.command import RunOptions, run
from energy_ingest.simulator.detection import evaluate
from energy_ingest.simulator.fleet import FieldsChoice, FleetSpec, build_fleet
from energy_ingest.simulator.mess import MessRates
from energy_ingest.simulator.runner import backfill
from energy_ingest.simulator.simulation import FleetSimulation, minute_floor
from tests.support import start_engine

# Far more faults than real devices make, so that a short run has every kind on many vehicles.
FAULTY_DEVICES = MessRates(
    jitter=0.5, retry=0.02, late=0.02, silence=0.03, reset=0.003, glitch=0.01, spike=0.005
)


def _simulation(spec: FleetSpec, minutes: int, mess: MessRates) -> FleetSimulation:
    start = minute_floor(datetime.now(UTC)) - timedelta(minutes=minutes)
    return FleetSimulation(build_fleet(spec, minutes), mess, start)


@pytest.mark.parametrize("fields", ["register", "mixed"])
async def test_the_engine_finds_every_fault_and_gap_the_simulator_injected(
    client: httpx.AsyncClient, fields: FieldsChoice
) -> None:
    spec = FleetSpec(
        vehicles=24, faulty_share=0.2, change_share=0.2, seed=17, energy_fields=fields, standby=True
    )
    simulation = _simulation(spec, 240, FAULTY_DEVICES)

    tally = await backfill(EngineClient(client), simulation, batch_size=2_000, concurrency=3)
    detection = await evaluate(EngineClient(client), simulation)

    assert tally.rejected == 0, tally.messages
    assert tally.stored == simulation.counts.unique_delivered
    injected, found = detection.injected, detection.found
    assert injected.resets > 0
    assert injected.glitches > 0
    assert injected.rejected_deltas > 0
    assert injected.gaps > 0
    assert detection.quality_reported
    assert detection.quality_disagreements == ()
    assert (found.resets, found.glitches, found.rejected_deltas, found.gaps) == (
        injected.resets,
        injected.glitches,
        injected.rejected_deltas,
        injected.gaps,
    )
    for verdict in detection.verdicts:
        truth = simulation.truths[verdict.vehicle_id]
        # Every kWh booked as the rules say: the register's energy across gaps and glitches
        # whole, nothing from a glitch, a spike or the interval before a reset.
        assert verdict.energy_ac == pytest.approx(truth.ac_sent, abs=1e-4)
        assert verdict.energy_dc == pytest.approx(truth.dc_sent, abs=1e-4)
    # The engine judges charging minutes, and splits charging from standby as injected.
    assert all(verdict.charging_efficiency for verdict in detection.verdicts)
    assert found.charging_ac is not None
    assert found.standby_ac is not None
    assert detection.disagreements == ()
    assert detection.false_positives == detection.false_negatives == 0


async def test_statuses_follow_the_threshold_the_engine_says_it_applied(
    settings: Settings,
) -> None:
    # Power classes: wall boxes are judged against 0.85, fast chargers here against 0.80; the
    # simulator reads which one the engine applied from each answer.
    spec = FleetSpec(vehicles=20, faulty_share=0.2, seed=29, energy_fields="mixed", standby=True)
    simulation = _simulation(spec, 180, FAULTY_DEVICES)
    power_class = settings.model_copy(
        update={"threshold_mode": "power-class", "efficiency_threshold": 0.8}
    )
    async with start_engine(power_class) as engine:
        client = EngineClient(engine.client)
        await backfill(client, simulation, batch_size=2_000)
        detection = await evaluate(client, simulation)
        applied = {
            (await client.performance(vehicle_id, *simulation.window))["threshold"]
            for vehicle_id in simulation.truths
        }

    assert applied == {0.85, 0.8}
    assert detection.disagreements == ()
    assert detection.found_what_was_injected


async def test_simulate_prints_what_it_injected_beside_what_the_engine_found(
    client: httpx.AsyncClient,
) -> None:
    options = RunOptions(
        duration=timedelta(hours=2),
        spec=FleetSpec(vehicles=12, seed=23, energy_fields="both", standby=True),
        mess=FAULTY_DEVICES,
        worst=0,
    )
    output = io.StringIO()

    result = await run(options, Console(file=output, width=160), http=client)

    assert result.detection is not None
    assert result.detection.found_what_was_injected
    text = output.getvalue()
    assert "Data quality" in text
    assert "vehicles whose data quality the engine reports as injected: 12/12" in text
    # Every device sends both: the interval sum and the register deltas are reconciled.
    assert result.detection.injected.reconciliation_kwh is not None
