"""GET /v1/analytics/performance/{vehicleId}, /vehicle/{vehicleId}/series and …/sessions."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

from fastapi import APIRouter, Query, Response

from energy_ingest.analytics.schemas import Performance, Series, Session
from energy_ingest.analytics.series import MAX_BUCKETS, parse_step, parse_zone, vehicle_series
from energy_ingest.analytics.service import (
    Judging,
    Window,
    resolve_window,
    vehicle_performance,
    vehicle_sessions,
)
from energy_ingest.auth.guard import Principal
from energy_ingest.config import Settings
from energy_ingest.readings import DeviceKind
from energy_ingest.web.dependencies import ReadConn, ReadKey, SettingsDep
from energy_ingest.web.http import json_response, parse_query_timestamps
from energy_ingest.wire import require_device_id

router = APIRouter(prefix="/v1/analytics", tags=["analytics"])


def _require_vehicle(principal: Principal, vehicle_id: str) -> None:
    """403 for a key bound to another device, 422 for an id that could never exist."""
    principal.require_device(DeviceKind.VEHICLE, vehicle_id)
    require_device_id("vehicleId", vehicle_id)


def _window(start: str | None, end: str | None, settings: Settings) -> Window:
    """The per-vehicle window of `from` / `to` (defaults: the 24 hours ending now)."""
    parsed = parse_query_timestamps(**{"from": start, "to": end})
    return resolve_window(
        parsed["from"], parsed["to"], datetime.now(UTC), settings.max_analytics_span
    )


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
    _require_vehicle(principal, vehicleId)
    window = _window(start, end, settings)
    judging = Judging(
        threshold=settings.efficiency_threshold,
        threshold_mode=settings.threshold_mode,
        session_gap_minutes=settings.session_gap_minutes,
        rules=settings.register_rules,
    )
    answer = await vehicle_performance(connection, vehicleId, window, judging)
    return json_response(answer)


_SESSIONS_DESCRIPTION = """
The vehicle's charging sessions in the window [from, to) (default: the 24 hours ending now),
in time order.

* A charging minute is a UTC minute in which the vehicle's readings deliver DC > 0. A session is
  a run of charging minutes with at most `EIE_SESSION_GAP_MINUTES` (5) minutes without DC
  between two of them, fed by one meter: when the vehicle moves to another meter mid-charge, the
  session ends and another begins (`meterId` null: no meter fed the vehicle then).
* Meters are found as for `/v1/analytics/performance/{vehicleId}`. A session's energies are those
  of its charging minutes (the meters' readings in them, the vehicle's), so the sessions add up
  to that answer's `charging` exactly; gap minutes count as standby.
* `start` and `end` are minute bounds, cut to the window. `averagePowerKw` is the AC over
  end − start, `peakPowerKw` the highest AC of one minute (both the grid side).
* A window of at most 31 days (422 naming `to`).
"""


@router.get(
    "/vehicle/{vehicleId}/sessions",
    response_model=list[Session],
    description=_SESSIONS_DESCRIPTION,
    responses={
        403: {"description": "A device-bound key of another device."},
        404: {"description": "The vehicle never reported and has no meter assignment."},
        422: {"description": "Malformed from/to, from ≥ to, or a span beyond the limit."},
    },
)
async def sessions(
    principal: ReadKey,
    vehicleId: str,
    connection: ReadConn,
    settings: SettingsDep,
    start: Annotated[
        str | None, Query(alias="from", description="ISO 8601; default to − 24 h")
    ] = None,
    end: Annotated[str | None, Query(alias="to", description="ISO 8601; default now")] = None,
) -> Response:
    _require_vehicle(principal, vehicleId)
    window = _window(start, end, settings)
    answer = await vehicle_sessions(
        connection, vehicleId, window, settings.session_gap_minutes, settings.register_rules
    )
    return json_response(answer)


_SERIES_DESCRIPTION = f"""
The vehicle's AC, DC, efficiency, state of charge and battery temperatures per bucket of the
window [from, to) (default: the 24 hours ending now, at step 1h).

* AC comes from the meters found as for `/v1/analytics/performance/{{vehicleId}}` (time-ranged
  assignments clipped to the window, else the same-id meter), so the buckets' energies add up
  to that endpoint's for the same from/to.
* `1d` buckets start at local midnight of `tz` (an IANA zone, default UTC; a DST day is 23 or 25
  hours long); shorter steps at multiples of the step since 1970-01-01T00:00Z. Readings are
  counted only inside [from, to): a first or last bucket the window cuts is partial, and still
  labelled by its aligned start.
* Every bucket of the window is listed: one without readings has null numbers and zero
  dataPoints, so a chart shows a gap as a gap. Energies are exact sums; efficiency is DC/AC.
* At most {MAX_BUCKETS} buckets (422 naming `step`), a window of at most 31 days (422 naming
  `to`).
"""


@router.get(
    "/vehicle/{vehicleId}/series",
    response_model=Series,
    description=_SERIES_DESCRIPTION,
    responses={
        403: {"description": "A device-bound key of another device."},
        404: {"description": "The vehicle never reported and has no meter assignment."},
        422: {
            "description": "Malformed from/to/step/tz, from ≥ to, or a span or bucket count"
            " beyond the limits."
        },
    },
)
async def series(
    principal: ReadKey,
    vehicleId: str,
    connection: ReadConn,
    settings: SettingsDep,
    start: Annotated[
        str | None, Query(alias="from", description="ISO 8601; default to − 24 h")
    ] = None,
    end: Annotated[str | None, Query(alias="to", description="ISO 8601; default now")] = None,
    step: Annotated[str | None, Query(description="1m, 5m, 15m, 1h (default) or 1d")] = None,
    tz: Annotated[
        str | None, Query(description="IANA zone of the 1d buckets' midnight; default UTC")
    ] = None,
) -> Response:
    _require_vehicle(principal, vehicleId)
    chosen_step = parse_step(step)
    zone = parse_zone(tz)
    window = _window(start, end, settings)
    answer = await vehicle_series(
        connection, vehicleId, window, chosen_step, zone, settings.register_rules
    )
    return json_response(answer)
