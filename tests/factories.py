"""Keyword-only factories of request bodies; timestamps are recent, inside the back-fill window.

The bodies are the engine's own `reading_body` of a reading, so they follow the wire format by
construction; `extra` adds or overrides fields (for bodies that must be refused).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from energy_ingest.readings import ValidMeterReading, ValidVehicleReading
from energy_ingest.wire import format_timestamp, reading_body


def minute(offset: int = 0, *, base: datetime | None = None) -> datetime:
    """A whole minute, `offset` minutes from the current one (negative: the past)."""
    start = (base or datetime.now(UTC)).replace(second=0, microsecond=0)
    return start + timedelta(minutes=offset)


def iso(moment: datetime) -> str:
    return format_timestamp(moment)


def meter_reading(
    *,
    meter_id: str = "meter-1",
    kwh: float = 1.25,
    voltage: float = 230.0,
    at: datetime | None = None,
    **extra: Any,
) -> dict[str, Any]:
    body = reading_body(ValidMeterReading(meter_id, kwh, voltage, at or minute(-1)))
    return {**body, **extra}


def vehicle_reading(
    *,
    vehicle_id: str = "vehicle-1",
    soc: float = 55.0,
    kwh: float = 1.1,
    temp: float = 31.5,
    at: datetime | None = None,
    **extra: Any,
) -> dict[str, Any]:
    body = reading_body(ValidVehicleReading(vehicle_id, soc, kwh, temp, at or minute(-1)))
    return {**body, **extra}
