"""The performance answer: the seed's fields plus loss, temperature range, correlation, status."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, Field

Correlation = Literal["assignment", "same-id", "none"]
Status = Literal["ok", "underperforming", "implausible", "insufficient-data"]


class Period(BaseModel):
    start: datetime
    end: datetime


class DataPoints(BaseModel):
    vehicle: int
    meter: int


class Performance(BaseModel):
    """Efficiency of one vehicle over a window (default: the 24 hours ending now)."""

    vehicleId: str
    period: Period
    energyConsumedAc: float = Field(description="kWh drawn by the meter(s) feeding the vehicle.")
    energyDeliveredDc: float = Field(description="kWh delivered to the battery.")
    efficiencyRatio: float | None = Field(
        description="DC/AC in percent, 2 decimals; null when AC is 0."
    )
    efficiency: float | None = Field(
        description="DC/AC as an unrounded fraction; null when AC is 0."
    )
    energyLossKwh: float | None = Field(description="AC − DC; null without meter readings.")
    averageBatteryTemp: float | None
    minBatteryTemp: float | None
    maxBatteryTemp: float | None
    dataPoints: DataPoints
    meterIds: list[str]
    correlation: Correlation
    status: Status
