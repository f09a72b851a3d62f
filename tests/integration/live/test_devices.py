"""GET /v1/analytics/fleet/devices: devices gone silent, and assigned ones never heard from."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import httpx
import pytest
from starlette.routing import compile_path

from energy_ingest.auth.keys import Scope
from energy_ingest.config import Settings
from energy_ingest.keys.service import create_key
from energy_ingest.readings import DeviceKind
from tests.factories import iso, meter_reading, minute, vehicle_reading
from tests.support import Engine, start_engine

PATH = "/v1/analytics/fleet/devices"


@pytest.fixture
def now() -> datetime:
    """The test's own now (not the module's import time: a long run would age it)."""
    return datetime.now(UTC).replace(microsecond=0)


async def put_live(db: asyncpg.Connection, kind: str, device_id: str, ts: datetime) -> None:
    if kind == "meter":
        await db.execute(
            "INSERT INTO meter_live (ts, received_at, kwh_consumed_ac, voltage, meter_id)"
            " VALUES ($1, $1, 1, 230, $2)",
            ts,
            device_id,
        )
    else:
        await db.execute(
            "INSERT INTO vehicle_live (ts, received_at, soc, kwh_delivered_dc, battery_temp,"
            " vehicle_id) VALUES ($1, $1, 50, 1, 30, $2)",
            ts,
            device_id,
        )


async def put_assignment(
    db: asyncpg.Connection, vehicle_id: str, meter_id: str, start: datetime, end: datetime | None
) -> None:
    await db.execute(
        "INSERT INTO vehicle_meter_assignments (vehicle_id, meter_id, during)"
        " VALUES ($1, $2, tstzrange($3, $4, '[)'))",
        vehicle_id,
        meter_id,
        start,
        end,
    )


async def devices(client: httpx.AsyncClient, **params: Any) -> dict[str, Any]:
    response = await client.get(PATH, params=params)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def listed(body: dict[str, Any]) -> list[tuple[str, str, str | None]]:
    return [(d["kind"], d["deviceId"], d["lastSeen"]) for d in body["devices"]]


async def test_silent_and_never_reported_devices_oldest_first(
    db: asyncpg.Connection, client: httpx.AsyncClient, now: datetime
) -> None:
    await put_live(db, "meter", "M-fresh", now - timedelta(minutes=2))
    await put_live(db, "meter", "M-quiet", now - timedelta(minutes=20))
    await put_live(db, "vehicle", "V-quiet", now - timedelta(hours=3))
    await put_live(db, "vehicle", "V-fresh", now - timedelta(minutes=12))
    # Assigned, and never reported since: listed with no lastSeen, before every other.
    await put_assignment(db, "V-new", "M-new", now - timedelta(days=1), None)
    # Assigned, both reporting: listed only when silent (M-fresh is not).
    await put_assignment(db, "V-fresh", "M-fresh", now - timedelta(days=1), None)
    # An ended assignment whose devices never reported: nobody expects them any more.
    await put_assignment(db, "V-gone", "M-gone", now - timedelta(days=3), now - timedelta(days=2))

    body = await devices(client)

    assert listed(body) == [
        ("meter", "M-new", None),
        ("vehicle", "V-new", None),
        ("vehicle", "V-quiet", iso(now - timedelta(hours=3))),
        ("meter", "M-quiet", iso(now - timedelta(minutes=20))),
    ]
    assert body["nextCursor"] is None
    assert listed(await devices(client, kind="meter")) == [
        ("meter", "M-new", None),
        ("meter", "M-quiet", iso(now - timedelta(minutes=20))),
    ]
    assert [d[1] for d in listed(await devices(client, kind="vehicle", silentFor="PT1H"))] == [
        "V-new",
        "V-quiet",
    ]
    assert [d[1] for d in listed(await devices(client, silentFor="PT10M"))] == [
        "M-new",
        "V-new",
        "V-quiet",
        "M-quiet",
        "V-fresh",
    ]
    assert [d[1] for d in listed(await devices(client, silentFor="P1DT1S"))] == ["M-new", "V-new"]


async def test_readings_through_the_api_move_a_device_off_the_list(
    client: httpx.AsyncClient,
) -> None:
    old = minute(-30)
    response = await client.post("/v1/ingest/meter", json=meter_reading(meter_id="M1", at=old))
    assert response.status_code == 201
    response = await client.post(
        "/v1/ingest/vehicle", json=vehicle_reading(vehicle_id="V1", at=minute(-1))
    )
    assert response.status_code == 201

    assert listed(await devices(client)) == [("meter", "M1", iso(old))]

    response = await client.post(
        "/v1/ingest/meter", json=meter_reading(meter_id="M1", at=minute(-1))
    )
    assert response.status_code == 201
    assert listed(await devices(client)) == []


async def test_pages_hold_every_device_once(
    db: asyncpg.Connection, client: httpx.AsyncClient, now: datetime
) -> None:
    # 130 devices: a third never reported, and the others sharing last-seen moments, so pages
    # end inside runs of equal lastSeen and inside the never-reported run.
    for number in range(45):
        await put_assignment(db, f"V-new-{number:03}", f"M-new-{number:03}", now, None)
    for number in range(40):
        moment = now - timedelta(hours=1 + number % 4, microseconds=number % 2)
        await put_live(db, "meter", f"M-{number:03}", moment)
    everything = listed(await devices(client, limit=1000))
    assert len(everything) == 130
    assert len(set(everything)) == 130

    for limit in (1, 7, 45, 129, 130):
        pages: list[tuple[str, str, str | None]] = []
        cursor = None
        while True:
            params: dict[str, Any] = {"limit": limit}
            if cursor is not None:
                params["cursor"] = cursor
            body = await devices(client, **params)
            assert len(body["devices"]) <= limit
            pages.extend(listed(body))
            cursor = body["nextCursor"]
            if cursor is None:
                break
            assert len(body["devices"]) == limit
        assert pages == everything, limit


async def test_the_default_limit_is_100(
    db: asyncpg.Connection, client: httpx.AsyncClient, now: datetime
) -> None:
    for number in range(101):
        await put_live(db, "vehicle", f"V-{number:03}", now - timedelta(hours=1))

    first = await devices(client)
    rest = await devices(client, cursor=first["nextCursor"])

    assert len(first["devices"]) == 100
    assert [d["deviceId"] for d in rest["devices"]] == ["V-100"]
    assert rest["nextCursor"] is None


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"kind": "charger"}, "kind"),
        ({"kind": ""}, "kind"),
        ({"silentFor": "15m"}, "silentFor"),
        ({"silentFor": "P"}, "silentFor"),
        ({"silentFor": "PT"}, "silentFor"),
        ({"silentFor": "PT0S"}, "silentFor"),
        ({"silentFor": "P1Y"}, "silentFor"),
        ({"silentFor": "P1M"}, "silentFor"),
        ({"silentFor": "P999999W"}, "silentFor"),
        ({"limit": "0"}, "limit"),
        ({"limit": "1001"}, "limit"),
        ({"limit": "many"}, "limit"),
        ({"cursor": "not-a-cursor"}, "cursor"),
        ({"cursor": "WzEsMiwzXQ"}, "cursor"),  # [1,2,3]
        ({"cursor": "x" * 5000}, "cursor"),
    ],
)
async def test_malformed_parameters_are_named(
    client: httpx.AsyncClient, params: dict[str, str], field: str
) -> None:
    response = await client.get(PATH, params=params)

    assert response.status_code == 422, response.text
    assert [problem["field"] for problem in response.json()["errors"]] == [field]


@pytest.mark.parametrize(
    ("silent_for", "minutes"),
    [("PT15M", 15), ("PT1H30M", 90), ("P1D", 1440), ("P1W", 10080), ("PT90S", 1.5)],
)
async def test_silent_for_reads_iso_8601_durations(
    db: asyncpg.Connection,
    client: httpx.AsyncClient,
    silent_for: str,
    minutes: float,
    now: datetime,
) -> None:
    await put_live(
        db, "meter", "M-inside", now - timedelta(minutes=minutes) + timedelta(seconds=30)
    )
    await put_live(
        db, "meter", "M-beyond", now - timedelta(minutes=minutes) - timedelta(seconds=30)
    )

    assert [d[1] for d in listed(await devices(client, silentFor=silent_for))] == ["M-beyond"]


async def test_read_scope_and_no_device_bound_key(
    db: asyncpg.Connection, settings: Settings
) -> None:
    _, admin = await create_key(db, {Scope.ADMIN})
    _, reader = await create_key(db, {Scope.READ})
    _, ingest = await create_key(db, {Scope.INGEST})
    _, bound = await create_key(db, {Scope.READ}, device_id="V1", device_kind=DeviceKind.VEHICLE)
    async with start_engine(settings.model_copy(update={"auth_enabled": True})) as engine:

        async def status(token: str | None) -> int:
            headers = {"Authorization": f"Bearer {token}"} if token else {}
            return (await engine.client.get(PATH, headers=headers)).status_code

        assert await status(None) == 401
        assert await status(ingest) == 403
        assert await status(bound) == 403
        assert await status(reader) == 200
        assert await status(admin) == 200


def test_no_route_shadows_another(engine: Engine) -> None:
    """No GET path of the API, its parameters filled in, is matched by another's template:
    whatever order the routers are mounted in, each request reaches its own route."""
    templates = [
        path for path, operations in engine.app.openapi()["paths"].items() if "get" in operations
    ]
    assert PATH in templates
    patterns = {template: compile_path(template)[0] for template in templates}
    for template in templates:
        concrete = re.sub(r"\{[^}]+\}", "x1", template)
        matching = [other for other, regex in patterns.items() if regex.match(concrete)]
        assert matching == [template], f"{concrete} matches {matching}"
