"""A vehicle's AC, DC, efficiency, SoC and temperatures per time bucket, for charts.

The AC side finds its meters exactly as the performance summary does (`find_meter_feed`) and
reads the same spans, so a series' buckets add up to the performance answer of its window.
A register step that closes a gap is booked whole by the reading that closes it; a series
spreads it evenly over the gap (the part of the gap inside the window), so a chart shows the
energy when it flowed: the buckets still add up to the same total.
"""

from __future__ import annotations

from bisect import bisect_right
from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

from energy_ingest.analytics import repository
from energy_ingest.analytics.rows import GapDelta
from energy_ingest.analytics.service import Window, find_meter_feed, floor_hour, whole_hours
from energy_ingest.config import DEFAULT_REGISTER_RULES, RegisterRules
from energy_ingest.db.pool import ReadConnection
from energy_ingest.errors import FieldProblem, ValidationFailed

STEPS: dict[str, timedelta] = {
    "1m": timedelta(minutes=1),
    "5m": timedelta(minutes=5),
    "15m": timedelta(minutes=15),
    "1h": timedelta(hours=1),
    "1d": timedelta(days=1),
}
DEFAULT_STEP = "1h"
MAX_BUCKETS = 2000
"""A chart is at most a few thousand pixels wide: 2,000 points is 33 h at 1m, 83 days at 1h."""

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


@dataclass(frozen=True, slots=True)
class Buckets:
    """The buckets of a window: `starts` label them (aligned), `thresholds` split the window
    (the first is the window's own start, so a partial first bucket holds only the window)."""

    starts: list[datetime]
    thresholds: list[datetime]


def parse_step(step: str | None) -> str:
    step = DEFAULT_STEP if step is None else step
    if step not in STEPS:
        raise ValidationFailed(
            [
                FieldProblem(
                    field="step", rule="one_of", message=f"must be one of {', '.join(STEPS)}"
                )
            ]
        )
    return step


def parse_zone(tz: str | None) -> ZoneInfo:
    """An IANA zone by name ("Europe/Berlin"); 422 naming `tz` for anything else."""
    name = "UTC" if tz is None else tz
    try:
        return ZoneInfo(name)
    except (ValueError, KeyError, OSError):  # unknown, or not a zone name at all ("../x")
        raise ValidationFailed(
            [FieldProblem(field="tz", rule="iana_zone", message="must be an IANA zone name")]
        ) from None


