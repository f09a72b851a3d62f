"""Did the engine's analytics find the chargers the simulator made faulty? Confusion matrix.

The ground truth of a vehicle is the health of the charger feeding it: a vehicle that changes
charger moves to a spare of the same health, so the truth never depends on how much it
charged before or after the change. A verdict is only judged when the engine could know:

* the vehicle charged during the window (no energy, no efficiency: `insufficient-data`);
* no reading taken while it charged was lost to a silent device: a lost vehicle reading
  hides DC (a healthy charger looks faulty), a lost meter reading hides AC (DC > AC reads
  `implausible`). A register device loses nothing to silence (the next reading books it
  whole) unless its register resets or it never reports again, or the engine judges charging
  minutes (the energy lands in one minute). Those vehicles are reported apart, each with the
  status its delivered data calls for, so a gap is never counted as a detection failure.

Independently of the truth, each engine status is compared with the status the delivered
readings call for (same rule, computed here): any disagreement is an engine (or simulator)
bug, not noise. When the engine judges the charging efficiency (its answer has `charging`),
so does the expected status, with the threshold the answer says it applied.

Each vehicle's data quality is compared the same way: the register resets, glitches and
rejected deltas, the gaps and their minutes, the reconciliation of interval and register, and
the split of the meter's energy into charging and standby that the simulator injected into
the readings booked for the vehicle, against the engine's `dataQuality`, `charging` and
`standby` blocks.
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import Callable
from dataclasses import dataclass, fields
from typing import Any, Literal

from energy_ingest.simulator.client import EngineClient
from energy_ingest.simulator.runner import first_failure
from energy_ingest.simulator.simulation import FleetSimulation, VehicleTruth

Outcome = Literal["true positive", "false positive", "false negative", "true negative"]
UNDERPERFORMING = "underperforming"


def expected_status(truth: VehicleTruth, threshold: float, *, charging: bool = False) -> str:
    """The status the readings delivered for this vehicle call for (the engine's rule).

    `charging`: the engine judges the energy of charging minutes, not the whole window's.
    """
    ac, dc = (truth.charging_ac, truth.charging_dc) if charging else (truth.ac_sent, truth.dc_sent)
    # Sums of 0.1 Wh steps: rounded so that float noise never decides a comparison.
    ac, dc = round(ac, 6), round(dc, 6)
    if truth.vehicle_points == 0 or truth.meter_points == 0 or ac <= 0:
        return "insufficient-data"
    if dc > ac:
        return "implausible"
    if dc / ac < threshold:
        return UNDERPERFORMING
    return "ok"


# How close an engine figure must be to the injected one: kWh sums of 0.1 Wh steps, and gap
# minutes, which the engine answers to 2 decimals.
_KWH_TOLERANCE = 1e-4
_MINUTES_TOLERANCE = 0.005 + 1e-9
# Compared only when the engine answers them: not every engine splits these.
OPTIONAL_FIGURES = frozenset(
    {
        "charging_ac",
        "standby_ac",
        "ac_reconciliation_kwh",
        "dc_reconciliation_kwh",
        "ac_source",
        "dc_source",
    }
)


@dataclass(frozen=True, slots=True)
class Quality:
    """The data quality of one vehicle's readings (or of the fleet's, summed).

    The figures in `OPTIONAL_FIGURES` are None when the engine does not answer them; sources are
    `interval`, `register` or `mixed` (of a vehicle; a sum has none).
    """

    resets: int = 0
    glitches: int = 0
    rejected_deltas: int = 0
    gaps: int = 0
    gap_minutes: float = 0.0
    reconciliation_kwh: float | None = None
    ac_reconciliation_kwh: float | None = None
    dc_reconciliation_kwh: float | None = None
    charging_ac: float | None = None
    standby_ac: float | None = None
    ac_source: str | None = None
    dc_source: str | None = None

    def differences(self, found: Quality) -> tuple[str, ...]:
        """The names of the figures `found` gets wrong (optional ones it lacks: not compared)."""
        wrong = []
        for spec in fields(self):
            expected, got = getattr(self, spec.name), getattr(found, spec.name)
            if spec.name in OPTIONAL_FIGURES and got is None:
                continue
            if expected is None or got is None or isinstance(expected, str):
                if expected != got:
                    wrong.append(spec.name)
                continue
            tolerance = _MINUTES_TOLERANCE if spec.name == "gap_minutes" else _KWH_TOLERANCE
            if not math.isclose(float(expected), float(got), rel_tol=0.0, abs_tol=tolerance):
                wrong.append(spec.name)
        return tuple(wrong)

    def __add__(self, other: Quality) -> Quality:
        def add(a: float | None, b: float | None) -> float | None:
            return None if a is None and b is None else (a or 0.0) + (b or 0.0)

        return Quality(
            resets=self.resets + other.resets,
            glitches=self.glitches + other.glitches,
            rejected_deltas=self.rejected_deltas + other.rejected_deltas,
            gaps=self.gaps + other.gaps,
            gap_minutes=self.gap_minutes + other.gap_minutes,
            reconciliation_kwh=add(self.reconciliation_kwh, other.reconciliation_kwh),
            ac_reconciliation_kwh=add(self.ac_reconciliation_kwh, other.ac_reconciliation_kwh),
            dc_reconciliation_kwh=add(self.dc_reconciliation_kwh, other.dc_reconciliation_kwh),
            charging_ac=add(self.charging_ac, other.charging_ac),
            standby_ac=add(self.standby_ac, other.standby_ac),
        )


def injected_quality(truth: VehicleTruth) -> Quality:
    """What the simulator put into the readings booked for the vehicle."""
    return Quality(
        resets=truth.resets,
        glitches=truth.glitches,
        rejected_deltas=truth.rejected,
        gaps=truth.gaps,
        gap_minutes=truth.gap_minutes,
        reconciliation_kwh=truth.reconciliation,
        ac_reconciliation_kwh=truth.reconciliation_ac,
        dc_reconciliation_kwh=truth.reconciliation_dc,
        charging_ac=truth.charging_ac,
        standby_ac=truth.standby_ac,
        ac_source=truth.ac_source,
        dc_source=truth.dc_source,
    )


def found_quality(answer: dict[str, Any]) -> Quality | None:
    """What the engine's performance answer says about the data; None if it does not say."""
    quality = answer.get("dataQuality")
    if not isinstance(quality, dict):
        return None
    charging, standby = answer.get("charging"), answer.get("standby")

    def kwh(name: str) -> float | None:
        value = quality.get(name)
        return None if value is None else float(value)

    def source(name: str) -> str | None:
        value = quality.get(name)
        return None if value is None else str(value)

    return Quality(
        resets=int(quality["resets"]),
        glitches=int(quality["glitches"]),
        rejected_deltas=int(quality["rejectedDeltas"]),
        gaps=int(quality["gaps"]),
        gap_minutes=float(quality["gapMinutes"]),
        reconciliation_kwh=kwh("reconciliationKwh"),
        ac_reconciliation_kwh=kwh("acReconciliationKwh"),
        dc_reconciliation_kwh=kwh("dcReconciliationKwh"),
        ac_source=source("acSource"),
        dc_source=source("dcSource"),
        charging_ac=float(charging["energyConsumedAc"]) if isinstance(charging, dict) else None,
        standby_ac=float(standby["energyConsumedAc"]) if isinstance(standby, dict) else None,
    )


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
    injected: Quality = Quality()
    found: Quality | None = None
    standby_drawn: float = 0.0  # kWh the vehicle's meters drew on standby while feeding it
    charging_efficiency: bool = False  # `efficiency` and the status are of charging minutes

    @property
    def quality_differences(self) -> tuple[str, ...]:
        """The data-quality figures the engine gets wrong (none when it reports none)."""
        return () if self.found is None else self.injected.differences(self.found)

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

    @property
    def quality_reported(self) -> bool:
        """Whether the engine's answers carry a `dataQuality` block."""
        return any(verdict.found is not None for verdict in self.verdicts)

    @property
    def injected(self) -> Quality:
        """Everything injected into the readings booked for the fleet's vehicles."""
        return sum((verdict.injected for verdict in self.verdicts), Quality())

    @property
    def found(self) -> Quality:
        """Everything the engine's answers report."""
        return sum((v.found for v in self.verdicts if v.found is not None), Quality())

    @property
    def quality_disagreements(self) -> tuple[Verdict, ...]:
        """Vehicles whose data quality the engine reports otherwise than it was injected."""
        return tuple(verdict for verdict in self.verdicts if verdict.quality_differences)

    @property
    def found_what_was_injected(self) -> bool:
        """The engine reports data quality, and exactly what was injected, for every vehicle."""
        return self.quality_reported and not self.quality_disagreements


