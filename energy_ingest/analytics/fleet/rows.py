"""The rows the fleet answer reads, as types: `asyncpg.Record` stops at the repository."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from energy_ingest.db.rows import Row


@dataclass(frozen=True, slots=True)
class FleetVehicle(Row):
    """A vehicle the engine knows, with what decides its correlation and when it last reported."""

    vehicle_id: str
    last_seen: datetime | None
    has_assignments: bool
    same_id_meter_usable: bool


@dataclass(frozen=True, slots=True)
class FleetAssignment(Row):
    """An assignment overlapping the window, clipped to it."""

    vehicle_id: str
    meter_id: str
    clipped_from: datetime
    clipped_to: datetime


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
