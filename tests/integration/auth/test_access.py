"""Who may do what: 401 without a valid key, 403 without the scope or for another device."""

from __future__ import annotations

import logging
import secrets
from typing import Any

import asyncpg
import httpx
import pytest

from tests.factories import meter_reading, vehicle_reading
from tests.support import Engine, MakeKey

# Every /v1 route: (method, path template, a concrete request, the scope it needs).
ENDPOINTS: list[tuple[str, str, str, Any, str]] = [
    ("POST", "/v1/ingest/meter", "/v1/ingest/meter", meter_reading(), "ingest"),
    ("POST", "/v1/ingest/vehicle", "/v1/ingest/vehicle", vehicle_reading(), "ingest"),
    ("POST", "/v1/ingest/meter/batch", "/v1/ingest/meter/batch", [meter_reading()], "ingest"),
    (
        "POST",
        "/v1/ingest/vehicle/batch",
        "/v1/ingest/vehicle/batch",
        [vehicle_reading()],
        "ingest",
    ),
    ("POST", "/v1/ingest", "/v1/ingest", meter_reading(), "ingest"),
    ("GET", "/v1/analytics/meter/{meterId}/live", "/v1/analytics/meter/M9/live", None, "read"),
    (
        "GET",
        "/v1/analytics/charger/{chargePointId}/live",
        "/v1/analytics/charger/CP9/live",
        None,
        "read",
    ),
    (
        "GET",
        "/v1/analytics/vehicle/{vehicleId}/live",
        "/v1/analytics/vehicle/V9/live",
        None,
        "read",
    ),
    (
        "GET",
        "/v1/analytics/performance/{vehicleId}",
        "/v1/analytics/performance/V9",
        None,
        "read",
    ),
    (
        "GET",
        "/v1/analytics/vehicle/{vehicleId}/series",
        "/v1/analytics/vehicle/V9/series",
        None,
        "read",
    ),
    (
        "GET",
        "/v1/analytics/vehicle/{vehicleId}/sessions",
        "/v1/analytics/vehicle/V9/sessions",
        None,
        "read",
    ),
    ("GET", "/v1/analytics/fleet/devices", "/v1/analytics/fleet/devices", None, "read"),
    (
        "GET",
        "/v1/analytics/fleet/performance",
        "/v1/analytics/fleet/performance",
        None,
        "read",
    ),
    (
        "GET",
        "/v1/vehicles/{vehicleId}/assignments",
        "/v1/vehicles/V9/assignments",
        None,
        "read",
    ),
    ("PUT", "/v1/vehicles/{vehicleId}/meter", "/v1/vehicles/V9/meter", {"meterId": "M9"}, "admin"),
    ("DELETE", "/v1/vehicles/{vehicleId}/meter", "/v1/vehicles/V9/meter", None, "admin"),
    ("POST", "/v1/keys", "/v1/keys", {"scopes": ["read"]}, "admin"),
    ("GET", "/v1/keys", "/v1/keys", None, "admin"),
    ("DELETE", "/v1/keys/{keyId}", "/v1/keys/0123456789ab", None, "admin"),
]
CHALLENGE = 'Bearer realm="energy-ingest"'


async def _call(
    client: httpx.AsyncClient, method: str, path: str, body: Any, headers: dict[str, str]
) -> httpx.Response:
    return await client.request(
        method, path, json=body if body is not None else None, headers=headers
    )


async def _stored_anything(db: asyncpg.Connection) -> int:
    return int(
        await db.fetchval(
            "SELECT (SELECT count(*) FROM meter_readings) + (SELECT count(*) FROM vehicle_readings)"
            " + (SELECT count(*) FROM vehicle_meter_assignments)"
            " + (SELECT count(*) FROM api_keys WHERE name <> 'first admin key')"
        )
    )


def test_every_v1_route_is_covered_here(secured: Engine) -> None:
    routes = {
        (method.upper(), path)
        for path, operations in secured.app.openapi()["paths"].items()
        if path.startswith("/v1")
        for method in operations
    }
    assert routes == {(method, template) for method, template, *_ in ENDPOINTS}


@pytest.mark.parametrize(("method", "template", "path", "body", "scope"), ENDPOINTS)
async def test_without_a_key_every_v1_endpoint_is_401_and_changes_nothing(
    secured: Engine,
    db: asyncpg.Connection,
    method: str,
    template: str,
    path: str,
    body: Any,
    scope: str,
) -> None:
    answer = await _call(secured.client, method, path, body, {})
    assert answer.status_code == 401, answer.text
    assert answer.headers["www-authenticate"] == CHALLENGE
    assert answer.json()["error"] == "unauthorized"
    assert "Authorization: Bearer" in answer.json()["message"]
    assert await _stored_anything(db) == 0


