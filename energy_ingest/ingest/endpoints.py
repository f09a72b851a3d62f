"""POST /v1/ingest/...: one reading, a batch, or either kind recognised from its fields."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request, Response

from energy_ingest.dependencies import EngineDep, IngestKey
from energy_ingest.http import json_response, read_json_body
from energy_ingest.ingest.schemas import BatchResult, MeterReading, VehicleReading
from energy_ingest.ingest.service import IngestService, ReadingModel

router = APIRouter(prefix="/v1/ingest", tags=["ingest"])


async def get_ingest_service(engine: EngineDep) -> IngestService:
    return IngestService(
        engine.writer, engine.limits, engine.settings.max_batch_items, engine.metrics
    )


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
    401: {"description": "No API key, or not a valid one."},
    403: {"description": "The key lacks the ingest scope, or is bound to another device."},
    409: {"description": "Same device and timestamp already stored with other values."},
    422: {"description": "A field breaks a rule; every failure names the field and the rule."},
    503: {"description": "Overloaded or database unavailable; retry after `Retry-After`."},
}
_BATCH_ANSWERS: dict[int | str, dict[str, Any]] = {
    201: {"model": BatchResult, "description": "At least one item stored or duplicate."},
    400: {"description": "The body is not JSON."},
    401: {"description": "No API key, or not a valid one."},
    403: {"description": "No ingest scope, or an item of another device than the key's."},
    413: {"description": "More items than the batch limit, or too large a body."},
    422: {"model": BatchResult, "description": "No item succeeded."},
    503: {"description": "Overloaded or database unavailable; nothing was stored."},
}


def _add_ingest_route(path: str, model: ReadingModel | None, *, batch: bool, summary: str) -> None:
    """Register POST `path`: one reading (batch=False) or an array of them, of `model`'s kind."""
    body = _ref(model) if model is not None else _EITHER
    if batch:
        body = {"type": "array", "items": body}

    async def ingest(
        principal: IngestKey, request: Request, service: IngestServiceDep, engine: EngineDep
    ) -> Response:
        engine.writer.check_capacity()
        document = await read_json_body(request, engine.settings)
        if batch:
            status, answer = await service.ingest_batch(document, model, principal)
        else:
            status, answer = await service.ingest_one(document, model, principal)
        return json_response(answer, status)

    router.add_api_route(
        path,
        ingest,
        methods=["POST"],
        status_code=201,
        responses=_BATCH_ANSWERS if batch else _SINGLE_ANSWERS,
        openapi_extra=_body_doc(body),
        summary=summary,
        name=summary,
    )


_EITHER = {"oneOf": [_ref(MeterReading), _ref(VehicleReading)]}

_add_ingest_route("/meter", MeterReading, batch=False, summary="Ingest one meter reading")
_add_ingest_route("/vehicle", VehicleReading, batch=False, summary="Ingest one vehicle reading")
_add_ingest_route(
    "/meter/batch", MeterReading, batch=True, summary="Ingest an array of meter readings"
)
_add_ingest_route(
    "/vehicle/batch", VehicleReading, batch=True, summary="Ingest an array of vehicle readings"
)


@router.post(
    "",
    status_code=201,
    responses={**_SINGLE_ANSWERS, **_BATCH_ANSWERS},
    openapi_extra=_body_doc({"oneOf": [_EITHER, {"type": "array", "items": _EITHER}]}),
    summary="Ingest one reading or an array mixing both kinds (recognised by meterId/vehicleId)",
)
async def ingest_any(
    principal: IngestKey, request: Request, service: IngestServiceDep, engine: EngineDep
) -> Response:
    engine.writer.check_capacity()
    body = await read_json_body(request, engine.settings)
    if isinstance(body, list):
        status, answer = await service.ingest_batch(body, None, principal)
    else:
        status, answer = await service.ingest_one(body, None, principal)
    return json_response(answer, status)
