"""The rows the fleet answer reads, as types: `asyncpg.Record` stops at the repository."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any


@dataclass(frozen=True, slots=True)
class FleetVehicle:
    """A vehicle the engine knows, with what decides its correlation and when it last reported."""

    vehicle_id: str
    last_seen: datetime | None
    has_assignments: bool
    same_id_meter_usable: bool

    @classmethod
    def from_row(cls, row: Any) -> FleetVehicle:
        return cls(
            vehicle_id=row["vehicle_id"],
            last_seen=row["last_seen"],
            has_assignments=row["has_assignments"],
            same_id_meter_usable=row["same_id_meter_usable"],
        )


@dataclass(frozen=True, slots=True)
class FleetAssignment:
    """An assignment overlapping the window, clipped to it."""

    vehicle_id: str
    meter_id: str
    clipped_from: datetime
    clipped_to: datetime

    @classmethod
    def from_row(cls, row: Any) -> FleetAssignment:
        return cls(
            vehicle_id=row["vehicle_id"],
            meter_id=row["meter_id"],
            clipped_from=row["clipped_from"],
            clipped_to=row["clipped_to"],
        )


@dataclass(frozen=True, slots=True)
class MeterSums:
    """One owner's meter readings over its pieces: count and exact AC sum."""

    data_points: int
    kwh_consumed_ac: Decimal


@dataclass(frozen=True, slots=True)
class VehicleSums:
    """One owner's vehicle readings over its pieces: count, exact DC sum, average temperature."""

    data_points: int
    kwh_delivered_dc: Decimal
    average_battery_temp: Decimal | None