async def test_bad_credentials_are_401_with_invalid_token(
    secured: Engine, db: asyncpg.Connection, make_key: MakeKey
) -> None:
    good = (await make_key("ingest"))["Authorization"].removeprefix("Bearer ")
    prefix = good[4:16]
    attempts = {
        f"Bearer eie_{secrets.token_hex(6)}_{secrets.token_urlsafe(32)}": True,  # unknown key
        f"Bearer eie_{prefix}_{secrets.token_urlsafe(32)}": True,  # right id, wrong secret
        f"Bearer {good}x": True,
        "Bearer not-a-key": True,
        f"Bearer eie_{prefix}": True,
        f"Basic {good}": False,  # not our scheme: as if no key had been sent
        "Bearer": False,
        "Bearer    ": False,
        good: False,
    }
    for header, token_given in attempts.items():
        answer = await secured.client.post(
            "/v1/ingest/meter", json=meter_reading(), headers={"Authorization": header}
        )
        assert answer.status_code == 401, header
        expected = CHALLENGE + (', error="invalid_token"' if token_given else "")
        assert answer.headers["www-authenticate"] == expected, header
    assert await db.fetchval("SELECT count(*) FROM meter_readings") == 0
    # The scheme is case-insensitive (RFC 7235); the key itself is not.
    accepted = await secured.client.post(
        "/v1/ingest/meter", json=meter_reading(), headers={"Authorization": f"bearer {good}"}
    )
    assert accepted.status_code == 201


@pytest.mark.parametrize("scope", ["ingest", "read", "admin"])
async def test_each_scope_reaches_exactly_its_endpoints(
    secured: Engine, make_key: MakeKey, scope: str
) -> None:
    headers = await make_key(scope)
    for method, _, path, body, needed in ENDPOINTS:
        answer = await _call(secured.client, method, path, body, headers)
        if scope in (needed, "admin"):
            assert answer.status_code not in (401, 403), (method, path, answer.text)
        else:
            assert answer.status_code == 403, (method, path, answer.text)
            assert answer.json() == {
                "error": "forbidden",
                "message": f"this key lacks the {needed} scope",
            }


async def test_a_key_with_several_scopes_has_each(secured: Engine, make_key: MakeKey) -> None:
    headers = await make_key("ingest", "read")
    client = secured.client
    assert (
        await client.post("/v1/ingest/meter", json=meter_reading(meter_id="M1"), headers=headers)
    ).status_code == 201
    assert (await client.get("/v1/analytics/meter/M1/live", headers=headers)).status_code == 200
    assert (await client.get("/v1/keys", headers=headers)).status_code == 403


async def test_401_and_403_never_tell_whether_a_device_exists(
    secured: Engine, make_key: MakeKey
) -> None:
    admin = await make_key("admin")
    client = secured.client
    await client.post(
        "/v1/ingest/vehicle", json=vehicle_reading(vehicle_id="V-real"), headers=admin
    )
    own = await make_key("read", device="V-own", kind="vehicle")
    for template in (
        "/v1/analytics/vehicle/{}/live",
        "/v1/analytics/performance/{}",
        "/v1/analytics/vehicle/{}/series",
        "/v1/analytics/vehicle/{}/sessions",
        "/v1/vehicles/{}/assignments",
    ):
        real, ghost = (template.format(v) for v in ("V-real", "V-ghost"))
        # No key: 401 for a device that exists and one that does not, word for word.
        first, second = await client.get(real), await client.get(ghost)
        assert (first.status_code, first.json()) == (second.status_code, second.json())
        assert first.status_code == 401
        # A key of another device: 403, the same for both.
        first, second = await client.get(real, headers=own), await client.get(ghost, headers=own)
        assert first.status_code == second.status_code == 403
        assert first.json() == second.json()
        assert "V-real" not in first.text
        assert "V-ghost" not in first.text
        # Its own device, not reported yet: the ordinary answer.
        assert (await client.get(template.format("V-own"), headers=own)).status_code in (200, 404)


