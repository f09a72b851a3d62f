"""PUT/DELETE /v1/vehicles/{vehicleId}/meter and GET /v1/vehicles/{vehicleId}/assignments."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request, Response
from pydantic import ValidationError

from energy_ingest.assignments import repository, service
from energy_ingest.assignments.schemas import Assignment, AssignMeter
from energy_ingest.errors import ValidationFailed
from energy_ingest.readings import DeviceKind
from energy_ingest.web.dependencies import (
    AdminConnections,
    AdminKey,
    ReadConn,
    ReadKey,
    SettingsDep,
)
from energy_ingest.web.http import json_response, parse_query_timestamps, read_json_body
from energy_ingest.wire import problems_from, require_device_id

router = APIRouter(prefix="/v1/vehicles", tags=["assignments"])

_CONFLICT: dict[int | str, dict[str, Any]] = {
    409: {
        "description": "Overlaps another assignment of the vehicle or the meter, or kept losing"
        " to concurrent changes of the same vehicle or meter (retry)."
    }
}


@router.put(
    "/{vehicleId}/meter",
    response_model=Assignment,
    responses={
        200: {"description": "The vehicle already has this meter; nothing changed."},
        201: {
            "description": "A new assignment started (the previous one ended at `from`).",
            "model": Assignment,
        },
        **_CONFLICT,
    },
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {
                "application/json": {"schema": {"$ref": "#/components/schemas/AssignMeter"}}
            },
        }
    },
)
async def assign_meter(
    _: AdminKey,
    vehicleId: str,
    request: Request,
    connect: AdminConnections,
    settings: SettingsDep,
) -> Response:
    require_device_id("vehicleId", vehicleId)
    body = await read_json_body(request, settings, max_bytes=settings.max_single_body_bytes)
    try:
        command = AssignMeter.model_validate(body)
    except ValidationError as error:
        raise ValidationFailed(problems_from(error)) from None
    start = command.start or datetime.now(UTC)
    async with connect() as connection:  # only now: the body is read and valid
        created, assignment = await service.assign_meter(
            connection, vehicleId, command.meter_id, start
        )
    return json_response(assignment, 201 if created else 200)


@router.delete(
    "/{vehicleId}/meter",
    response_model=Assignment,
    responses={404: {"description": "The vehicle has no current assignment."}, **_CONFLICT},
)
async def end_assignment(
    _: AdminKey,
    vehicleId: str,
    connect: AdminConnections,
    at: Annotated[str | None, Query(description="When it ends (ISO 8601); default now")] = None,
) -> Response:
    require_device_id("vehicleId", vehicleId)
    end = parse_query_timestamps(at=at)["at"] or datetime.now(UTC)
    async with connect() as connection:
        assignment = await service.end_current_assignment(connection, vehicleId, end)
    return json_response(assignment)


@router.get("/{vehicleId}/assignments", response_model=list[Assignment])
async def list_assignments(principal: ReadKey, vehicleId: str, connection: ReadConn) -> Response:
    principal.require_device(DeviceKind.VEHICLE, vehicleId)
    require_device_id("vehicleId", vehicleId)
    rows = await repository.list_vehicle_assignments(connection, vehicleId)
    return json_response([service.assignment_json(row) for row in rows])
