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


ThresholdRule = Literal["flat", "socket", "wallbox", "fast"]


class Charging(BaseModel):
    """The window's charging minutes: UTC minutes in which the vehicle took DC."""

    energyConsumedAc: float = Field(description="kWh of the feeding meter(s) in charging minutes.")
    energyDeliveredDc: float = Field(description="kWh delivered to the battery while charging.")
    efficiency: float | None = Field(description="DC/AC of the charging minutes; null without AC.")
    minutes: int = Field(description="Charging minutes.")
    sessions: int = Field(description="Charging sessions (as /vehicle/{vehicleId}/sessions).")


class Standby(BaseModel):
    """AC the feeding meter(s) drew in minutes the vehicle took no DC."""

    energyConsumedAc: float = Field(description="kWh of meter readings outside charging minutes.")
    minutes: int = Field(description="Minutes with a meter reading and no DC.")
    averagePowerW: float | None = Field(description="Standby AC over those minutes; null if 0.")


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
    status: Status = Field(
        description="The charging minutes' DC/AC against `threshold`; the whole window's when"
        " the window has no charging minute that drew AC."
    )
    dataQuality: DataQuality
    charging: Charging
    standby: Standby
    threshold: float = Field(description="The efficiency threshold the status applied.")
    thresholdRule: ThresholdRule = Field(
        description="flat (EIE_EFFICIENCY_THRESHOLD), or the power class of the charging minutes'"
        " average AC power (EIE_THRESHOLD_MODE=power-class)."
    )


class Session(BaseModel):
    """A maximal run of charging minutes fed by one meter, short gaps without DC inside."""

    start: datetime = Field(description="Its first charging minute (cut to the window).")
    end: datetime = Field(description="The end of its last charging minute (cut to the window).")
    meterId: str | None = Field(description="The meter feeding the vehicle; null: none.")
    energyConsumedAc: float = Field(description="kWh of the meter(s) in its charging minutes.")
    energyDeliveredDc: float = Field(description="kWh delivered to the battery.")
    efficiency: float | None = Field(description="DC/AC; null without AC.")
    averagePowerKw: float = Field(description="AC kWh over end − start, in kW.")
    peakPowerKw: float = Field(description="The highest AC kWh of one minute, × 60, in kW.")


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
