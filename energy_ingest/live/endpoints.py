"""GET /v1/analytics/{meter,vehicle}/{id}/live: a device's current state, 404 when unknown."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from fastapi import APIRouter, Response

from energy_ingest.errors import NotFound
from energy_ingest.live import repository
from energy_ingest.live.schemas import MeterLive, VehicleLive
from energy_ingest.readings import DeviceKind
from energy_ingest.web.dependencies import ReadConn, ReadKey
from energy_ingest.web.http import json_response
from energy_ingest.wire import require_device_id

router = APIRouter(prefix="/v1/analytics", tags=["live"])


def _freshness(ts: datetime, received_at: datetime) -> dict[str, Any]:
    age = (datetime.now(UTC) - ts).total_seconds()
    return {"lastUpdatedAt": ts, "receivedAt": received_at, "ageSeconds": round(age, 3)}


@router.get(
    "/meter/{meterId}/live",
    response_model=MeterLive,
    responses={404: {"description": "No reading of this meter was ever stored."}},
)
async def meter_live(principal: ReadKey, meterId: str, connection: ReadConn) -> Response:
    principal.require_device(DeviceKind.METER, meterId)
    require_device_id("meterId", meterId)
    row = await repository.get_meter_live(connection, meterId)
    if row is None:
        raise NotFound(f"meter {meterId} has not reported yet")
    return json_response(
        {
            "meterId": row.meter_id,
            "kwhConsumedAc": row.kwh_consumed_ac,
            "voltage": row.voltage,
            **_freshness(row.ts, row.received_at),
        }
    )


@router.get(
    "/vehicle/{vehicleId}/live",
    response_model=VehicleLive,
    responses={404: {"description": "No reading of this vehicle was ever stored."}},
)
async def vehicle_live(principal: ReadKey, vehicleId: str, connection: ReadConn) -> Response:
    principal.require_device(DeviceKind.VEHICLE, vehicleId)
    require_device_id("vehicleId", vehicleId)
    row = await repository.get_vehicle_live(connection, vehicleId)
    if row is None:
        raise NotFound(f"vehicle {vehicleId} has not reported yet")
    return json_response(
        {
            "vehicleId": row.vehicle_id,
            "soc": row.soc,
            "kwhDeliveredDc": row.kwh_delivered_dc,
            "batteryTemp": row.battery_temp,
            **_freshness(row.ts, row.received_at),
        }
    )
