"""The 24-hour (or any window's) efficiency of a vehicle, with its meters found by assignment."""

from __future__ import annotations

import decimal
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from energy_ingest.analytics import charging, repository
from energy_ingest.analytics.charging import ThresholdMode
from energy_ingest.analytics.rows import AssignmentSpan, Quality, VehiclePresence
from energy_ingest.analytics.schemas import Correlation, Status
from energy_ingest.config import DEFAULT_REGISTER_RULES, RegisterRules
from energy_ingest.db.pool import ReadConnection
from energy_ingest.errors import FieldProblem, NotFound, ValidationFailed


@dataclass(frozen=True, slots=True)
class Window:
    """A half-open [start, end) time window."""

    start: datetime
    end: datetime


HOUR = timedelta(hours=1)


def floor_hour(moment: datetime) -> datetime:
    """The UTC hour `moment` falls in."""
    return moment.astimezone(UTC).replace(minute=0, second=0, microsecond=0)


def ceil_hour(moment: datetime) -> datetime:
    """The first UTC hour boundary at or after `moment`."""
    floor = floor_hour(moment)
    return floor if floor == moment else floor + HOUR


def whole_hours(window: Window) -> tuple[datetime, datetime] | None:
    """The whole UTC hours inside the window, [first, end) — what the rollups answer; the rest
    of the window (partial hours) is read from history. None when it holds no whole hour."""
    first, end = ceil_hour(window.start), floor_hour(window.end)
    return (first, end) if first < end else None


def resolve_window(
    start: datetime | None, end: datetime | None, now: datetime, max_span: timedelta
) -> Window:
    """Defaults: end = now, start = end − 24 h. `from` < `to` and span ≤ max_span, else 422.

    `now` is cut to whole milliseconds: the answer's period is written in milliseconds (as the
    seed's clients expect) and is the exact window the sums cover.
    """
    now = now.replace(microsecond=now.microsecond - now.microsecond % 1000)
    end = end or (start + timedelta(hours=24) if start else now)
    start = start or end - timedelta(hours=24)
    if start >= end:
        raise ValidationFailed(
            [FieldProblem(field="from", rule="before_to", message="must be earlier than to")]
        )
    if end - start > max_span:
        raise ValidationFailed(
            [
                FieldProblem(
                    field="to", rule="max_span", message=f"the window may span at most {max_span}"
                )
            ]
        )
    return Window(start, end)


_EXACT = decimal.Context(prec=1000)
"""Wide enough that a product of the database's sums is never rounded."""


def classify(
    ac: Decimal, dc: Decimal, vehicle_points: int, meter_points: int, threshold: float
) -> Status:
    """ok, underperforming (DC/AC below threshold), implausible (DC > AC) or insufficient-data."""
    if vehicle_points == 0 or meter_points == 0 or ac <= 0:
        return "insufficient-data"
    if dc > ac:
        return "implausible"
    # DC against threshold × AC, exactly (no rounded quotient), with 0.85 as written, not its
    # binary neighbour: the fleet statement (fleet.sql) judges the same way.
    if dc < _EXACT.multiply(Decimal(str(threshold)), ac):
        return "underperforming"
    return "ok"


@dataclass(frozen=True, slots=True)
class Judging:
    """How a vehicle's charging is split into sessions and judged (settings of the engine)."""

    threshold: float
    threshold_mode: ThresholdMode = "flat"
    session_gap_minutes: int = 5
    rules: RegisterRules = DEFAULT_REGISTER_RULES


async def vehicle_performance(
    connection: ReadConnection, vehicle_id: str, window: Window, judging: Judging
) -> dict[str, Any]:
    """AC booked over each assignment overlapping the window, clipped to it, against DC; the
    same AC split into charging and standby.

    All statements read one snapshot, so a batch committed meanwhile is counted on both sides
    or on neither.
    """
    async with connection.transaction(isolation="repeatable_read", readonly=True):
        return await _vehicle_performance(connection, vehicle_id, window, judging)


async def vehicle_sessions(
    connection: ReadConnection,
    vehicle_id: str,
    window: Window,
    gap_minutes: int,
    rules: RegisterRules = DEFAULT_REGISTER_RULES,
) -> list[dict[str, Any]]:
    """The vehicle's charging sessions in the window, in time order, fed by the meters the
    performance answer finds (404 as it does)."""
    async with connection.transaction(isolation="repeatable_read", readonly=True):
        await find_meter_feed(connection, vehicle_id, window)  # 404 as the performance answer
        rows = await repository.summarize_vehicle_sessions(
            connection, vehicle_id, window.start, window.end, gap_minutes, rules
        )
    return [charging.session_answer(session) for session in charging.split_of(rows).sessions]


@dataclass(frozen=True, slots=True)
class MeterFeed:
    """The meters that fed a vehicle over a window: how they were found, and their spans."""

    correlation: Correlation
    spans: list[tuple[str, datetime, datetime]]  # (meter id, clipped start, clipped end)


async def find_meter_feed(connection: ReadConnection, vehicle_id: str, window: Window) -> MeterFeed:
    """404 for a vehicle never seen; else its meters over the window, clipped to it.

    Time-ranged assignments when the vehicle has any; the seed's same-id meter for a vehicle
    nobody assigned (and only when no assignment gives that meter to anybody); else none.
    Every answer that speaks of a vehicle's AC (performance, series) finds its meters here.
    """
    presence = await repository.get_vehicle_presence(connection, vehicle_id)
    if not presence.has_reported and not presence.has_assignments:
        raise NotFound(f"vehicle {vehicle_id} has never reported and has no meter assignment")
    assigned = (
        await repository.list_assignments_in_window(
            connection, vehicle_id, window.start, window.end
        )
        if presence.has_assignments
        else []
    )
    correlation, spans = correlate(vehicle_id, window, presence, assigned)
    return MeterFeed(correlation, spans)


