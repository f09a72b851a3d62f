"""POST /v1/ingest/...: one reading, a batch, or either kind recognised from its fields.

The engine's hottest path, so these are bare ASGI endpoints on Starlette routes rather than
FastAPI routes: FastAPI's per-request dependency solving and handler wrapping were about a third
of a single-reading request's CPU (py-spy of the bench's single-reading phase). They do what the
FastAPI routes did, in the same order — key, capacity, body, validation, writer — and their
OpenAPI operations are declared on a FastAPI router that is never mounted (`OPENAPI_ROUTES`),
so the document is written from the same models as the rest of the API.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Body
from starlette.requests import Request
from starlette.routing import Match, Route
from starlette.types import ASGIApp, Receive, Scope, Send

from energy_ingest.auth.keys import Scope as KeyScope
from energy_ingest.errors import EngineError
from energy_ingest.ingest.schemas import (
    BatchResult,
    MeterIngested,
    MeterReading,
    VehicleIngested,
    VehicleReading,
)
from energy_ingest.ingest.service import ReadingModel
from energy_ingest.web.http import error_response, parse_json, read_body, send_json
from energy_ingest.web.state import EngineState


class IngestEndpoint:
    """One POST route: one reading of `model`'s kind, an array of them (`batch`), or either
    kind, one or an array (`model` None, `batch` None: decided by the body)."""

    def __init__(self, model: ReadingModel | None, *, batch: bool | None) -> None:
        self.model = model
        self.batch = batch

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            status, answer = await self._ingest(Request(scope, receive))
        except EngineError as error:
            await error_response(error)(scope, receive, send)
            return
        await send_json(send, answer, status)

    async def _ingest(self, request: Request) -> tuple[int, dict[str, Any]]:
        engine: EngineState = request.app.state.engine
        principal = await engine.keys.authorize(
            request.headers.get("authorization"), KeyScope.INGEST
        )
        engine.writer.check_capacity()  # before the body is read: shedding must be cheap
        settings = engine.settings
        # One reading is a few hundred bytes: its routes get a body limit that fits one, so
        # the work a request can ask for follows what it may send, not the batch limit.
        body = await read_body(
            request,
            settings,
            max_bytes=settings.max_single_body_bytes if self.batch is False else None,
            max_object_bytes=settings.max_single_body_bytes,  # never a batch
        )
        if body.lstrip(b" \t\r\n")[:1] == b"[":
            engine.ingest.check_batch_body(body)
        if self.model is not None:
            # Nearly every body of a healthy fleet is plainly valid: decoded and validated in
            # one step. Any other goes the general way below, which names what is wrong.
            if self.batch:
                readings = engine.ingest.decode_batch(body, self.model)
                if readings is not None:
                    return await engine.ingest.ingest_decoded_batch(readings, principal)
            else:
                reading = engine.ingest.decode_one(body, self.model)
                if reading is not None:
                    return await engine.ingest.ingest_decoded_one(reading, principal)
        document = parse_json(body)
        batch = isinstance(document, list) if self.batch is None else self.batch
        if batch:
            return await engine.ingest.ingest_batch(document, self.model, principal)
        return await engine.ingest.ingest_one(document, self.model, principal)


_SPECS: list[tuple[str, ReadingModel | None, bool | None, str]] = [
    ("/v1/ingest/meter", MeterReading, False, "Ingest one meter reading"),
    ("/v1/ingest/vehicle", VehicleReading, False, "Ingest one vehicle reading"),
    ("/v1/ingest/meter/batch", MeterReading, True, "Ingest an array of meter readings"),
    ("/v1/ingest/vehicle/batch", VehicleReading, True, "Ingest an array of vehicle readings"),
    (
        "/v1/ingest",
        None,
        None,
        "Ingest one reading or an array mixing both kinds (recognised by meterId/vehicleId)",
    ),
]


class IngestRoute(Route):
    """A Starlette route that names itself in the scope, as FastAPI's routes do: the access log
    and the HTTP metrics label requests by route template."""

    def matches(self, scope: Scope) -> tuple[Match, Scope]:
        match, child_scope = super().matches(scope)
        if match is not Match.NONE:
            child_scope["route"] = self
        return match, child_scope


ROUTES = [
    IngestRoute(path, IngestEndpoint(model, batch=batch), methods=["POST"], name=summary)
    for path, model, batch, summary in _SPECS
]


class IngestFastLane:
    """Pure ASGI, the innermost of the app's middleware: a POST to one of the ingest paths goes
    straight to its route's endpoint, with the scope the router would have given it.

    Below the app's middleware, Starlette and FastAPI wrap every request in four more layers
    (exception handlers, an exit stack, the router's search of every route, the route's method
    check), each a Python call per request and per message: for ingest, whose endpoints
    answer their own errors, they did nothing but cost a twentieth of a single reading's CPU.
    Every other request, and any path not exactly an ingest path (a trailing slash is
    redirected by the router), still goes through them. (The router would also name the route
    to FastAPI's telemetry, which `create_app` switches off.)
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self.routes = {route.path: route for route in ROUTES}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        route = None
        if scope["type"] == "http" and scope["method"] == "POST" and not scope.get("root_path"):
            route = self.routes.get(scope["path"])
        if route is None:
            await self.app(scope, receive, send)
            return
        app = scope.get("app")
        if app is not None and "router" not in scope:
            scope["router"] = app.router
        scope["endpoint"] = route.endpoint
        scope["path_params"] = {}
        scope["route"] = route
        await route.app(scope, receive, send)


# --- OpenAPI: the same operations on a FastAPI router that is never mounted -----------------
# FastAPI writes their schema from the models (`app.py` passes these routes to `get_openapi`);
# requests are dispatched by `ROUTES` above. The handlers only carry the signature.

_SINGLE_ERRORS: dict[int | str, dict[str, Any]] = {
    400: {"description": "The body is not JSON."},
    401: {"description": "No API key, or not a valid one."},
    403: {"description": "The key lacks the ingest scope, or is bound to another device."},
    409: {"description": "Same device and timestamp already stored with other values."},
    413: {"description": "The body is larger than one reading can be."},
    415: {"description": "The body is not declared as `Content-Type: application/json`."},
    422: {"description": "A field breaks a rule; every failure names the field and the rule."},
    503: {"description": "Overloaded or database unavailable; retry after `Retry-After`."},
}
_BATCH_ERRORS: dict[int | str, dict[str, Any]] = {
    400: {"description": "The body is not JSON."},
    401: {"description": "No API key, or not a valid one."},
    403: {"description": "No ingest scope, or an item of another device than the key's."},
    413: {"description": "More items than the batch limit, or too large a body."},
    415: {"description": "The body is not declared as `Content-Type: application/json`."},
    422: {"description": "No item succeeded.", "model": BatchResult},
    503: {"description": "Overloaded or database unavailable; nothing was stored."},
}
_STORED = "Stored (`status: stored`)."
_DUPLICATE = "An exact re-send of a stored reading (`status: duplicate`)."
_BATCH_STORED = "At least one item stored or duplicate, or an empty array."

openapi_router = APIRouter(tags=["ingest"])


@openapi_router.post(
    "/v1/ingest/meter",
    summary=_SPECS[0][3],
    operation_id="ingest_meter",
    status_code=201,
    response_model=MeterIngested,
    response_description=_STORED,
    responses={200: {"description": _DUPLICATE, "model": MeterIngested}, **_SINGLE_ERRORS},
)
async def _ingest_meter(reading: MeterReading) -> None:  # pragma: no cover - never mounted
    raise NotImplementedError


@openapi_router.post(
    "/v1/ingest/vehicle",
    summary=_SPECS[1][3],
    operation_id="ingest_vehicle",
    status_code=201,
    response_model=VehicleIngested,
    response_description=_STORED,
    responses={200: {"description": _DUPLICATE, "model": VehicleIngested}, **_SINGLE_ERRORS},
)
async def _ingest_vehicle(reading: VehicleReading) -> None:  # pragma: no cover - never mounted
    raise NotImplementedError


@openapi_router.post(
    "/v1/ingest/meter/batch",
    summary=_SPECS[2][3],
    operation_id="ingest_meter_batch",
    status_code=201,
    response_model=BatchResult,
    response_description=_BATCH_STORED,
    responses=_BATCH_ERRORS,
)
async def _ingest_meter_batch(
    readings: Annotated[list[MeterReading], Body()],
) -> None:  # pragma: no cover - never mounted
    raise NotImplementedError


@openapi_router.post(
    "/v1/ingest/vehicle/batch",
    summary=_SPECS[3][3],
    operation_id="ingest_vehicle_batch",
    status_code=201,
    response_model=BatchResult,
    response_description=_BATCH_STORED,
    responses=_BATCH_ERRORS,
)
async def _ingest_vehicle_batch(
    readings: Annotated[list[VehicleReading], Body()],
) -> None:  # pragma: no cover - never mounted
    raise NotImplementedError


@openapi_router.post(
    "/v1/ingest",
    summary=_SPECS[4][3],
    operation_id="ingest",
    status_code=201,
    response_model=MeterIngested | VehicleIngested | BatchResult,
    response_description=f"One reading: {_STORED} An array: {_BATCH_STORED}",
    responses={
        **_SINGLE_ERRORS,
        **_BATCH_ERRORS,
        200: {
            "description": _DUPLICATE + " One reading only.",
            "model": MeterIngested | VehicleIngested,
        },
        403: {"description": "No ingest scope, or a reading of another device than the key's."},
        413: {"description": "Too large a body for one reading, or too many items for a batch."},
        422: {
            "description": "One reading: a field breaks a rule (every failure named). An array: "
            "no item succeeded (a `BatchResult`).",
            "model": BatchResult,
        },
    },
)
async def _ingest_either(
    readings: Annotated[
        MeterReading | VehicleReading | list[MeterReading | VehicleReading], Body()
    ],
) -> None:  # pragma: no cover - never mounted
    raise NotImplementedError


OPENAPI_ROUTES = openapi_router.routes
