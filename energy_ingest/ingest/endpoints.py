"""POST /v1/ingest/...: one reading, a batch, or either kind recognised from its fields."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request, Response

from energy_ingest.dependencies import EngineDep
from energy_ingest.http import json_response, read_json_body
from energy_ingest.ingest.schemas import BatchResult, MeterReading, VehicleReading
from energy_ingest.ingest.service import IngestService, ReadingModel

router = APIRouter(prefix="/v1/ingest", tags=["ingest"])


def get_ingest_service(engine: EngineDep) -> IngestService:
    return IngestService(engine.writer, engine.limits, engine.settings.max_batch_items)


IngestServiceDep = Annotated[IngestService, Depends(get_ingest_service)]


def _body_doc(schema: dict[str, Any]) -> dict[str, Any]:
    # Bodies are parsed by hand (400 vs 422, per-item errors in batches), so their schema is
    # declared here for /docs instead of through a typed parameter.
    return {"requestBody": {"required": True, "content": {"application/json": {"schema": schema}}}}


def _ref(model: ReadingModel) -> dict[str, Any]:
    return {"$ref": f"#/components/schemas/{model.__name__}"}


_SINGLE_ANSWERS: dict[int | str, dict[str, Any]] = {
    200: {"description": "An exact re-send of a stored reading (`status: duplicate`)."},
    201: {"description": "Stored (`status: stored`)."},
    400: {"description": "The body is not JSON."},
    409: {"description": "Same device and timestamp already stored with other values."},
    422: {"description": "A field breaks a rule; every failure names the field and the rule."},
    503: {"description": "Overloaded or database unavailable; retry after `Retry-After`."},
}
_BATCH_ANSWERS: dict[int | str, dict[str, Any]] = {
    201: {"model": BatchResult, "description": "At least one item stored or duplicate."},
    400: {"description": "The body is not JSON."},
    413: {"description": "More items than the batch limit, or too large a body."},
    422: {"model": BatchResult, "description": "No item succeeded."},
    503: {"description": "Overloaded or database unavailable; nothing was stored."},
}


async def _single(
    request: Request, service: IngestService, engine: EngineDep, model: ReadingModel | None
) -> Response:
    item = await read_json_body(request, engine.settings.max_body_bytes)
    status, body = await service.ingest_one(item, model)
    return json_response(body, status)


async def _batch(
    request: Request, service: IngestService, engine: EngineDep, model: ReadingModel | None
) -> Response:
    items = await read_json_body(request, engine.settings.max_body_bytes)
    status, body = await service.ingest_batch(items, model)
    return json_response(body, status)


@router.post(
    "/meter",
    status_code=201,
    responses=_SINGLE_ANSWERS,
    openapi_extra=_body_doc(_ref(MeterReading)),
    summary="Ingest one meter reading",
)
async def ingest_meter(request: Request, service: IngestServiceDep, engine: EngineDep) -> Response:
    return await _single(request, service, engine, MeterReading)


@router.post(
    "/vehicle",
    status_code=201,
    responses=_SINGLE_ANSWERS,
    openapi_extra=_body_doc(_ref(VehicleReading)),
    summary="Ingest one vehicle reading",
)
async def ingest_vehicle(
    request: Request, service: IngestServiceDep, engine: EngineDep
) -> Response:
    return await _single(request, service, engine, VehicleReading)


@router.post(
    "/meter/batch",
    status_code=201,
    responses=_BATCH_ANSWERS,
    openapi_extra=_body_doc({"type": "array", "items": _ref(MeterReading)}),
    summary="Ingest an array of meter readings",
)
async def ingest_meter_batch(
    request: Request, service: IngestServiceDep, engine: EngineDep
) -> Response:
    return await _batch(request, service, engine, MeterReading)


@router.post(
    "/vehicle/batch",
    status_code=201,
    responses=_BATCH_ANSWERS,
    openapi_extra=_body_doc({"type": "array", "items": _ref(VehicleReading)}),
    summary="Ingest an array of vehicle readings",
)
async def ingest_vehicle_batch(
    request: Request, service: IngestServiceDep, engine: EngineDep
) -> Response:
    return await _batch(request, service, engine, VehicleReading)


_EITHER = {"oneOf": [_ref(MeterReading), _ref(VehicleReading)]}


@router.post(
    "",
    status_code=201,
    responses={**_SINGLE_ANSWERS, **_BATCH_ANSWERS},
    openapi_extra=_body_doc({"oneOf": [_EITHER, {"type": "array", "items": _EITHER}]}),
    summary="Ingest one reading or an array mixing both kinds (recognised by meterId/vehicleId)",
)
async def ingest_any(request: Request, service: IngestServiceDep, engine: EngineDep) -> Response:
    body = await read_json_body(request, engine.settings.max_body_bytes)
    if isinstance(body, list):
        status, answer = await service.ingest_batch(body, None)
    else:
        status, answer = await service.ingest_one(body, None)
    return json_response(answer, status)
