"""Answers of the live endpoints: the seed's fields plus receivedAt and ageSeconds."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, Field


class MeterLive(BaseModel):
    meterId: str
    kwhConsumedAc: float | None = Field(
        description="The newest reading's interval energy; null when it sent only its register."
    )
    voltage: float
    kwhRegisterAc: float | None = Field(
        default=None, description="The newest reading's register (kWh); only when it sent one."
    )
    lastUpdatedAt: datetime = Field(description="Timestamp of the newest reading.")
    receivedAt: datetime = Field(description="When the engine stored that reading.")
    ageSeconds: float = Field(description="Seconds between lastUpdatedAt and now.")


class VehicleLive(BaseModel):
    vehicleId: str
    soc: float
    kwhDeliveredDc: float | None = Field(
        description="The newest reading's interval energy; null when it sent only its register."
    )
    batteryTemp: float
    kwhRegisterDc: float | None = Field(
        default=None, description="The newest reading's register (kWh); only when it sent one."
    )
    lastUpdatedAt: datetime = Field(description="Timestamp of the newest reading.")
    receivedAt: datetime = Field(description="When the engine stored that reading.")
    ageSeconds: float = Field(description="Seconds between lastUpdatedAt and now.")


class SilentDevice(BaseModel):
    kind: Literal["meter", "vehicle"]
    deviceId: str
    lastSeen: datetime | None = Field(
        description="Timestamp of the newest reading; null for an assigned device never heard from."
    )


class SilentDevices(BaseModel):
    """Silent devices, never-reported first, then oldest lastSeen first."""

    devices: list[SilentDevice]
    nextCursor: str | None = Field(
        description="Pass as `cursor` for the next page; null on the last page."
    )


class ConnectorLive(BaseModel):
    connectorId: int = Field(description="0 is the charge point itself, 1… its connectors.")
    status: str = Field(description="OCPP's ChargePointStatus as the charger sent it last.")
    errorCode: str
    statusAt: datetime | None = Field(description="When the charger says the status began.")
    statusReceivedAt: datetime = Field(description="When the engine got the status.")
    meterId: str = Field(description="The connector's meter: `{chargePointId}:{connectorId}`.")
    kwhConsumedAc: float | None = Field(
        description="The meter's newest interval energy; null without one."
    )
    kwhRegisterAc: float | None = Field(description="The meter's newest register; null without.")
    voltage: float | None
    lastUpdatedAt: datetime | None = Field(
        description="Timestamp of the meter's newest reading; null if it never reported."
    )


class ChargerLive(BaseModel):
    chargePointId: str
    connectors: list[ConnectorLive] = Field(
        description="Every connector that sent a StatusNotification, by id; none for a charger "
        "the engine has not heard from."
    )
