"""Key requests and answers of /v1/keys."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from energy_ingest.keys.service import MAX_NAME_LENGTH
from energy_ingest.wire import DEVICE_ID_RULE, DeviceId, Timestamp

ScopeName = Literal["ingest", "read", "admin"]
DeviceKindName = Literal["meter", "vehicle"]


class CreateKey(BaseModel):
    """Body of POST /v1/keys."""

    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)

    scopes: list[ScopeName] = Field(
        min_length=1,
        description="ingest: write readings; read: live state and analytics; admin: everything, "
        "including assignments and keys.",
    )
    device_id: DeviceId | None = Field(
        default=None,
        alias="deviceId",
        description="Bind the key to this device: it may only write (and read) this device. "
        + DEVICE_ID_RULE,
    )
    device_kind: DeviceKindName | None = Field(
        default=None,
        alias="deviceKind",
        description="Required with deviceId: the key writes (and reads) the device only as a "
        "meter or only as a vehicle.",
    )
    name: str = Field(default="", max_length=MAX_NAME_LENGTH, description="What the key is for.")
    expires_at: Timestamp | None = Field(
        default=None,
        alias="expiresAt",
        description="When the key stops working (ISO 8601, in the future); unset: never.",
    )


class KeyInfo(BaseModel):
    """A key as listed: never its secret."""

    id: str = Field(description="The key's public id: the 12 hex characters after `eie_`.")
    name: str
    scopes: list[ScopeName]
    deviceId: str | None
    deviceKind: DeviceKindName | None
    createdAt: datetime
    revokedAt: datetime | None
    expiresAt: datetime | None


class CreatedKey(KeyInfo):
    key: str = Field(description="The whole key. Shown in this answer only; store it now.")