async def test_a_device_bound_key_writes_only_its_own_device(
    secured: Engine, db: asyncpg.Connection, make_key: MakeKey
) -> None:
    client = secured.client
    meter_key = await make_key("ingest", device="M1", kind="meter")

    own = await client.post(
        "/v1/ingest/meter", json=meter_reading(meter_id="M1"), headers=meter_key
    )
    assert own.status_code == 201
    for path, body in (
        ("/v1/ingest/meter", meter_reading(meter_id="M2")),
        ("/v1/ingest", meter_reading(meter_id="M2")),
        ("/v1/ingest/vehicle", vehicle_reading(vehicle_id="M1")),  # same id, other kind
        (
            "/v1/ingest/meter/batch",
            [meter_reading(meter_id="M1", kwh=2.0), meter_reading(meter_id="M2")],
        ),
        ("/v1/ingest", [vehicle_reading(vehicle_id="M1")]),
    ):
        answer = await client.post(path, json=body, headers=meter_key)
        assert answer.status_code == 403, (path, answer.text)
        assert answer.json()["error"] == "forbidden"
        assert "meter M1" in answer.json()["message"]
    # Nothing of a refused batch was stored, not even its item of the key's own device.
    assert await db.fetchval("SELECT count(*) FROM meter_reading_history") == 1
    assert await db.fetchval("SELECT count(*) FROM vehicle_reading_history") == 0

    from tests.factories import minute

    batch = [meter_reading(meter_id="M1", at=minute(-5 - i)) for i in range(3)]
    answer = await client.post("/v1/ingest/meter/batch", json=batch, headers=meter_key)
    assert answer.status_code == 201
    assert answer.json()["stored"] == 3

    # A device key names its kind (kind-less keys made before that: test_kindless_keys.py).
    with pytest.raises(ValueError, match="must name its kind"):
        await make_key("ingest", device="X1")


async def test_invalid_readings_of_a_device_bound_key_are_still_422(
    secured: Engine, make_key: MakeKey
) -> None:
    key = await make_key("ingest", device="M1", kind="meter")
    answer = await secured.client.post(
        "/v1/ingest/meter", json=meter_reading(meter_id="M1", voltage=-5), headers=key
    )
    assert answer.status_code == 422
    assert answer.json()["errors"][0]["field"] == "voltage"


async def test_keys_never_reach_the_logs(
    secured: Engine, make_key: MakeKey, caplog: pytest.LogCaptureFixture
) -> None:
    headers = await make_key("ingest")
    token = headers["Authorization"].removeprefix("Bearer ")
    wrong = f"eie_{token[4:16]}_{secrets.token_urlsafe(32)}"
    with caplog.at_level(logging.DEBUG):
        await secured.client.post("/v1/ingest/meter", json=meter_reading(), headers=headers)
        await secured.client.post(
            "/v1/ingest/meter", json=meter_reading(), headers={"Authorization": f"Bearer {wrong}"}
        )
    assert caplog.records, "the requests were not logged at all"
    assert token[17:] not in caplog.text
    assert wrong[17:] not in caplog.text
    # The access lines name the key that was presented by its public id, accepted or not.
    access = [r for r in caplog.records if r.name == "energy_ingest.access"]
    assert [(r.__dict__.get("keyId"), r.__dict__["status"]) for r in access] == [
        (token[4:16], 201),
        (token[4:16], 401),
    ]


async def test_the_openapi_document_declares_the_key_on_v1_only(secured: Engine) -> None:
    document = (await secured.client.get("/openapi.json")).json()
    assert document["components"]["securitySchemes"]["apiKey"]["scheme"] == "bearer"
    for path, operations in document["paths"].items():
        for operation in operations.values():
            expected: list[dict[str, list[str]]] | None = (
                [{"apiKey": []}] if path.startswith("/v1/") else None
            )
            assert operation.get("security") == expected, path
    for path in ("/healthz", "/readyz", "/metrics", "/docs"):
        assert (await secured.client.get(path)).status_code == 200, path


async def test_a_device_bound_key_may_not_read_the_fleet(
    secured: Engine, make_key: MakeKey
) -> None:
    headers = await make_key("read", device="V1", kind="vehicle")

    answer = await secured.client.get("/v1/analytics/fleet/performance", headers=headers)

    assert answer.status_code == 403
    assert answer.json()["message"] == "this key may only access vehicle V1"
    fleet_key = await make_key("read")
    fleet = await secured.client.get("/v1/analytics/fleet/performance", headers=fleet_key)
    assert fleet.status_code == 200
