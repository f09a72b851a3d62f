"""The rows of the live tables as types: `asyncpg.Record` stops at the repository."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from energy_ingest.db.rows import Row


@dataclass(frozen=True, slots=True)
class MeterLiveRow(Row):
    """A meter's newest reading (`meter_live`)."""

    meter_id: str
    kwh_consumed_ac: float | None
    voltage: float
    kwh_register_ac: float | None
    ts: datetime
    received_at: datetime


@dataclass(frozen=True, slots=True)
class VehicleLiveRow(Row):
    """A vehicle's newest reading (`vehicle_live`)."""

    vehicle_id: str
    soc: float
    kwh_delivered_dc: float | None
    battery_temp: float
    kwh_register_dc: float | None
    ts: datetime
    received_at: datetime


@dataclass(frozen=True, slots=True)
class SilentDeviceRow(Row):
    """A device silent for longer than asked, or assigned and never heard from (no last_seen)."""

    kind: str
    device_id: str
    last_seen: datetime | None


@dataclass(frozen=True, slots=True)
class ConnectorRow(Row):
    """A charger connector's newest status (`charger_connectors`, kept by OCPP)."""

    connector_id: int
    status: str
    error_code: str
    status_at: datetime | None
    received_at: datetime
