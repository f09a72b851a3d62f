"""Assignment rows as types: `asyncpg.Record` stops at the repository."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any


@dataclass(frozen=True, slots=True)
class AssignmentRow:
    """One assignment: `meter_id` fed `vehicle_id` over [starts_at, ends_at); ends_at None
    while current."""

    id: int
    vehicle_id: str
    meter_id: str
    starts_at: datetime
    ends_at: datetime | None

    @classmethod
    def from_row(cls, row: Any) -> AssignmentRow:
        return cls(
            id=row["id"],
            vehicle_id=row["vehicle_id"],
            meter_id=row["meter_id"],
            starts_at=row["starts_at"],
            ends_at=row["ends_at"],
        )


@dataclass(frozen=True, slots=True)
class MeterClash:
    """The assignment that already gives the meter to another vehicle."""

    vehicle_id: str
    starts_at: datetime
    ends_at: datetime | None

    @classmethod
    def from_row(cls, row: Any) -> MeterClash:
        return cls(vehicle_id=row["vehicle_id"], starts_at=row["starts_at"], ends_at=row["ends_at"])


@dataclass(frozen=True, slots=True)
class VehicleClash:
    """The assignment that already gives the vehicle another meter."""

    meter_id: str
    starts_at: datetime
    ends_at: datetime | None

    @classmethod
    def from_row(cls, row: Any) -> VehicleClash:
        return cls(meter_id=row["meter_id"], starts_at=row["starts_at"], ends_at=row["ends_at"])
