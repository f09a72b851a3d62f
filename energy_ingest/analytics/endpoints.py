"""GET /v1/analytics/performance/{vehicleId}?from=&to=."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

from fastapi import APIRouter, Query, Response

from energy_ingest.analytics.schemas import Performance
from energy_ingest.analytics.service import resolve_window, vehicle_performance
from energy_ingest.readings import DeviceKind
from energy_ingest.web.dependencies import ReadConn, ReadKey, SettingsDep
from energy_ingest.web.http import json_response, parse_query_timestamps
from energy_ingest.wire import require_device_id

router = APIRouter(prefix="/v1/analytics", tags=["analytics"])


@router.get(
    "/performance/{vehicleId}",
    response_model=Performance,
    responses={
        404: {"description": "The vehicle never reported and has no meter assignment."},
        422: {"description": "Malformed from/to, from ≥ to, or a span beyond the limit."},
    },
)
async def performance(
    principal: ReadKey,
    vehicleId: str,
    connection: ReadConn,
    settings: SettingsDep,
    start: Annotated[
        str | None, Query(alias="from", description="ISO 8601; default to − 24 h")
    ] = None,
    end: Annotated[str | None, Query(alias="to", description="ISO 8601; default now")] = None,
) -> Response:
    principal.require_device(DeviceKind.VEHICLE, vehicleId)
    require_device_id("vehicleId", vehicleId)
    parsed = parse_query_timestamps(**{"from": start, "to": end})
    window = resolve_window(
        parsed["from"], parsed["to"], datetime.now(UTC), settings.max_analytics_span
    )
    answer = await vehicle_performance(connection, vehicleId, window, settings.efficiency_threshold)
    return json_response(answer)
