"""GET /healthz (the process answers; /health too) and GET /readyz (it can do its job)."""

from __future__ import annotations

import asyncio
from typing import Any

from fastapi import APIRouter, Response

from energy_ingest.db.migrations import pending_versions
from energy_ingest.db.sql import sql
from energy_ingest.web.dependencies import EngineDep
from energy_ingest.web.http import json_response

router = APIRouter(tags=["health"])

_PROBE_TIMEOUT_SECONDS = 2.0


@router.get("/healthz", description="The process answers. Also at `/health`, as the seed named it.")
@router.get("/health", include_in_schema=False)
async def healthz() -> dict[str, str]:
    return {"status": "ok"}


@router.get("/readyz", responses={503: {"description": "Not ready; `checks` says what fails."}})
async def readyz(engine: EngineDep) -> Response:
    checks: dict[str, Any] = {
        "writer": engine.writer.running,
        "maintenance": engine.maintenance_running(),
    }
    if engine.mqtt is not None:
        # Configured, MQTT is an ingest path like HTTP: not connected, the engine takes
        # nothing of what devices publish, so it is not ready.
        checks["mqtt"] = engine.mqtt.connected
    try:
        async with asyncio.timeout(_PROBE_TIMEOUT_SECONDS), engine.database.read() as connection:
            await connection.fetchval(sql("check_database"))
            pending = await pending_versions(connection)
        checks["database"] = True
        checks["migrations"] = not pending
        if pending:
            checks["pendingMigrations"] = pending
    except Exception:
        checks["database"] = False
        checks["migrations"] = False
    ready = all(value for key, value in checks.items() if key != "pendingMigrations")
    checks["queuedReadings"] = engine.writer.queued_readings
    if engine.keys.enabled:
        # Informational: without its notification connection a process still checks every
        # key, by a lookup per request instead of from its cache.
        checks["keyNotifications"] = engine.keys.listening
    return json_response(
        {"status": "ready" if ready else "not-ready", "checks": checks}, 200 if ready else 503
    )
