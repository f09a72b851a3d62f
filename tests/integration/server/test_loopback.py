"""With authentication off (loopback only), web pages cannot use the engine: a foreign Host
(DNS rebinding) gets 400 and a cross-site request 403, before anything is read or stored."""

from __future__ import annotations

import json

import httpx
import pytest

from energy_ingest.config import Settings
from tests.factories import meter_reading
from tests.integration.server.engines import running_engine
from tests.integration.server.raw import close, connect, read_answer, request, send
from tests.support import start_engine

EVIL = "https://evil.example"


@pytest.mark.parametrize(
    "host", ["127.0.0.1", "127.0.0.1:8000", "localhost", "LOCALHOST:8000", "[::1]", "[::1]:8000"]
)
async def test_the_engine_answers_its_own_loopback_names(
    client: httpx.AsyncClient, host: str
) -> None:
    response = await client.get("/v1/keys", headers={"Host": host})
    assert response.status_code == 200


@pytest.mark.parametrize(
    "host", ["attacker.example", "attacker.example:8000", "127.0.0.1:9999", "127.0.0.1.nip.io"]
)
async def test_a_foreign_host_is_refused(client: httpx.AsyncClient, host: str) -> None:
    response = await client.get("/v1/keys", headers={"Host": host})
    assert response.status_code == 400
    assert response.json()["error"] == "host_not_allowed"
    assert response.headers["x-content-type-options"] == "nosniff"


async def test_a_cross_site_form_post_stores_nothing(client: httpx.AsyncClient) -> None:
    reading = meter_reading(meter_id="CSRF-1")
    response = await client.post(
        "/v1/ingest/meter",
        content=json.dumps(reading),
        headers={"Content-Type": "text/plain", "Origin": EVIL},
    )
    assert response.status_code == 403
    assert response.json()["error"] == "cross_site_request"
    created = await client.post(
        "/v1/keys", json={"scopes": ["admin"], "name": "csrf"}, headers={"Origin": EVIL}
    )
    assert created.status_code == 403
    assert (await client.get("/v1/analytics/meter/CSRF-1/live")).status_code == 404
    names = [key["name"] for key in (await client.get("/v1/keys")).json()]
    assert "csrf" not in names


@pytest.mark.parametrize(
    "headers",
    [
        {"Origin": "null"},
        {"Origin": "http://localhost:3000"},  # another local site is another origin
        {"Sec-Fetch-Site": "cross-site"},
    ],
)
async def test_cross_site_requests_are_refused(
    client: httpx.AsyncClient, headers: dict[str, str]
) -> None:
    response = await client.get("/v1/keys", headers=headers)
    assert response.status_code == 403


@pytest.mark.parametrize(
    "headers",
    [
        {"Origin": "http://127.0.0.1:8000"},
        {"Origin": "http://localhost:8000", "Sec-Fetch-Site": "same-origin"},
        {"Sec-Fetch-Site": "none"},  # typed into the address bar
    ],
)
async def test_the_engines_own_pages_may_call_it(
    client: httpx.AsyncClient, headers: dict[str, str]
) -> None:
    response = await client.post(
        "/v1/ingest/meter", json=meter_reading(meter_id="SAME-1"), headers=headers
    )
    assert response.status_code == 201


async def test_with_auth_on_the_host_is_not_checked(settings: Settings) -> None:
    # Behind a proxy the Host is the public name; the key protects the engine.
    async with start_engine(settings.model_copy(update={"auth_enabled": True})) as engine:
        response = await engine.client.get(
            "/healthz", headers={"Host": "api.example.com", "Origin": EVIL}
        )
        assert response.status_code == 200


async def test_a_real_loopback_engine_refuses_a_rebound_host(database_url: str) -> None:
    async with running_engine(database_url, {"EIE_AUTH_ENABLED": "false"}) as engine:
        reader, writer = await connect(engine.port)
        assert await send(writer, request("/v1/keys", host=f"attacker.example:{engine.port}"))
        assert (await read_answer(reader)).status == 400
        assert await send(writer, request("/v1/keys", host=f"127.0.0.1:{engine.port}"))
        assert (await read_answer(reader)).status == 200
        await close(writer)
