"""Assignment requests and answers."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field

from energy_ingest.wire import DeviceId, Timestamp


class AssignMeter(BaseModel):
    """Body of PUT /v1/vehicles/{vehicleId}/meter."""

    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)

    meter_id: DeviceId = Field(alias="meterId")
    start: Timestamp | None = Field(
        default=None,
        alias="from",
        description="When the meter starts feeding the vehicle; default now.",
    )


class Assignment(BaseModel):
    """One assignment: the meter fed the vehicle over [from, to); `to` null while current."""

    id: int
    vehicleId: str
    meterId: str
    start: datetime = Field(alias="from")
    end: datetime | None = Field(alias="to")
