"""`simulate` as the CLI runs it (plan, preflight, progress, report) over the ASGI client."""

from __future__ import annotations

import io
from datetime import timedelta

import httpx
import pytest
from rich.console import Console

from energy_ingest.simulator.command import RunOptions, SimulationAborted, run
from energy_ingest.simulator.fleet import FleetSpec
from energy_ingest.simulator.mess import MessRates


def _console() -> tuple[Console, io.StringIO]:
    output = io.StringIO()
    return Console(file=output, width=160), output


async def test_simulate_reports_readings_and_detection(client: httpx.AsyncClient) -> None:
    options = RunOptions(
        duration=timedelta(hours=2),
        spec=FleetSpec(vehicles=25, faulty_share=0.12, change_share=0.1, seed=21),
        mess=MessRates(silence=0.0, retry=0.02),
        batch_size=3_000,
    )
    console, output = _console()

    result = await run(options, console, http=client)

    assert result.detection is not None
    assert result.detection.exact
    assert result.detection.true_positives == 3
    assert result.tally.stored == result.simulation.counts.unique_delivered
    text = output.getvalue()
    assert "3 true positives" in text
    assert "0 false positives" in text
    assert "engine statuses consistent with the readings sent: 25/25" in text
    assert "The 10 vehicles with the lowest efficiency" in text


async def test_simulating_the_same_fleet_twice_is_refused(client: httpx.AsyncClient) -> None:
    options = RunOptions(duration=timedelta(minutes=20), spec=FleetSpec(vehicles=2), worst=0)
    await run(options, _console()[0], http=client)

    with pytest.raises(SimulationAborted, match="--prefix"):
        await run(options, _console()[0], http=client)
    other = RunOptions(
        duration=timedelta(minutes=20), spec=FleetSpec(vehicles=2, prefix="other"), worst=0
    )
    assert (await run(other, _console()[0], http=client)).detection is not None
