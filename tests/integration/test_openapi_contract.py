"""Every success the OpenAPI document declares is driven for real and its body validated.

The document served at /openapi.json is what clients generate code from. Most endpoints answer
with `json_response(dict)`, so their `response_model` is documentation only, and the ingest
routes are bare ASGI: nothing but this test ties what they send to what the document says. Each
documented 2xx of each operation needs a case below (a missing one fails), its real answer must
have that status, and its body must validate against the declared schema, with every object
closed (`additionalProperties: false` where the document leaves it open), so a field the answer
carries and the document does not name is caught too.
"""

from __future__ import annotations

import copy
from collections.abc import Awaitable, Callable
from typing import Any

import asyncpg
import httpx
import pytest
from jsonschema import Draft202012Validator  # type: ignore[import-untyped]

from energy_ingest.auth.keys import Scope
from energy_ingest.config import Settings
from energy_ingest.keys.service import create_key
from tests.factories import iso, meter_reading, minute, vehicle_reading
from tests.support import start_engine

Case = Callable[[httpx.AsyncClient], Awaitable[httpx.Response]]

VEHICLE = "contract-ev"
METER = "contract-meter"


async def _assign(client: httpx.AsyncClient, meter_id: str, start: int) -> httpx.Response:
    return await client.put(
        f"/v1/vehicles/{VEHICLE}/meter", json={"meterId": meter_id, "from": iso(minute(start))}
    )


async def _create_key(client: httpx.AsyncClient) -> httpx.Response:
    return await client.post(
        "/v1/keys",
        json={"scopes": ["ingest"], "deviceId": "contract-bound", "deviceKind": "meter"},
    )


async def _revoke_key(client: httpx.AsyncClient) -> httpx.Response:
    created = (await _create_key(client)).json()
    return await client.delete(f"/v1/keys/{created['id']}")


def _post(path: str, body: Any) -> Case:
    async def send(client: httpx.AsyncClient) -> httpx.Response:
        return await client.post(path, json=body)

    return send


def _get(path: str, **params: str) -> Case:
    async def send(client: httpx.AsyncClient) -> httpx.Response:
        return await client.get(path, params=params)

    return send


def _twice(case: Case) -> Case:
    """The answer to the second of two identical requests (a duplicate, an unchanged state)."""

    async def send(client: httpx.AsyncClient) -> httpx.Response:
        await case(client)
        return await case(client)

    return send


_M = meter_reading(meter_id=METER, at=minute(-30))
_V = vehicle_reading(vehicle_id=VEHICLE, at=minute(-30))

# (method, documented path, status) → requests that really get that answer, one for each shape
# of body it may have. Run in this order on one engine: later cases read what earlier ones stored.
CASES: dict[tuple[str, str, str], Case | tuple[Case, ...]] = {
    ("post", "/v1/ingest/meter", "201"): _post("/v1/ingest/meter", _M),
    ("post", "/v1/ingest/meter", "200"): _post("/v1/ingest/meter", _M),
    ("post", "/v1/ingest/vehicle", "201"): _post("/v1/ingest/vehicle", _V),
    ("post", "/v1/ingest/vehicle", "200"): _post("/v1/ingest/vehicle", _V),
    ("post", "/v1/ingest/meter/batch", "201"): _post(
        "/v1/ingest/meter/batch",
        [meter_reading(meter_id=METER, at=minute(-29)), meter_reading(meter_id="bad id")],
    ),
    ("post", "/v1/ingest/vehicle/batch", "201"): _post(
        "/v1/ingest/vehicle/batch",
        [vehicle_reading(vehicle_id=VEHICLE, at=minute(-29)), vehicle_reading(soc=-5.0)],
    ),
    ("post", "/v1/ingest", "201"): (
        _post("/v1/ingest", [_M, vehicle_reading(vehicle_id=VEHICLE, at=minute(-28))]),
        _post("/v1/ingest", meter_reading(meter_id=METER, at=minute(-26))),
        _post("/v1/ingest", vehicle_reading(vehicle_id=VEHICLE, at=minute(-26))),
    ),
    ("post", "/v1/ingest", "200"): _twice(
        _post("/v1/ingest", meter_reading(meter_id=METER, at=minute(-27)))
    ),
    ("put", "/v1/vehicles/{vehicleId}/meter", "201"): lambda client: _assign(client, METER, -60),
    ("put", "/v1/vehicles/{vehicleId}/meter", "200"): lambda client: _assign(client, METER, -50),
    ("get", "/v1/vehicles/{vehicleId}/assignments", "200"): _get(
        f"/v1/vehicles/{VEHICLE}/assignments"
    ),
    ("get", "/v1/analytics/performance/{vehicleId}", "200"): _get(
        f"/v1/analytics/performance/{VEHICLE}"
    ),
    ("get", "/v1/analytics/vehicle/{vehicleId}/series", "200"): (
        _get(f"/v1/analytics/vehicle/{VEHICLE}/series"),
        _get(f"/v1/analytics/vehicle/{VEHICLE}/series", step="1d", tz="Europe/Berlin"),
    ),
    ("get", "/v1/analytics/vehicle/{vehicleId}/sessions", "200"): (
        _get(f"/v1/analytics/vehicle/{VEHICLE}/sessions"),
        _get(f"/v1/analytics/vehicle/{VEHICLE}/sessions", **{"from": iso(minute(-5))}),  # none
    ),
    ("get", "/v1/analytics/fleet/devices", "200"): (
        _get("/v1/analytics/fleet/devices"),
        _get("/v1/analytics/fleet/devices", limit="1"),
        _get("/v1/analytics/fleet/devices", silentFor="P1D"),
    ),
    ("get", "/v1/analytics/fleet/performance", "200"): (
        _get("/v1/analytics/fleet/performance"),
        _get("/v1/analytics/fleet/performance", limit="1"),
    ),
    ("get", "/v1/analytics/meter/{meterId}/live", "200"): _get(f"/v1/analytics/meter/{METER}/live"),
    ("get", "/v1/analytics/charger/{chargePointId}/live", "200"): _get(
        "/v1/analytics/charger/contract-cp/live"
    ),
    ("get", "/v1/analytics/vehicle/{vehicleId}/live", "200"): _get(
        f"/v1/analytics/vehicle/{VEHICLE}/live"
    ),
    ("delete", "/v1/vehicles/{vehicleId}/meter", "200"): lambda client: client.delete(
        f"/v1/vehicles/{VEHICLE}/meter"
    ),
    ("post", "/v1/keys", "201"): _create_key,
    ("get", "/v1/keys", "200"): _get("/v1/keys"),
    ("delete", "/v1/keys/{keyId}", "200"): _revoke_key,
    ("get", "/healthz", "200"): _get("/healthz"),
    ("get", "/readyz", "200"): _get("/readyz"),
    ("get", "/", "200"): _get("/"),
    ("get", "/metrics", "200"): _get("/metrics"),
}


