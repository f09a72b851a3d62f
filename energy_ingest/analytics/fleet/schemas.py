"""The fleet performance answer (camelCase on the wire)."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, Field

from energy_ingest.analytics.schemas import (
    Charging,
    Correlation,
    DataPoints,
    DataQuality,
    Period,
    Standby,
    Status,
    ThresholdRule,
)


class Completeness(BaseModel):
    vehicle: float | None = Field(
        description="Vehicle readings received ÷ minutes of the window, 4 decimals."
    )
    meter: float | None = Field(
        description="Meter readings received ÷ minutes the meters were assigned in the window, "
        "4 decimals; null without a meter."
    )


class FleetVehicle(BaseModel):
    """One vehicle: the numbers GET /v1/analytics/performance/{vehicleId} answers for `period`."""

    vehicleId: str
    energyConsumedAc: float
    energyDeliveredDc: float
    efficiency: float | None
    efficiencyRatio: float | None
    energyLossKwh: float | None
    averageBatteryTemp: float | None
    status: Status = Field(
        description="The charging minutes' DC/AC against `threshold`; the whole window's when"
        " the window has no charging minute that drew AC."
    )
    meterIds: list[str]
    correlation: Correlation
    dataPoints: DataPoints
    completeness: Completeness
    lastSeen: datetime | None = Field(description="Timestamp of its newest reading ever.")
    dataQuality: DataQuality
    charging: Charging
    standby: Standby
    threshold: float = Field(description="The efficiency threshold the status applied.")
    thresholdRule: ThresholdRule


class EfficiencyBin(BaseModel):
    """Vehicles whose efficiency is in [from, to) (from null: below `to`; to null: `from` or
    more)."""

    from_: float | None = Field(alias="from")
    to: float | None
    vehicles: int


class FleetSummary(BaseModel):
    """The whole fleet over `period`, whatever the status filter or the page."""

    vehicles: int
    ok: int
    underperforming: int
    implausible: int
    insufficientData: int
    silent: int = Field(description="Vehicles whose newest reading is older than 15 minutes.")
    energyConsumedAc: float
    energyDeliveredDc: float
    efficiency: float | None = Field(description="All DC ÷ all AC; null when AC is 0.")
    energyLossKwh: float | None = Field(
        description="Sum of the vehicles' losses; null when no vehicle has meter readings."
    )
    efficiencyHistogram: list[EfficiencyBin] | None = Field(
        default=None,
        description="Only with `histogram=true`: every vehicle with an efficiency (AC above 0), "
        "by bins of 5 points from 50 % to 110 %, judged exactly — a histogram of the whole "
        "fleet, not of a page.",
    )


class FleetPerformance(BaseModel):
    """Every vehicle the engine knows over one window, ranked, one page at a time."""

    period: Period = Field(
        description="The exact window answered. Without from/to: the 24 whole UTC hours "
        "ending with the current hour."
    )
    summary: FleetSummary
    vehicles: list[FleetVehicle]
    nextCursor: str | None = Field(
        description="Pass as `cursor` for the next page; null at the end."
    )