def bucket_window(window: Window, step: str, zone: ZoneInfo) -> Buckets:
    """The buckets that [start, end) touches; 422 naming `step` beyond MAX_BUCKETS.

    `1d` buckets start at local midnight in `zone` (23 or 25 hours long on DST days); shorter
    steps at whole multiples of the step since 1970-01-01 UTC, which is also the local clock in
    every zone whose offset is whole hours.
    """
    if step == "1d":
        day = window.start.astimezone(zone).date()
        starts: list[datetime] = []
        while True:
            start = datetime.combine(day, time(), tzinfo=zone).astimezone(UTC)
            if start >= window.end:
                break
            starts.append(start)
            day += timedelta(days=1)
        if starts[0] > window.start:  # a zone whose midnight does not exist on that day
            starts.insert(0, window.start)
    else:
        width = STEPS[step]
        first = window.start - (window.start - _EPOCH) % width
        count = -((first - window.end) // width)  # ceiling division
        if count > MAX_BUCKETS:
            raise ValidationFailed(
                [
                    FieldProblem(
                        field="step",
                        rule="max_buckets",
                        message=(
                            f"from–to at step {step} is {count} buckets; at most {MAX_BUCKETS}:"
                            " choose a longer step or a shorter from–to window"
                        ),
                    )
                ]
            )
        starts = [first + index * width for index in range(count)]
    return Buckets(starts=starts, thresholds=[window.start, *starts[1:]])


def spread_gaps(
    deltas: list[GapDelta], thresholds: list[datetime], end: datetime
) -> dict[int, Decimal]:
    """What to add to each bucket (numbered from 1) so that every gap-closing step is spread
    over its gap rather than booked at its closing reading: in equal parts on the minutes the
    device missed (one reading a minute), each part in the bucket its reading would have gone
    to; a part from before the window stays in the first bucket (the total does not change)."""
    moves: dict[int, Decimal] = {}
    for delta in deltas:
        closing = bisect_right(thresholds, delta.ts)
        moves[closing] = moves.get(closing, Decimal(0)) - delta.kwh
        parts = max(1, round(delta.elapsed_seconds / 60))
        step = timedelta(seconds=delta.elapsed_seconds / parts)
        share = delta.kwh / parts
        for part in range(1, parts + 1):
            moment = delta.ts - (parts - part) * step
            number = max(1, bisect_right(thresholds, min(moment, delta.ts)))
            moves[number] = moves.get(number, Decimal(0)) + share
    return moves


async def vehicle_series(
    connection: ReadConnection,
    vehicle_id: str,
    window: Window,
    step: str,
    zone: ZoneInfo,
    rules: RegisterRules = DEFAULT_REGISTER_RULES,
) -> dict[str, Any]:
    """Every bucket of the window, those without readings too: a gap is drawn as a gap."""
    buckets = bucket_window(window, step, zone)
    # Buckets whose every bound inside the window is a whole UTC hour hold whole hourly rollup
    # rows: their whole hours are read from the rollups, only partial hours from history.
    on_hours = all(floor_hour(start) == start for start in buckets.thresholds[1:])
    whole = whole_hours(window) if on_hours else None
    async with connection.transaction(isolation="repeatable_read", readonly=True):
        feed = await find_meter_feed(connection, vehicle_id, window)
        vehicle = await repository.summarize_vehicle_series(
            connection,
            vehicle_id,
            window.start,
            window.end,
            buckets.thresholds,
            rules,
            whole_hours=whole,
        )
        meter = await repository.summarize_meter_series(
            connection, feed.spans, buckets.thresholds, rules, from_rollups=on_hours
        )
        dc_moves = spread_gaps(
            await repository.list_vehicle_gap_deltas(
                connection, vehicle_id, window.start, window.end, rules
            ),
            buckets.thresholds,
            window.end,
        )
        ac_moves = spread_gaps(
            await repository.list_meter_gap_deltas(connection, feed.spans, rules),
            buckets.thresholds,
            window.end,
        )
    vehicle_by_bucket = {row.bucket: row for row in vehicle}
    meter_by_bucket = {row.bucket: row for row in meter}
    answer = []
    for number, start in enumerate(buckets.starts, start=1):
        dc_row = vehicle_by_bucket.get(number)
        ac_row = meter_by_bucket.get(number)
        ac = _moved(ac_row.kwh_consumed_ac if ac_row else None, ac_moves.get(number))
        dc = _moved(dc_row.kwh_delivered_dc if dc_row else None, dc_moves.get(number))
        answer.append(
            {
                "start": start,
                "energyConsumedAc": _number(ac),
                "energyDeliveredDc": _number(dc),
                "efficiency": float(dc / ac) if ac and dc is not None else None,
                "soc": _number(dc_row.soc) if dc_row else None,
                "averageBatteryTemp": _number(dc_row.average_battery_temp) if dc_row else None,
                "maxBatteryTemp": _number(dc_row.max_battery_temp) if dc_row else None,
                "dataPoints": {
                    "vehicle": dc_row.data_points if dc_row else 0,
                    "meter": ac_row.data_points if ac_row else 0,
                },
            }
        )
    return {"vehicleId": vehicle_id, "step": step, "buckets": answer}


def _moved(value: Decimal | None, move: Decimal | None) -> Decimal | None:
    """A bucket's energy with the part of a gap's step spread into (or out of) it."""
    if move is None:
        return value
    return (value or Decimal(0)) + move


def _number(value: Decimal | None) -> float | None:
    return None if value is None else float(value)