async def _vehicle_performance(
    connection: ReadConnection, vehicle_id: str, window: Window, judging: Judging
) -> dict[str, Any]:
    feed = await find_meter_feed(connection, vehicle_id, window)
    correlation, spans = feed.correlation, feed.spans

    vehicle = await repository.summarize_vehicle_window(
        connection, vehicle_id, window.start, window.end, judging.rules
    )

    meter = await repository.summarize_meter_spans(connection, spans, judging.rules)
    split = charging.split_of(
        await repository.summarize_vehicle_sessions(
            connection,
            vehicle_id,
            window.start,
            window.end,
            judging.session_gap_minutes,
            judging.rules,
        )
    )
    numbers = performance_numbers(
        ac=meter.kwh_consumed_ac,
        dc=vehicle.kwh_delivered_dc,
        vehicle_points=vehicle.data_points,
        meter_points=meter.data_points,
        average_battery_temp=vehicle.average_battery_temp,
        threshold=judging.threshold,
    )
    threshold, rule = charging.threshold_for(judging.threshold_mode, judging.threshold, split)
    if split.meaningful:
        # The charging minutes are judged; without them (no DC, or no AC while charging) the
        # whole window is, exactly as the seed judged it.
        numbers["status"] = classify(
            split.kwh_consumed_ac,
            split.kwh_delivered_dc,
            vehicle.data_points,
            meter.data_points,
            threshold,
        )
    return {
        "vehicleId": vehicle_id,
        "period": {"start": window.start, "end": window.end},
        **numbers,
        "minBatteryTemp": _number(vehicle.min_battery_temp),
        "maxBatteryTemp": _number(vehicle.max_battery_temp),
        "dataPoints": {"vehicle": vehicle.data_points, "meter": meter.data_points},
        "meterIds": meter_ids_of(spans),
        "correlation": correlation,
        "dataQuality": data_quality(meter, vehicle),
        "charging": charging.charging_answer(split),
        "standby": charging.standby_answer(split),
        "threshold": threshold,
        "thresholdRule": rule,
    }


def data_quality(meter: Quality, vehicle: Quality) -> dict[str, Any]:
    """Where the window's kWh come from and what the accounting rules met on the way, both
    sides together (the meters' AC and the vehicle's DC)."""
    reconciled = [
        side.reconciliation_kwh for side in (meter, vehicle) if side.reconciliation_kwh is not None
    ]
    return {
        "acSource": meter.source,
        "dcSource": vehicle.source,
        "gaps": meter.gaps + vehicle.gaps,
        "gapMinutes": round(meter.gap_minutes + vehicle.gap_minutes, 2),
        "resets": meter.resets + vehicle.resets,
        "glitches": meter.glitches + vehicle.glitches,
        "rejectedDeltas": meter.rejected_deltas + vehicle.rejected_deltas,
        "reconciliationKwh": float(sum(reconciled, Decimal(0))) if reconciled else None,
        "acReconciliationKwh": _number(meter.reconciliation_kwh),
        "dcReconciliationKwh": _number(vehicle.reconciliation_kwh),
    }


Span = tuple[str, datetime, datetime]
"""A meter feeding the vehicle over [start, end)."""


def correlate(
    vehicle_id: str,
    window: Window,
    presence: VehiclePresence,
    assigned: Sequence[AssignmentSpan],
) -> tuple[Correlation, list[Span]]:
    """Which meters fed the vehicle over the window, and by which rule.

    `assigned` are the vehicle's assignments overlapping the window, clipped to it. A vehicle
    ever assigned a meter is correlated by its assignments only; one never assigned falls back
    to the seed's rule, the meter of the same id, when that meter has reported and feeds
    nobody by assignment.
    """
    if presence.has_assignments:
        return "assignment", [
            (span.meter_id, span.clipped_from, span.clipped_to) for span in assigned
        ]
    if presence.same_id_meter_usable:
        return "same-id", [(vehicle_id, window.start, window.end)]
    return "none", []


def meter_ids_of(spans: Sequence[Span]) -> list[str]:
    """The meters of `spans` in order of first use, once each."""
    return list(dict.fromkeys(meter_id for meter_id, _, _ in spans))


def performance_numbers(
    *,
    ac: Decimal,
    dc: Decimal,
    vehicle_points: int,
    meter_points: int,
    average_battery_temp: Decimal | None,
    threshold: float,
) -> dict[str, Any]:
    """The answer's numbers and status from the exact sums, for one vehicle or a fleet row."""
    # Exact decimals from the database; the answer's numbers are their nearest floats, so a
    # sum of 0.1s reads 83.5145, not 83.51450000000017.
    efficiency = dc / ac if ac > 0 else None
    return {
        "energyConsumedAc": float(ac),
        "energyDeliveredDc": float(dc),
        "efficiencyRatio": float(round(efficiency * 100, 2)) if efficiency is not None else None,
        "efficiency": float(efficiency) if efficiency is not None else None,
        # Without a single meter reading there is no AC to lose energy from: null, not −DC.
        "energyLossKwh": float(ac - dc) if meter_points else None,
        "averageBatteryTemp": _number(average_battery_temp),
        "status": classify(ac, dc, vehicle_points, meter_points, threshold),
    }


def _number(value: Decimal | None) -> float | None:
    """A JSON number (not a string) for a decimal of the database; null stays null."""
    return None if value is None else float(value)
