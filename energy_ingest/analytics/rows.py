"""The rows the performance summary reads, as types: `asyncpg.Record` stops at the repository.

Sums are the database's exact `Decimal`s; the service turns them into the answer's numbers.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from energy_ingest.db.rows import Row


@dataclass(frozen=True, slots=True)
class VehiclePresence(Row):
    """Whether a vehicle is known, and whether the same-id meter may stand in for assignments."""

    has_reported: bool
    has_assignments: bool
    same_id_meter_usable: bool


@dataclass(frozen=True, slots=True)
class Quality(Row):
    """What one side's readings over a window book from, and what went wrong with them."""

    interval_readings: int
    register_readings: int
    gaps: int
    gap_minutes: float
    resets: int
    glitches: int
    rejected_deltas: int
    reconciliation_kwh: Decimal | None
    """Interval sum minus register steps over the readings that sent both; None without any."""

    @property
    def source(self) -> str | None:
        """interval, register or mixed: what the side's readings booked from."""
        return source_of(self.interval_readings, self.register_readings)


def source_of(interval_readings: int, register_readings: int) -> str | None:
    """interval, register or mixed: what a side's readings booked from (None: no readings)."""
    if register_readings and interval_readings:
        return "mixed"
    if register_readings:
        return "register"
    return "interval" if interval_readings else None


@dataclass(frozen=True, slots=True)
class VehicleWindow(Quality):
    """A vehicle's readings over a window: count, exact DC booked, battery temperatures."""

    data_points: int
    kwh_delivered_dc: Decimal
    average_battery_temp: Decimal | None
    min_battery_temp: Decimal | None
    max_battery_temp: Decimal | None


@dataclass(frozen=True, slots=True)
class AssignmentSpan(Row):
    """An assignment overlapping the window, clipped to it."""

    meter_id: str
    clipped_from: datetime
    clipped_to: datetime


@dataclass(frozen=True, slots=True)
class MeterSpans(Quality):
    """The meters' readings over their spans: count and exact AC booked."""

    data_points: int
    kwh_consumed_ac: Decimal


@dataclass(frozen=True, slots=True)
class VehicleBucket(Row):
    """A vehicle's readings in one bucket of a series (`bucket` counts from 1)."""

    bucket: int
    data_points: int
    kwh_delivered_dc: Decimal
    soc: Decimal
    average_battery_temp: Decimal
    max_battery_temp: Decimal


@dataclass(frozen=True, slots=True)
class MeterBucket(Row):
    """The feeding meters' readings in one bucket of a series (`bucket` counts from 1)."""

    bucket: int
    data_points: int
    kwh_consumed_ac: Decimal


@dataclass(frozen=True, slots=True)
class GapDelta(Row):
    """A register step that closes a gap: booked whole at `ts`, spread over the gap in series."""

    ts: datetime
    elapsed_seconds: float
    kwh: Decimal


@dataclass(frozen=True, slots=True)
class SessionRow(Row):
    """One charging session of a window (null session columns: the window has none), with the
    window's standby sums, the same on every row."""

    starts_at: datetime | None
    ends_at: datetime | None
    meter_id: str | None
    kwh_consumed_ac: Decimal | None
    kwh_delivered_dc: Decimal | None
    minutes: int | None
    peak_kw: Decimal | None
    standby_kwh_consumed_ac: Decimal
    standby_minutes: int
