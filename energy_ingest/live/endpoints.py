"""GET /v1/analytics/{meter,vehicle}/{id}/live: a device's current state, 404 when unknown;
GET /v1/analytics/fleet/devices: the devices that went silent."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Query, Response

from energy_ingest.errors import Forbidden, NotFound
from energy_ingest.live import repository, service
from energy_ingest.live.schemas import ChargerLive, MeterLive, SilentDevices, VehicleLive
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
            # Only for a meter that sends its register: the seed's answer stays as it was.
            **({"kwhRegisterAc": row.kwh_register_ac} if row.kwh_register_ac is not None else {}),
            **_freshness(row.ts, row.received_at),
        }
    )


@router.get("/charger/{chargePointId}/live", response_model=ChargerLive)
async def charger_live(principal: ReadKey, chargePointId: str, connection: ReadConn) -> Response:
    """A charger's connectors (OCPP): each one's status and its meter's newest reading."""
    principal.require_device(DeviceKind.METER, chargePointId)
    require_device_id("chargePointId", chargePointId)
    connectors = await repository.list_charger_connectors(connection, chargePointId)
    meter_ids = [f"{chargePointId}:{row.connector_id}" for row in connectors]
    meters = await repository.list_meters_live(connection, meter_ids)
    answer = []
    for row, meter_id in zip(connectors, meter_ids, strict=True):
        meter = meters.get(meter_id)
        answer.append(
            {
                "connectorId": row.connector_id,
                "status": row.status,
                "errorCode": row.error_code,
                "statusAt": row.status_at,
                "statusReceivedAt": row.received_at,
                "meterId": meter_id,
                "kwhConsumedAc": meter.kwh_consumed_ac if meter else None,
                "kwhRegisterAc": meter.kwh_register_ac if meter else None,
                "voltage": meter.voltage if meter else None,
                "lastUpdatedAt": meter.ts if meter else None,
            }
        )
    return json_response({"chargePointId": chargePointId, "connectors": answer})


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
            **({"kwhRegisterDc": row.kwh_register_dc} if row.kwh_register_dc is not None else {}),
            **_freshness(row.ts, row.received_at),
        }
    )


_DEVICES_DESCRIPTION = """
Devices whose newest reading (its own timestamp, as the live state holds it) is older than
`silentFor`, and devices in an open assignment that have never reported (`lastSeen` null).
Never-reported devices first, then the oldest `lastSeen` first (ties by kind, then id); pages
of `limit` rows, the next one asked for with `cursor` = the answer's `nextCursor`. Read scope;
a key bound to one device may not list the fleet (403).
"""


@router.get(
    "/fleet/devices",
    response_model=SilentDevices,
    description=_DEVICES_DESCRIPTION,
    responses={
        403: {"description": "A key without the read scope, or one bound to a device."},
        422: {"description": "A malformed kind, silentFor, limit or cursor (named)."},
    },
)
async def silent_devices(
    principal: ReadKey,
    connection: ReadConn,
    kind: Annotated[str | None, Query(description="meter or vehicle; both when left out")] = None,
    silent_for: Annotated[
        str | None,
        Query(alias="silentFor", description="ISO 8601 duration; default PT15M"),
    ] = None,
    limit: Annotated[int, Query(ge=1, le=1000, description="Rows a page, 1–1000")] = 100,
    cursor: Annotated[str | None, Query(description="nextCursor of the previous page")] = None,
) -> Response:
    if principal.device_id is not None:
        raise Forbidden(f"this key may only access {principal.bound_to()}, not the fleet")
    kinds = service.parse_kinds(kind)
    duration = service.parse_duration(silent_for)
    after = service.decode_cursor(cursor)
    answer = await service.silent_devices(connection, duration, kinds, after, limit)
    return json_response(answer)