def _verdict(truth: VehicleTruth, answer: dict[str, Any], threshold: float) -> Verdict:
    charging = answer.get("charging")
    judged_charging = isinstance(charging, dict)
    applied = answer.get("threshold")
    if isinstance(applied, int | float) and not isinstance(applied, bool):
        threshold = float(applied)
    efficiency = charging.get("efficiency") if isinstance(charging, dict) else None
    return Verdict(
        vehicle_id=truth.vehicle_id,
        meter_ids=tuple(truth.meter_ids),
        faulty=truth.faulty,
        charger_efficiencies=tuple(charger.efficiency for charger in truth.chargers),
        charged=truth.charging_minutes > 0,
        # A register silent while charging books the energy whole, but in one minute: right
        # for the window, not for the split into charging minutes.
        data_lost=truth.lost_while_charging > 0
        or (judged_charging and truth.register_silent_while_charging > 0),
        expected_status=expected_status(truth, threshold, charging=judged_charging),
        status=str(answer["status"]),
        efficiency=efficiency if judged_charging else answer.get("efficiency"),
        energy_ac=float(answer["energyConsumedAc"]),
        energy_dc=float(answer["energyDeliveredDc"]),
        average_battery_temp=answer.get("averageBatteryTemp"),
        injected=injected_quality(truth),
        found=found_quality(answer),
        standby_drawn=truth.standby_true,
        charging_efficiency=judged_charging,
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
