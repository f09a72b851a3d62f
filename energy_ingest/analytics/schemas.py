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


EnergySource = Literal["interval", "register", "mixed"]


class DataQuality(BaseModel):
    """Where the window's kWh come from and what the accounting rules met on the way (the
    meters' AC and the vehicle's DC together)."""

    acSource: EnergySource | None = Field(
        description="What the meters' readings booked from; null without meter readings."
    )
    dcSource: EnergySource | None = Field(
        description="What the vehicle's readings booked from; null without vehicle readings."
    )
    gaps: int = Field(description="Readings further apart than EIE_GAP_SECONDS.")
    gapMinutes: float = Field(description="Minutes of readings missing in those gaps.")
    resets: int = Field(description="Register steps backwards that the next reading confirmed.")
    glitches: int = Field(description="Register steps backwards that the next reading took back.")
    rejectedDeltas: int = Field(
        description="Register steps above what the device could deliver (power cap): not booked."
    )
    reconciliationKwh: float | None = Field(
        description="Interval sum minus register steps over the readings that sent both (AC and "
        "DC added); null when no reading sent both."
    )
    acReconciliationKwh: float | None = Field(description="The same for the meters' AC alone.")
    dcReconciliationKwh: float | None = Field(description="The same for the vehicle's DC alone.")


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
    dataQuality: DataQuality


SeriesStep = Literal["1m", "5m", "15m", "1h", "1d"]


class SeriesBucket(BaseModel):
    """One bucket; a bucket without readings is still listed, with nulls and zero dataPoints."""

    start: datetime = Field(description="The bucket's aligned start (see the step).")
    energyConsumedAc: float | None = Field(
        description="kWh of the feeding meter(s) in the bucket; null without a meter reading."
    )
    energyDeliveredDc: float | None = Field(
        description="kWh delivered to the battery; null without a vehicle reading."
    )
    efficiency: float | None = Field(description="DC/AC; null unless both sides have readings.")
    soc: float | None = Field(description="State of charge of the bucket's last vehicle reading.")
    averageBatteryTemp: float | None
    maxBatteryTemp: float | None
    dataPoints: DataPoints


class Series(BaseModel):
    """A vehicle's energy per time bucket."""

    vehicleId: str
    step: SeriesStep
    buckets: list[SeriesBucket]
