"""Did the engine's analytics find the chargers the simulator made faulty? Confusion matrix.

The ground truth of a vehicle is the health of the charger feeding it: a vehicle that changes
charger moves to a spare of the same health, so the truth never depends on how much it
charged before or after the change. A verdict is only judged when the engine could know:

* the vehicle charged during the window (no energy, no efficiency: `insufficient-data`);
* no reading taken while it charged was lost to a silent device: a lost vehicle reading
  hides DC (a healthy charger looks faulty), a lost meter reading hides AC (DC > AC reads
  `implausible`). Those vehicles are reported apart, each with the status its delivered data
  calls for, so a gap is never counted as a detection failure.

Independently of the truth, each engine status is compared with the status the delivered
readings call for (same rule, computed here): any disagreement is an engine (or simulator)
bug, not noise.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

from energy_ingest.simulator.client import EngineClient
from energy_ingest.simulator.runner import first_failure
from energy_ingest.simulator.simulation import FleetSimulation, VehicleTruth

Outcome = Literal["true positive", "false positive", "false negative", "true negative"]
UNDERPERFORMING = "underperforming"


def expected_status(truth: VehicleTruth, threshold: float) -> str:
    """The status the readings delivered for this vehicle call for (the engine's rule)."""
    if truth.vehicle_points == 0 or truth.meter_points == 0 or truth.ac_sent <= 0:
        return "insufficient-data"
    if truth.dc_sent > truth.ac_sent:
        return "implausible"
    if truth.dc_sent / truth.ac_sent < threshold:
        return UNDERPERFORMING
    return "ok"


@dataclass(frozen=True, slots=True)
class Verdict:
    """One vehicle: what the simulator made it, what the engine says about it."""

    vehicle_id: str
    meter_ids: tuple[str, ...]
    faulty: bool
    charger_efficiencies: tuple[float, ...]
    charged: bool
    data_lost: bool
    expected_status: str
    status: str
    efficiency: float | None
    energy_ac: float
    energy_dc: float
    average_battery_temp: float | None

    @property
    def judged(self) -> bool:
        """Whether the engine had what it needs to find the truth."""
        return self.charged and not self.data_lost

    @property
    def flagged(self) -> bool:
        """Whether the engine calls the vehicle underperforming."""
        return self.status == UNDERPERFORMING

    @property
    def outcome(self) -> Outcome | None:
        """Its cell of the confusion matrix; None when not judged."""
        if not self.judged:
            return None
        if self.faulty:
            return "true positive" if self.flagged else "false negative"
        return "false positive" if self.flagged else "true negative"


@dataclass(frozen=True, slots=True)
class Detection:
    """Every vehicle's verdict and the confusion matrix over the judged ones."""

    verdicts: tuple[Verdict, ...]
    threshold: float

    def _count(self, outcome: Outcome) -> int:
        return sum(1 for verdict in self.verdicts if verdict.outcome == outcome)

    @property
    def true_positives(self) -> int:
        """Faulty chargers flagged underperforming."""
        return self._count("true positive")

    @property
    def false_positives(self) -> int:
        """Healthy chargers flagged underperforming."""
        return self._count("false positive")

    @property
    def false_negatives(self) -> int:
        """Faulty chargers not flagged."""
        return self._count("false negative")

    @property
    def true_negatives(self) -> int:
        """Healthy chargers not flagged."""
        return self._count("true negative")

    @property
    def faulty(self) -> int:
        """Vehicles fed by a faulty charger (judged or not)."""
        return sum(1 for verdict in self.verdicts if verdict.faulty)

    @property
    def not_charged(self) -> tuple[Verdict, ...]:
        """Vehicles that drew no energy in the window: nothing to judge."""
        return tuple(verdict for verdict in self.verdicts if not verdict.charged)

    @property
    def data_lost(self) -> tuple[Verdict, ...]:
        """Charged vehicles with readings lost while charging: judged on partial data."""
        return tuple(v for v in self.verdicts if v.charged and v.data_lost)

    @property
    def disagreements(self) -> tuple[Verdict, ...]:
        """Verdicts that differ from what the delivered readings call for."""
        return tuple(v for v in self.verdicts if v.status != v.expected_status)

    @property
    def exact(self) -> bool:
        """Every judged verdict right and every status consistent with the data sent."""
        return not (self.false_positives or self.false_negatives or self.disagreements)


def _verdict(truth: VehicleTruth, answer: dict[str, Any], threshold: float) -> Verdict:
    return Verdict(
        vehicle_id=truth.vehicle_id,
        meter_ids=tuple(truth.meter_ids),
        faulty=truth.faulty,
        charger_efficiencies=tuple(charger.efficiency for charger in truth.chargers),
        charged=truth.charging_minutes > 0,
        data_lost=truth.lost_while_charging > 0,
        expected_status=expected_status(truth, threshold),
        status=str(answer["status"]),
        efficiency=answer.get("efficiency"),
        energy_ac=float(answer["energyConsumedAc"]),
        energy_dc=float(answer["energyDeliveredDc"]),
        average_battery_temp=answer.get("averageBatteryTemp"),
    )


async def evaluate(
    client: EngineClient,
    simulation: FleetSimulation,
    *,
    threshold: float = 0.85,
    concurrency: int = 16,
    on_progress: Callable[[int], None] | None = None,
) -> Detection:
    """Ask the engine for every vehicle's performance over the run's window, and judge it."""
    start, end = simulation.window
    slots = asyncio.Semaphore(concurrency)
    truths = list(simulation.truths.values())
    verdicts: dict[str, Verdict] = {}

    async def judge(truth: VehicleTruth) -> None:
        async with slots:
            answer = await client.performance(truth.vehicle_id, start, end)
        verdicts[truth.vehicle_id] = _verdict(truth, answer, threshold)
        if on_progress is not None:
            on_progress(len(verdicts))

    try:
        async with asyncio.TaskGroup() as group:
            for truth in truths:
                group.create_task(judge(truth))
    except BaseExceptionGroup as failure:
        raise first_failure(failure) from None
    return Detection(
        verdicts=tuple(verdicts[truth.vehicle_id] for truth in truths), threshold=threshold
    )
