"""GET / leads somewhere useful, /health is /healthz, and /docs works with no internet."""

from __future__ import annotations

import re

import httpx

from energy_ingest.config import Settings
from tests.support import start_engine


async def test_root_answers_links_as_json_for_api_clients(client: httpx.AsyncClient) -> None:
    for accept in (None, "*/*", "application/json", "application/json, text/html;q=0.5"):
        headers = {"Accept": accept} if accept else {}
        response = await client.get("/", headers=headers)
        assert response.status_code == 200
        assert response.headers["content-type"] == "application/json"
        links = response.json()["links"]
        assert links["docs"] == "/docs"
        assert links["health"] == "/healthz"
        assert links["readiness"] == "/readyz"
        assert links["metrics"] == "/metrics"
        assert links["ingest"] == "/v1/ingest"


async def test_root_answers_a_page_to_browsers(client: httpx.AsyncClient) -> None:
    browser = "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"
    response = await client.get("/", headers={"Accept": browser})
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    for path in ("/docs", "/healthz", "/readyz", "/metrics", "/v1/ingest"):
        assert f'href="{path}"' in response.text


async def test_health_is_an_alias_of_healthz(client: httpx.AsyncClient) -> None:
    health, healthz = await client.get("/health"), await client.get("/healthz")
    assert health.status_code == healthz.status_code == 200
    assert health.content == healthz.content


async def test_the_front_door_needs_no_key(settings: Settings) -> None:
    async with start_engine(settings.model_copy(update={"auth_enabled": True})) as engine:
        for path in ("/", "/health", "/docs", "/docs/assets/swagger-ui-bundle.js"):
            assert (await engine.client.get(path)).status_code == 200, path
        assert (await engine.client.get("/v1/keys")).status_code == 401


async def test_openapi_documents_the_root_once_and_not_the_alias(
    client: httpx.AsyncClient,
) -> None:
    paths = (await client.get("/openapi.json")).json()["paths"]
    assert "/" in paths
    assert "/healthz" in paths
    assert "/health" not in paths
    assert not any(path.startswith("/docs") for path in paths)


async def test_docs_load_only_files_the_engine_serves(client: httpx.AsyncClient) -> None:
    page = await client.get("/docs")
    assert page.status_code == 200
    references = re.findall(r'(?:src|href)="([^"]+)"', page.text)
    assert references
    # Nothing from another host (the CDN the docs used to load from), nothing inline.
    assert all(reference.startswith("/") for reference in references), references
    assert "<script>" not in page.text
    for reference in references:
        asset = await client.get(reference)
        assert asset.status_code == 200, reference
        assert asset.content, reference
    bundle = await client.get("/docs/assets/swagger-ui-bundle.js")
    assert bundle.headers["content-type"].startswith("text/javascript")
    assert len(bundle.content) > 100_000  # the real Swagger UI, not a stub
    assert (await client.get("/docs/assets/init.js")).status_code == 200
    assert (await client.get("/docs/assets/..%2Fhealth%2F__init__.py")).status_code == 404
    # The schema the page loads.
    assert (await client.get("/openapi.json")).status_code == 200
    assert (await client.get("/redoc")).status_code == 404  # ReDoc would load from a CDN
