"""The rows the performance summary reads, as types: `asyncpg.Record` stops at the repository.

Sums are the database's exact `Decimal`s; the service turns them into the answer's numbers.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any


@dataclass(frozen=True, slots=True)
class VehiclePresence:
    """Whether a vehicle is known, and whether the same-id meter may stand in for assignments."""

    has_reported: bool
    has_assignments: bool
    same_id_meter_usable: bool

    @classmethod
    def from_row(cls, row: Any) -> VehiclePresence:
        return cls(
            has_reported=row["has_reported"],
            has_assignments=row["has_assignments"],
            same_id_meter_usable=row["same_id_meter_usable"],
        )


@dataclass(frozen=True, slots=True)
class VehicleWindow:
    """A vehicle's readings over a window: count, exact DC sum, battery temperatures."""

    data_points: int
    kwh_delivered_dc: Decimal
    average_battery_temp: Decimal | None
    min_battery_temp: Decimal | None
    max_battery_temp: Decimal | None

    @classmethod
    def from_row(cls, row: Any) -> VehicleWindow:
        return cls(
            data_points=row["data_points"],
            kwh_delivered_dc=row["kwh_delivered_dc"],
            average_battery_temp=row["average_battery_temp"],
            min_battery_temp=row["min_battery_temp"],
            max_battery_temp=row["max_battery_temp"],
        )


@dataclass(frozen=True, slots=True)
class AssignmentSpan:
    """An assignment overlapping the window, clipped to it."""

    meter_id: str
    clipped_from: datetime
    clipped_to: datetime

    @classmethod
    def from_row(cls, row: Any) -> AssignmentSpan:
        return cls(
            meter_id=row["meter_id"],
            clipped_from=row["clipped_from"],
            clipped_to=row["clipped_to"],
        )


@dataclass(frozen=True, slots=True)
class MeterSpans:
    """The meters' readings over their spans: count and exact AC sum."""

    data_points: int
    kwh_consumed_ac: Decimal

    @classmethod
    def from_row(cls, row: Any) -> MeterSpans:
        return cls(data_points=row["data_points"], kwh_consumed_ac=row["kwh_consumed_ac"])


@dataclass(frozen=True, slots=True)
class VehicleBucket:
    """A vehicle's readings in one bucket of a series (`bucket` counts from 1)."""

    bucket: int
    data_points: int
    kwh_delivered_dc: Decimal
    soc: Decimal
    average_battery_temp: Decimal
    max_battery_temp: Decimal

    @classmethod
    def from_row(cls, row: Any) -> VehicleBucket:
        return cls(
            bucket=row["bucket"],
            data_points=row["data_points"],
            kwh_delivered_dc=row["kwh_delivered_dc"],
            soc=row["soc"],
            average_battery_temp=row["average_battery_temp"],
            max_battery_temp=row["max_battery_temp"],
        )


@dataclass(frozen=True, slots=True)
class MeterBucket:
    """The feeding meters' readings in one bucket of a series (`bucket` counts from 1)."""

    bucket: int
    data_points: int
    kwh_consumed_ac: Decimal

    @classmethod
    def from_row(cls, row: Any) -> MeterBucket:
        return cls(
            bucket=row["bucket"],
            data_points=row["data_points"],
            kwh_consumed_ac=row["kwh_consumed_ac"],
        )
