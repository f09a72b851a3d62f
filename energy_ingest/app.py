"""create_app(settings) and the lifespan that owns the database, the writer and background tasks."""

from __future__ import annotations

import asyncio
import gc
import logging
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from datetime import UTC, datetime, timedelta
from functools import partial
from typing import Any

from fastapi import FastAPI, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.openapi.utils import get_openapi
from pydantic.json_schema import models_json_schema
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import WebSocketRoute

from energy_ingest import __version__
from energy_ingest.analytics.endpoints import router as analytics_router
from energy_ingest.analytics.fleet.endpoints import router as fleet_router
from energy_ingest.assignments.endpoints import router as assignments_router
from energy_ingest.assignments.schemas import AssignMeter
from energy_ingest.auth.guard import KeyGuard
from energy_ingest.config import Settings
from energy_ingest.db.embedded import embedded_postgres
from energy_ingest.db.migrations import migrate_url
from energy_ingest.db.partitions import PartitionManager
from energy_ingest.db.pool import is_outage, open_database
from energy_ingest.errors import EngineError, FieldProblem, ValidationFailed
from energy_ingest.health.dashboard import router as dashboard_router
from energy_ingest.health.endpoints import router as health_router
from energy_ingest.health.front_door import router as front_door_router
from energy_ingest.health.metrics import router as metrics_router
from energy_ingest.ingest.endpoints import OPENAPI_ROUTES as INGEST_OPENAPI_ROUTES
from energy_ingest.ingest.endpoints import ROUTES as INGEST_ROUTES
from energy_ingest.ingest.endpoints import IngestFastLane
from energy_ingest.ingest.mqtt import MqttIngest
from energy_ingest.ingest.ocpp.endpoint import PATH as OCPP_PATH
from energy_ingest.ingest.ocpp.endpoint import ocpp_endpoint
from energy_ingest.ingest.schemas import Limits
from energy_ingest.ingest.service import IngestService
from energy_ingest.keys.bootstrap import ensure_admin_key
from energy_ingest.keys.endpoints import router as keys_router
from energy_ingest.keys.schemas import CreateKey
from energy_ingest.live.endpoints import router as live_router
from energy_ingest.telemetry.logs import configure_logging
from energy_ingest.telemetry.metrics import EngineMetrics
from energy_ingest.telemetry.middleware import RequestContextMiddleware
from energy_ingest.web.http import error_response, json_response
from energy_ingest.web.read_source import ReadSourceMiddleware
from energy_ingest.web.security import WebSecurityMiddleware
from energy_ingest.web.state import EngineState
from energy_ingest.writer import WriterFactory
from energy_ingest.writer.postgres import group_commit_writer
from energy_ingest.writer.rollups import RollupFolder

logger = logging.getLogger(__name__)

_MAINTENANCE_INTERVAL_SECONDS = 3600.0
_CONNECT_ATTEMPTS = 30


async def _migrate_when_reachable(url: str, settings: Settings) -> None:
    """Apply migrations (and mint the first admin key), waiting up to ~30 s for a database
    that is still starting."""
    applied = await migrate_url(
        url, attempts=_CONNECT_ATTEMPTS, then=partial(ensure_admin_key, settings=settings)
    )
    if applied:
        logger.info("migrations applied: %s", ", ".join(applied))


async def _maintain_partitions(partitions: PartitionManager, settings: Settings) -> None:
    """Hourly: prepare coming days, apply retention, compact closed days; survive outages."""
    while True:
        try:
            await partitions.prepare_ahead(settings.partition_days_ahead)
            today = datetime.now(UTC).date()
            if settings.retention_days is not None:
                await partitions.drop_before(today - timedelta(days=settings.retention_days))
            if settings.compact_closed_partitions:
                # Yesterday may still get late readings; the day before is closed.
                await partitions.compact_closed(before=today - timedelta(days=1))
        except Exception as exc:
            # An outage is expected and retried quietly; anything else is a bug worth its
            # traceback, but upkeep must not stop for it (/readyz reports the task alive).
            if is_outage(exc):
                logger.warning("partition maintenance failed, will retry: %r", exc)
            else:
                logger.exception("partition maintenance failed unexpectedly, will retry")
        await asyncio.sleep(_MAINTENANCE_INTERVAL_SECONDS)


