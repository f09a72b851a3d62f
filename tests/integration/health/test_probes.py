"""Liveness and readiness of a running engine."""

from __future__ import annotations

import json
import re

import httpx


async def test_healthz_answers_while_the_process_is_alive(client: httpx.AsyncClient) -> None:
    response = await client.get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


async def test_readyz_reports_every_check_green(client: httpx.AsyncClient) -> None:
    response = await client.get("/readyz")
    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "ready"
    assert body["checks"]["database"] is True
    assert body["checks"]["migrations"] is True
    assert body["checks"]["writer"] is True


async def test_openapi_documents_every_endpoint(client: httpx.AsyncClient) -> None:
    spec = (await client.get("/openapi.json")).json()
    assert {
        "/v1/ingest",
        "/v1/ingest/meter",
        "/v1/ingest/vehicle",
        "/v1/ingest/meter/batch",
        "/v1/ingest/vehicle/batch",
        "/v1/analytics/performance/{vehicleId}",
        "/v1/analytics/vehicle/{vehicleId}/live",
        "/v1/analytics/meter/{meterId}/live",
        "/v1/vehicles/{vehicleId}/meter",
        "/v1/vehicles/{vehicleId}/assignments",
        "/healthz",
        "/readyz",
    } <= set(spec["paths"])
    schemas = spec["components"]["schemas"]
    assert {"MeterReading", "VehicleReading", "AssignMeter", "CreateKey", "BatchResult"} <= set(
        schemas
    )
    # Every reference resolves, including those of the hand-declared ingest operations.
    references = re.findall(r'"\$ref": ?"#/components/schemas/([^"]+)"', json.dumps(spec))
    assert references
    assert set(references) <= set(schemas)
    # Every documented operation (without path parameters here) is really routed.
    for path, operations in spec["paths"].items():
        for method in operations:
            if "{" not in path:
                answer = await client.request(method.upper(), path)
                assert answer.status_code not in (404, 405), (method, path)
    assert (await client.get("/docs")).status_code == 200
