"""Liveness and readiness of a running engine."""

from __future__ import annotations

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
    assert {"MeterReading", "VehicleReading", "AssignMeter"} <= set(spec["components"]["schemas"])
    assert (await client.get("/docs")).status_code == 200
