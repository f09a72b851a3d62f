"""Security headers on every answer: JSON, pages, errors, and the server's own refusals."""

from __future__ import annotations

import httpx
import pytest

from energy_ingest.config import Settings
from tests.factories import meter_reading
from tests.integration.server.engines import running_engine
from tests.support import start_engine

COMMON = {
    "x-content-type-options": "nosniff",
    "x-frame-options": "DENY",
    "referrer-policy": "no-referrer",
    "cross-origin-resource-policy": "same-origin",
}
API_POLICY = "default-src 'none'; frame-ancestors 'none'"


def assert_secured(response: httpx.Response) -> None:
    for name, value in COMMON.items():
        assert response.headers.get(name) == value, (name, response.request.url)
    assert "server" not in response.headers


@pytest.mark.parametrize(
    "path", ["/healthz", "/readyz", "/metrics", "/openapi.json", "/v1/keys", "/nowhere"]
)
async def test_every_json_answer_carries_the_security_headers(
    client: httpx.AsyncClient, path: str
) -> None:
    response = await client.get(path)
    assert_secured(response)
    assert response.headers["content-security-policy"] == API_POLICY


async def test_every_v1_answer_is_not_stored(client: httpx.AsyncClient) -> None:
    answers = [
        await client.get("/v1/keys"),
        await client.post("/v1/keys", json={"name": "ops", "scopes": ["read"]}),
        await client.post("/v1/ingest/meter", json=meter_reading(meter_id="M-NS")),
        await client.get("/v1/analytics/meter/M-NS/live"),
        await client.get("/v1/analytics/meter/unknown/live"),  # an error too
    ]
    assert answers[1].status_code == 201  # the answer that holds a new key's secret
    for response in answers:
        assert response.headers["cache-control"] == "no-store", response.request.url
        assert_secured(response)
    # Outside /v1 nothing changes: the probes may be cached by nobody's rule but their own.
    assert "cache-control" not in (await client.get("/healthz")).headers


async def test_key_creation_is_not_stored_with_auth_on(settings: Settings) -> None:
    async with start_engine(settings.model_copy(update={"auth_enabled": True})) as engine:
        refused = await engine.client.post("/v1/keys", json={"name": "x", "scopes": ["read"]})
        assert refused.status_code == 401
        assert refused.headers["cache-control"] == "no-store"
        assert_secured(refused)


async def test_pages_get_a_policy_that_lets_them_load_their_own_files(
    client: httpx.AsyncClient,
) -> None:
    for path in ("/docs", "/"):
        response = await client.get(path, headers={"Accept": "text/html"})
        assert response.headers["content-type"].startswith("text/html")
        assert_secured(response)
        policy = response.headers["content-security-policy"]
        assert "default-src 'none'" in policy
        assert "script-src 'self'" in policy
        assert "frame-ancestors 'none'" in policy
        assert "unsafe-inline" not in policy.split("script-src")[1].split(";")[0]


async def test_a_real_server_answers_without_a_banner(database_url: str) -> None:
    async with running_engine(database_url) as engine:
        async with httpx.AsyncClient(base_url=engine.base_url) as client:
            response = await client.get("/healthz")
        assert response.status_code == 200
        assert_secured(response)
