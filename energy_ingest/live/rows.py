"""The rows of the live tables as types: `asyncpg.Record` stops at the repository."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any


@dataclass(frozen=True, slots=True)
class MeterLiveRow:
    """A meter's newest reading (`meter_live`)."""

    meter_id: str
    kwh_consumed_ac: float
    voltage: float
    ts: datetime
    received_at: datetime

    @classmethod
    def from_row(cls, row: Any) -> MeterLiveRow:
        return cls(
            meter_id=row["meter_id"],
            kwh_consumed_ac=row["kwh_consumed_ac"],
            voltage=row["voltage"],
            ts=row["ts"],
            received_at=row["received_at"],
        )


@dataclass(frozen=True, slots=True)
class VehicleLiveRow:
    """A vehicle's newest reading (`vehicle_live`)."""

    vehicle_id: str
    soc: float
    kwh_delivered_dc: float
    battery_temp: float
    ts: datetime
    received_at: datetime

    @classmethod
    def from_row(cls, row: Any) -> VehicleLiveRow:
        return cls(
            vehicle_id=row["vehicle_id"],
            soc=row["soc"],
            kwh_delivered_dc=row["kwh_delivered_dc"],
            battery_temp=row["battery_temp"],
            ts=row["ts"],
            received_at=row["received_at"],
        )


@dataclass(frozen=True, slots=True)
class SilentDeviceRow:
    """A device silent for longer than asked, or assigned and never heard from (no last_seen)."""

    kind: str
    device_id: str
    last_seen: datetime | None

    @classmethod
    def from_row(cls, row: Any) -> SilentDeviceRow:
        return cls(kind=row["kind"], device_id=row["device_id"], last_seen=row["last_seen"])
