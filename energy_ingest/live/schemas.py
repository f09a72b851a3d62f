"""Answers of the live endpoints: the seed's fields plus receivedAt and ageSeconds."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, Field


class MeterLive(BaseModel):
    meterId: str
    kwhConsumedAc: float
    voltage: float
    lastUpdatedAt: datetime = Field(description="Timestamp of the newest reading.")
    receivedAt: datetime = Field(description="When the engine stored that reading.")
    ageSeconds: float = Field(description="Seconds between lastUpdatedAt and now.")


class VehicleLive(BaseModel):
    vehicleId: str
    soc: float
    kwhDeliveredDc: float
    batteryTemp: float
    lastUpdatedAt: datetime = Field(description="Timestamp of the newest reading.")
    receivedAt: datetime = Field(description="When the engine stored that reading.")
    ageSeconds: float = Field(description="Seconds between lastUpdatedAt and now.")
