"""POST /v1/ingest/...: one reading, a batch, or either kind recognised from its fields.

The engine's hottest path, so these are bare ASGI endpoints on Starlette routes rather than
FastAPI routes: FastAPI's per-request dependency solving and handler wrapping were about a third
of a single-reading request's CPU (py-spy of the bench's single-reading phase). They do what the
FastAPI routes did, in the same order — key, capacity, body, validation, writer — and their
OpenAPI operations are declared here (`OPENAPI_PATHS`) and merged into the app's document.
"""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.routing import Match, Route
from starlette.types import Receive, Scope, Send

from energy_ingest.auth.keys import Scope as KeyScope
from energy_ingest.errors import EngineError
from energy_ingest.ingest.schemas import MeterReading, VehicleReading
from energy_ingest.ingest.service import ReadingModel
from energy_ingest.web.http import error_response, json_response, parse_json, read_body
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
            response = json_response(answer, status)
        except EngineError as error:
            response = error_response(error)
        await response(scope, receive, send)

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


# --- OpenAPI: what FastAPI would have generated for these routes ------------------------------


def _ref(name: str) -> dict[str, Any]:
    return {"$ref": f"#/components/schemas/{name}"}


def _json(schema: dict[str, Any]) -> dict[str, Any]:
    return {"application/json": {"schema": schema}}


_EITHER = {"oneOf": [_ref("MeterReading"), _ref("VehicleReading")]}
_SINGLE_ANSWERS: dict[str, dict[str, Any]] = {
    "200": {"description": "An exact re-send of a stored reading (`status: duplicate`)."},
    "201": {"description": "Stored (`status: stored`)."},
    "400": {"description": "The body is not JSON."},
    "401": {"description": "No API key, or not a valid one."},
    "403": {"description": "The key lacks the ingest scope, or is bound to another device."},
    "413": {"description": "The body is larger than one reading can be."},
    "415": {"description": "The body is not declared as `Content-Type: application/json`."},
    "409": {"description": "Same device and timestamp already stored with other values."},
    "422": {"description": "A field breaks a rule; every failure names the field and the rule."},
    "503": {"description": "Overloaded or database unavailable; retry after `Retry-After`."},
}
_BATCH_ANSWERS: dict[str, dict[str, Any]] = {
    "201": {
        "description": "At least one item stored or duplicate, or an empty array.",
        "content": _json(_ref("BatchResult")),
    },
    "400": {"description": "The body is not JSON."},
    "401": {"description": "No API key, or not a valid one."},
    "403": {"description": "No ingest scope, or an item of another device than the key's."},
    "413": {"description": "More items than the batch limit, or too large a body."},
    "415": {"description": "The body is not declared as `Content-Type: application/json`."},
    "422": {"description": "No item succeeded.", "content": _json(_ref("BatchResult"))},
    "503": {"description": "Overloaded or database unavailable; nothing was stored."},
}


def _operation(path: str, model: ReadingModel | None, batch: bool | None, summary: str) -> Any:
    item = _ref(model.__name__) if model is not None else _EITHER
    if batch is None:
        body: dict[str, Any] = {"oneOf": [item, {"type": "array", "items": item}]}
        answers = {**_SINGLE_ANSWERS, **_BATCH_ANSWERS}
    elif batch:
        body, answers = {"type": "array", "items": item}, _BATCH_ANSWERS
    else:
        body, answers = item, _SINGLE_ANSWERS
    return {
        "post": {
            "tags": ["ingest"],
            "summary": summary,
            "operationId": "ingest" + path.removeprefix("/v1/ingest").replace("/", "_"),
            "requestBody": {"required": True, "content": _json(body)},
            "responses": answers,
        }
    }


OPENAPI_PATHS = {
    path: _operation(path, model, batch, summary) for path, model, batch, summary in _SPECS
}