_GC_THRESHOLDS = (100_000, 50, 100)
"""Allocations between young collections, and young (then middle) collections between the
next generation's: far above CPython's (700, 10, 10) for a server that allocates in bursts."""


@asynccontextmanager
async def engine_lifespan(app: FastAPI) -> AsyncIterator[None]:
    settings: Settings = app.state.settings
    async with AsyncExitStack() as stack:
        url = settings.database_url
        if url is None:
            url = await asyncio.to_thread(stack.enter_context, embedded_postgres(settings.data_dir))
        await _migrate_when_reachable(url, settings)
        database = await stack.enter_async_context(open_database(url, settings))
        keys = await stack.enter_async_context(
            KeyGuard(database, enabled=settings.auth_enabled, settings=settings)
        )
        partitions = PartitionManager(database.write_pool)
        await partitions.refresh()
        await partitions.prepare_ahead(settings.partition_days_ahead)
        make_writer: WriterFactory = app.state.writer_factory
        metrics: EngineMetrics = app.state.metrics
        writer = await stack.enter_async_context(
            make_writer(database, partitions, settings, metrics)
        )
        maintenance = asyncio.create_task(
            _maintain_partitions(partitions, settings),
            name="partition-maintenance",
        )
        folder = asyncio.create_task(
            RollupFolder(
                database.write_pool, settings.rollup_fold_seconds, metrics, settings.split_rules
            ).run(),
            name="rollup-folder",
        )
        mqtt = None
        if settings.mqtt_url is not None:
            # Entered after the writer, so left before it: PUBACKs of what it wrote go out
            # before the writer drains and the pools close.
            mqtt = await stack.enter_async_context(
                MqttIngest(settings, writer, Limits.from_settings(settings), metrics)
            )
        app.state.engine = EngineState(
            settings=settings,
            database=database,
            partitions=partitions,
            writer=writer,
            ingest=IngestService(
                writer, Limits.from_settings(settings), settings.max_batch_items, metrics
            ),
            metrics=metrics,
            keys=keys,
            maintenance=maintenance,
            rollup_folder=folder,
            mqtt=mqtt,
        )
        # A batch request makes thousands of short-lived objects (structs, reading tuples, COPY
        # records): with the default thresholds (700) the collector ran every few hundred
        # readings and promoted batches in flight to the older generations, whose full
        # collections walk the whole heap; about a quarter of batch ingest's engine CPU
        # (measured with gc.callbacks). Collecting young objects rarely lets them die first.
        thresholds = gc.get_threshold()
        gc.set_threshold(*_GC_THRESHOLDS)
        try:
            yield
        finally:
            gc.set_threshold(*thresholds)  # the process's own again (tests start many engines)
            maintenance.cancel()
            folder.cancel()
            await asyncio.gather(maintenance, folder, return_exceptions=True)
            # Leaving the stack drains the writer (everything accepted is committed) and
            # only then closes the pools and stops an embedded server.


async def _engine_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, EngineError)
    return error_response(exc)


async def _request_validation_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, RequestValidationError)
    problems = [
        FieldProblem(
            field=".".join(str(part) for part in error["loc"][1:]) or "request",
            rule=str(error["type"]),
            message=str(error["msg"]),
        )
        for error in exc.errors()
    ]
    return await _engine_error(request, ValidationFailed(problems))


_HTTP_CODES = {404: "not_found", 405: "method_not_allowed"}


async def _http_error(request: Request, exc: Exception) -> Response:
    # No route matched (404), or the route exists for other methods (405): the same body shape
    # as every other error, Starlette's headers (Allow) kept.
    assert isinstance(exc, StarletteHTTPException)
    code = _HTTP_CODES.get(exc.status_code, "http_error")
    message = {404: "no such endpoint", 405: f"{request.method} is not allowed here"}.get(
        exc.status_code, str(exc.detail)
    )
    headers = dict(exc.headers) if exc.headers else None
    return json_response({"error": code, "message": message}, exc.status_code, headers)


