"""Assignment rows as types: `asyncpg.Record` stops at the repository."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from energy_ingest.db.rows import Row


@dataclass(frozen=True, slots=True)
class AssignmentRow(Row):
    """One assignment: `meter_id` fed `vehicle_id` over [starts_at, ends_at); ends_at None
    while current."""

    id: int
    vehicle_id: str
    meter_id: str
    starts_at: datetime
    ends_at: datetime | None


@dataclass(frozen=True, slots=True)
class MeterClash(Row):
    """The assignment that already gives the meter to another vehicle."""

    vehicle_id: str
    starts_at: datetime
    ends_at: datetime | None


@dataclass(frozen=True, slots=True)
class VehicleClash(Row):
    """The assignment that already gives the vehicle another meter."""

    meter_id: str
    starts_at: datetime
    ends_at: datetime | None