def _closed(schema: Any) -> Any:
    """The schema with every object that lists its properties closed to others."""
    if isinstance(schema, dict):
        closed = {name: _closed(value) for name, value in schema.items()}
        if "properties" in closed:
            closed.setdefault("additionalProperties", False)
        return closed
    if isinstance(schema, list):
        return [_closed(value) for value in schema]
    return schema


def _documented_successes(document: dict[str, Any]) -> dict[tuple[str, str, str], Any]:
    """(method, path, status) → the declared JSON schema (None: no JSON body declared)."""
    successes = {}
    for path, operations in document["paths"].items():
        for method, operation in operations.items():
            for status, answer in operation["responses"].items():
                if status.startswith("2"):
                    content = answer.get("content", {}).get("application/json")
                    successes[method, path, status] = None if content is None else content["schema"]
    return successes


@pytest.fixture
def contract_settings(settings: Settings) -> Settings:
    return settings.model_copy(update={"auth_enabled": True})


async def test_every_documented_success_is_what_the_route_really_answers(
    contract_settings: Settings, db: asyncpg.Connection
) -> None:
    _, token = await create_key(db, {Scope.ADMIN})
    async with start_engine(contract_settings) as engine:
        client = engine.client
        client.headers["Authorization"] = f"Bearer {token}"
        document = (await client.get("/openapi.json")).json()
        successes = _documented_successes(document)
        assert set(successes) == set(CASES), (
            f"documented successes without a case: {sorted(set(successes) - set(CASES))}; "
            f"cases of no documented success: {sorted(set(CASES) - set(successes))}"
        )
        components = _closed(document["components"])
        failures: list[str] = []
        for (method, path, status), cases in CASES.items():
            for case in cases if isinstance(cases, tuple) else (cases,):
                failures.extend(
                    await _check(client, case, method, path, status, successes, components)
                )
        assert not failures, "\n".join(failures)


async def _check(
    client: httpx.AsyncClient,
    case: Case,
    method: str,
    path: str,
    status: str,
    successes: dict[tuple[str, str, str], Any],
    components: dict[str, Any],
) -> list[str]:
    """What is wrong with the real answer to `case`, against the document (nothing: [])."""
    where = f"{method.upper()} {path} {status}"
    answer = await case(client)
    if str(answer.status_code) != status:
        return [f"{where}: answered {answer.status_code} {answer.text[:300]}"]
    schema = successes[method, path, status]
    is_json = answer.headers["content-type"].startswith("application/json")
    if schema is None:
        return [f"{where}: answers JSON, the document declares no schema"] if is_json else []
    if not is_json:
        return [f"{where}: declared JSON, answered {answer.headers['content-type']}"]
    validator = Draft202012Validator(
        {**_closed(copy.deepcopy(schema)), "components": components},
        format_checker=Draft202012Validator.FORMAT_CHECKER,
    )
    return [
        f"{where}: {'/'.join(map(str, error.absolute_path)) or 'body'}: {error.message}"
        for error in validator.iter_errors(answer.json())
    ]


def test_a_body_off_the_document_is_caught() -> None:
    """The validation the contract relies on fails on an undeclared field and a wrong type."""
    components = _closed(
        {
            "schemas": {
                "Answer": {
                    "type": "object",
                    "properties": {"status": {"type": "string"}},
                    "required": ["status"],
                }
            }
        }
    )
    validator = Draft202012Validator(
        {"$ref": "#/components/schemas/Answer", "components": components}
    )
    assert validator.is_valid({"status": "ok"})
    assert not validator.is_valid({"status": "ok", "undeclared": 1})
    assert not validator.is_valid({"status": 1})