def _openapi(app: FastAPI) -> dict[str, Any]:
    if app.openapi_schema:
        return app.openapi_schema
    # The ingest routes are bare ASGI endpoints (see ingest/endpoints.py); their operations
    # come from a router that is never mounted, so FastAPI writes them like the others.
    schema = get_openapi(
        title=app.title,
        version=app.version,
        description=app.description,
        routes=[*INGEST_OPENAPI_ROUTES, *app.routes],
    )
    # Bodies parsed by hand reference these models; publish their schemas as components.
    _, definitions = models_json_schema(
        [(AssignMeter, "validation"), (CreateKey, "validation")],
        ref_template="#/components/schemas/{model}",
    )
    components = schema.setdefault("components", {})
    components.setdefault("schemas", {}).update(definitions["$defs"])
    # Every /v1 operation takes an API key ("Authorize" in /docs); the probes and /metrics do not.
    components["securitySchemes"] = {
        "apiKey": {
            "type": "http",
            "scheme": "bearer",
            "description": "An API key: `Authorization: Bearer eie_<id>_<secret>`.",
        }
    }
    for path, operations in schema.get("paths", {}).items():
        if path.startswith("/v1/"):
            for operation in operations.values():
                operation["security"] = [{"apiKey": []}]
                answers = operation.setdefault("responses", {})
                answers.setdefault("401", {"description": "No API key, or not a valid one."})
                answers.setdefault(
                    "403",
                    {"description": "The key lacks the scope, or is bound to another device."},
                )
    app.openapi_schema = schema
    return schema


def create_app(settings: Settings, *, writer_factory: WriterFactory | None = None) -> FastAPI:
    """The ASGI application; nothing connects until its lifespan starts.

    `writer_factory` replaces the group-commit writer (the benchmark's naive baseline does).
    """
    app = FastAPI(
        title="Energy Ingestion Engine",
        version=__version__,
        description=(
            "Meter (AC) and vehicle (DC) telemetry: every reading kept as an audit trail, the "
            "live state of every device, and 24-hour charging efficiency per vehicle."
        ),
        lifespan=engine_lifespan,
        # FastAPI's built-in OpenTelemetry looks up the global providers (environment reads)
        # on every request even when none is configured: a tenth of a single-reading request's
        # CPU. The engine exports Prometheus metrics and JSON logs of its own.
        telemetry={"tracing": False, "metrics": False, "logs": False},
        # /docs is served from the installed Swagger UI files (health/front_door.py), so it
        # works with no internet; ReDoc would load from a CDN, so it is not offered.
        docs_url=None,
        redoc_url=None,
    )
    app.state.settings = settings
    app.state.metrics = metrics = EngineMetrics()
    # Innermost: past the app's own middleware, ingest requests skip the router's layers.
    app.add_middleware(IngestFastLane)
    app.add_middleware(ReadSourceMiddleware)
    # Inside the request context: its refusals are logged and counted like any answer.
    app.add_middleware(WebSecurityMiddleware, settings=settings)
    app.add_middleware(
        RequestContextMiddleware,
        access_log=settings.access_log,
        observe=metrics.observe_request,
    )
    app.state.writer_factory = writer_factory or group_commit_writer
    app.add_exception_handler(EngineError, _engine_error)
    app.add_exception_handler(RequestValidationError, _request_validation_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.router.routes.extend(INGEST_ROUTES)
    if settings.ocpp_enabled:
        # Chargers connect on the engine's own port (OCPP 1.6J over WebSocket).
        app.router.routes.append(WebSocketRoute(OCPP_PATH, ocpp_endpoint))
    for router in (
        analytics_router,
        fleet_router,
        live_router,
        assignments_router,
        keys_router,
        health_router,
        front_door_router,
        dashboard_router,
        metrics_router,
    ):
        app.include_router(router)
    app.openapi = lambda: _openapi(app)  # type: ignore[method-assign]
    return app


def create_app_from_environment() -> FastAPI:
    """Factory for `uvicorn --factory` and multi-worker serving: settings from the environment."""
    configure_logging()
    return create_app(Settings())
