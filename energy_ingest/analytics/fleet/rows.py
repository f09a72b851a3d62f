"""The rows the fleet answer reads, as types: `asyncpg.Record` stops at the repository."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from energy_ingest.db.rows import Row


@dataclass(frozen=True, slots=True)
class FleetTotals(Row):
    """The whole fleet over the window: counts by status and exact totals."""

    vehicles: int
    ok: int
    underperforming: int
    implausible: int
    insufficient_data: int
    silent: int
    total_ac: Decimal
    total_dc: Decimal
    total_loss: Decimal | None
    efficiency_bins: list[int] | None


@dataclass(frozen=True, slots=True)
class FleetRow(Row):
    """One vehicle of the page: its exact sums, what decided its correlation, its position."""

    vehicle_id: str
    last_seen: datetime | None
    has_assignments: bool
    same_id_meter_usable: bool
    ac: Decimal
    dc: Decimal
    meter_points: int
    vehicle_points: int
    average_battery_temp: Decimal | None
    status: str
    sort_key: Decimal | None
    meter_ids: list[str]
    expected_minutes: Decimal | None
    charging_ac: Decimal
    charging_dc: Decimal
    charging_minutes: int
    threshold: Decimal
    threshold_rule: str
    standby_ac: Decimal | None
    standby_minutes: int | None
    sessions: int | None
    ac_interval_readings: int | None
    ac_register_readings: int | None
    dc_interval_readings: int | None
    dc_register_readings: int | None
    gaps: int | None
    gap_minutes: float | None
    resets: int | None
    glitches: int | None
    rejected_deltas: int | None
    ac_reconciliation_kwh: Decimal | None
    dc_reconciliation_kwh: Decimal | None


@dataclass(frozen=True, slots=True)
class FleetResult:
    """One row of the statement: the summary, and a vehicle of the page (None: empty page)."""

    summary: FleetTotals
    vehicle: FleetRow | None
