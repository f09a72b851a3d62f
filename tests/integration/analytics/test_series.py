"""GET /v1/analytics/vehicle/{vehicleId}/series: a vehicle's energy per time bucket."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import asyncpg
import httpx
import pytest

from energy_ingest.auth.keys import Scope
from energy_ingest.config import Settings
from energy_ingest.db.partitions import HISTORY_TABLES, create_partition_statement
from energy_ingest.keys.service import create_key
from energy_ingest.readings import DeviceKind
from tests.factories import iso, meter_reading, minute, vehicle_reading
from tests.support import back_fill_rollups, start_engine


def hour_start(hours_ago: int) -> datetime:
    """A whole UTC hour `hours_ago` hours before the current one."""
    now = datetime.now(UTC).replace(minute=0, second=0, microsecond=0)
    return now - timedelta(hours=hours_ago)


async def send(client: httpx.AsyncClient, kind: str, readings: list[dict[str, Any]]) -> None:
    response = await client.post(f"/v1/ingest/{kind}/batch", json=readings)
    assert response.status_code == 201, response.text
    assert response.json()["stored"] == len(readings)


async def series(client: httpx.AsyncClient, vehicle_id: str, **params: str) -> httpx.Response:
    return await client.get(f"/v1/analytics/vehicle/{vehicle_id}/series", params=params)


async def ok_series(client: httpx.AsyncClient, vehicle_id: str, **params: str) -> dict[str, Any]:
    response = await series(client, vehicle_id, **params)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def problem_fields(response: httpx.Response) -> list[str]:
    assert response.status_code == 422, response.text[:500]
    return [problem["field"] for problem in response.json()["errors"]]


def total(buckets: list[dict[str, Any]], field: str) -> Decimal:
    """The exact sum of a field's numbers as written (a null bucket adds nothing)."""
    return sum((Decimal(str(b[field])) for b in buckets if b[field] is not None), Decimal(0))


def at(start: datetime, minutes: int) -> datetime:
    return start + timedelta(minutes=minutes)


async def test_buckets_carry_each_field_and_gaps_stay_gaps(client: httpx.AsyncClient) -> None:
    start = hour_start(5)
    # Hour 0: four minutes of both sides; hour 1: nothing; hour 2: vehicle only.
    await send(
        client,
        "meter",
        [meter_reading(meter_id="ev-1", kwh=1.0, at=at(start, m)) for m in range(4)],
    )
    await send(
        client,
        "vehicle",
        [
            vehicle_reading(
                vehicle_id="ev-1", kwh=0.9, soc=40.0 + m, temp=30.0 + m, at=at(start, m)
            )
            for m in range(4)
        ]
        + [vehicle_reading(vehicle_id="ev-1", kwh=0.5, soc=70.0, temp=25.0, at=at(start, 150))],
    )

    body = await ok_series(client, "ev-1", **{"from": iso(start), "to": iso(at(start, 180))})

    assert body["vehicleId"] == "ev-1"
    assert body["step"] == "1h"
    first, gap, third = body["buckets"]
    assert first == {
        "start": iso(start),
        "energyConsumedAc": 4.0,
        "energyDeliveredDc": 3.6,
        "efficiency": 0.9,
        "soc": 43.0,  # the bucket's last reading
        "averageBatteryTemp": 31.5,
        "maxBatteryTemp": 33.0,
        "dataPoints": {"vehicle": 4, "meter": 4},
    }
    assert gap == {
        "start": iso(at(start, 60)),
        "energyConsumedAc": None,
        "energyDeliveredDc": None,
        "efficiency": None,
        "soc": None,
        "averageBatteryTemp": None,
        "maxBatteryTemp": None,
        "dataPoints": {"vehicle": 0, "meter": 0},
    }
    assert third["start"] == iso(at(start, 120))
    assert third["energyConsumedAc"] is None
    assert third["energyDeliveredDc"] == 0.5
    assert third["efficiency"] is None
    assert third["soc"] == 70.0
    assert third["dataPoints"] == {"vehicle": 1, "meter": 0}


@pytest.mark.parametrize(
    ("step", "width"),
    [("1m", 1), ("5m", 5), ("15m", 15), ("1h", 60), ("1d", 1440)],
)
async def test_each_step_gives_aligned_buckets(
    client: httpx.AsyncClient, step: str, width: int
) -> None:
    await send(client, "vehicle", [vehicle_reading(vehicle_id="ev-1", at=minute(-3))])
    start = hour_start(30) if step == "1d" else hour_start(3)
    end = start + timedelta(minutes=width * 3)

    body = await ok_series(client, "ev-1", **{"from": iso(start), "to": iso(end), "step": step})

    if step == "1d":  # UTC midnights: the one before the window's start, then every day
        midnight = start.replace(hour=0)
        expected = [midnight + timedelta(days=day) for day in range(4 if start > midnight else 3)]
    else:
        expected = [start + timedelta(minutes=width * index) for index in range(3)]
    assert [bucket["start"] for bucket in body["buckets"]] == [iso(e) for e in expected]


async def test_the_default_is_the_last_24_hours_at_1h(client: httpx.AsyncClient) -> None:
    await send(client, "vehicle", [vehicle_reading(vehicle_id="ev-1", kwh=0.25, at=minute(-2))])

    body = await ok_series(client, "ev-1")

    assert body["step"] == "1h"
    starts = [datetime.fromisoformat(bucket["start"]) for bucket in body["buckets"]]
    # A window starting inside an hour begins with that hour's partial bucket: 25 of them.
    assert len(starts) in (24, 25)
    assert all(
        later - earlier == timedelta(hours=1) for earlier, later in itertools.pairwise(starts)
    )
    assert all(s.minute == 0 and s.second == 0 for s in starts)
    assert sum(bucket["dataPoints"]["vehicle"] for bucket in body["buckets"]) == 1


async def test_the_buckets_add_up_to_the_performance_answer(client: httpx.AsyncClient) -> None:
    """Assignments switching meters inside buckets, a window not on bucket edges, 0.1s."""
    start = hour_start(6)
    await send(
        client,
        "meter",
        [
            meter_reading(meter_id=meter, kwh=0.1, at=at(start, m))
            for meter in ("M-a", "M-b", "M-c")
            for m in range(0, 300, 7)
        ],
    )
    await send(
        client,
        "vehicle",
        [
            vehicle_reading(vehicle_id="ev-1", kwh=0.07, soc=50.0, at=at(start, m))
            for m in range(0, 300, 3)
        ],
    )
    for meter, begins in (("M-a", 10), ("M-b", 95), ("M-c", 170)):
        response = await client.put(
            "/v1/vehicles/ev-1/meter", json={"meterId": meter, "from": iso(at(start, begins))}
        )
        assert response.status_code == 201, response.text
    window = {"from": iso(at(start, 17)), "to": iso(at(start, 263))}

    performance = (await client.get("/v1/analytics/performance/ev-1", params=window)).json()
    for step in ("1m", "5m", "15m", "1h", "1d"):
        body = await ok_series(client, "ev-1", **window, step=step)
        buckets = body["buckets"]

        assert total(buckets, "energyConsumedAc") == Decimal(
            str(performance["energyConsumedAc"])
        ), step
        assert total(buckets, "energyDeliveredDc") == Decimal(
            str(performance["energyDeliveredDc"])
        ), step
        assert sum(b["dataPoints"]["meter"] for b in buckets) == performance["dataPoints"]["meter"]
        assert (
            sum(b["dataPoints"]["vehicle"] for b in buckets) == performance["dataPoints"]["vehicle"]
        )
    assert performance["dataPoints"]["meter"] > 0
    assert performance["correlation"] == "assignment"


async def test_a_vehicle_nobody_assigned_uses_its_same_id_meter(client: httpx.AsyncClient) -> None:
    start = hour_start(2)
    await send(client, "meter", [meter_reading(meter_id="ev-1", kwh=2.0, at=at(start, 5))])
    await send(client, "vehicle", [vehicle_reading(vehicle_id="ev-1", kwh=1.5, at=at(start, 5))])

    body = await ok_series(client, "ev-1", **{"from": iso(start), "to": iso(at(start, 60))})

    assert body["buckets"][0]["energyConsumedAc"] == 2.0
    assert body["buckets"][0]["efficiency"] == 0.75


async def test_a_same_id_meter_assigned_elsewhere_feeds_nobody_else(
    client: httpx.AsyncClient,
) -> None:
    start = hour_start(2)
    await send(client, "meter", [meter_reading(meter_id="ev-2", kwh=2.0, at=at(start, 5))])
    await send(client, "vehicle", [vehicle_reading(vehicle_id="ev-2", kwh=1.5, at=at(start, 5))])
    response = await client.put(
        "/v1/vehicles/ev-3/meter", json={"meterId": "ev-2", "from": iso(at(start, -60))}
    )
    assert response.status_code == 201, response.text
    window = {"from": iso(start), "to": iso(at(start, 60))}

    body = await ok_series(client, "ev-2", **window)
    fed = await ok_series(client, "ev-3", **window)

    assert body["buckets"][0]["energyConsumedAc"] is None
    assert body["buckets"][0]["dataPoints"] == {"vehicle": 1, "meter": 0}
    assert fed["buckets"][0]["energyConsumedAc"] == 2.0
    performance = (await client.get("/v1/analytics/performance/ev-2", params=window)).json()
    assert performance["correlation"] == "none"


async def test_1d_buckets_start_at_local_midnight_and_a_dst_day_has_25_hours(
    db: asyncpg.Connection, settings: Settings
) -> None:
    # Berlin left summer time at 03:00 CEST on 2026-10-25: that local day lasted 25 hours.
    for day in range(22, 28):
        for table in HISTORY_TABLES:
            await db.execute(create_partition_statement(table, datetime(2026, 10, day).date()))
    await db.execute("INSERT INTO vehicles (vehicle_id) VALUES ('ev-berlin')")
    moments = {  # UTC instant → the local day it belongs to
        datetime(2026, 10, 24, 21, 59, tzinfo=UTC): "23:59 on the 24th",
        datetime(2026, 10, 24, 22, 0, tzinfo=UTC): "00:00 on the 25th (CEST)",
        datetime(2026, 10, 25, 22, 30, tzinfo=UTC): "23:30 on the 25th (CET)",
        datetime(2026, 10, 25, 23, 0, tzinfo=UTC): "00:00 on the 26th",
    }
    await db.executemany(
        "INSERT INTO vehicle_readings (ts, received_at, kwh_delivered_dc, soc, battery_temp,"
        " vehicle_key) SELECT $1, $1, 1.0, 50, 30, vehicle_key FROM vehicles",
        [(moment,) for moment in moments],
    )
    await db.execute(
        "INSERT INTO vehicle_live (ts, received_at, soc, kwh_delivered_dc, battery_temp,"
        " vehicle_id) VALUES (now(), now(), 50, 1, 30, 'ev-berlin')"
    )
    await back_fill_rollups(db)
    window = {"from": "2026-10-24T00:00:00+02:00", "to": "2026-10-27T00:00:00+01:00"}

    async with start_engine(settings) as engine:
        body = await ok_series(engine.client, "ev-berlin", **window, step="1d", tz="Europe/Berlin")
        utc = await ok_series(engine.client, "ev-berlin", **window, step="1d")

    starts = [datetime.fromisoformat(bucket["start"]) for bucket in body["buckets"]]
    assert [iso(s) for s in starts] == [
        "2026-10-23T22:00:00.000Z",
        "2026-10-24T22:00:00.000Z",
        "2026-10-25T23:00:00.000Z",
    ]
    assert starts[2] - starts[1] == timedelta(hours=25)
    assert [b["dataPoints"]["vehicle"] for b in body["buckets"]] == [1, 2, 1]
    # The same window at UTC midnights: four days, the 23rd's last two hours first.
    assert [b["dataPoints"]["vehicle"] for b in utc["buckets"]] == [0, 2, 2, 0]
    assert utc["buckets"][0]["start"] == "2026-10-23T00:00:00.000Z"


async def test_at_most_2000_buckets(client: httpx.AsyncClient) -> None:
    await send(client, "vehicle", [vehicle_reading(vehicle_id="ev-1", at=minute(-2))])
    start = hour_start(40)

    full = await ok_series(
        client, "ev-1", **{"from": iso(start), "to": iso(at(start, 2000)), "step": "1m"}
    )
    beyond = await series(
        client, "ev-1", **{"from": iso(start), "to": iso(at(start, 2001)), "step": "1m"}
    )
    # 2,000 minutes long but cut inside a minute at both ends: 2,001 buckets.
    unaligned = await series(
        client,
        "ev-1",
        **{
            "from": iso(start + timedelta(seconds=30)),
            "to": iso(at(start, 2000) + timedelta(seconds=30)),
            "step": "1m",
        },
    )

    assert len(full["buckets"]) == 2000
    assert problem_fields(beyond) == ["step"]
    assert beyond.json()["errors"][0]["rule"] == "max_buckets"
    assert problem_fields(unaligned) == ["step"]


async def test_the_window_is_at_most_31_days(client: httpx.AsyncClient) -> None:
    await send(client, "vehicle", [vehicle_reading(vehicle_id="ev-1", at=minute(-2))])
    end = hour_start(0)

    allowed = await series(
        client, "ev-1", **{"from": iso(end - timedelta(days=31)), "to": iso(end), "step": "1d"}
    )
    refused = await series(
        client,
        "ev-1",
        **{"from": iso(end - timedelta(days=31, minutes=1)), "to": iso(end), "step": "1d"},
    )

    assert allowed.status_code == 200, allowed.text
    assert problem_fields(refused) == ["to"]


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"step": "2h"}, "step"),
        ({"step": ""}, "step"),
        ({"tz": "Mars/Olympus"}, "tz"),
        ({"tz": "../../etc/passwd"}, "tz"),
        ({"from": "yesterday"}, "from"),
        ({"from": iso(minute(-5)), "to": iso(minute(-10))}, "from"),
    ],
)
async def test_malformed_parameters_are_named(
    client: httpx.AsyncClient, params: dict[str, str], field: str
) -> None:
    await send(client, "vehicle", [vehicle_reading(vehicle_id="ev-1", at=minute(-2))])

    assert problem_fields(await series(client, "ev-1", **params)) == [field]


async def test_an_unknown_vehicle_is_404_like_performance(client: httpx.AsyncClient) -> None:
    answer = await series(client, "ev-ghost")
    performance = await client.get("/v1/analytics/performance/ev-ghost")

    assert answer.status_code == performance.status_code == 404
    assert answer.json() == performance.json()


async def test_read_scope_and_a_device_key_reads_only_its_vehicle(
    db: asyncpg.Connection, settings: Settings
) -> None:
    _, admin = await create_key(db, {Scope.ADMIN})
    _, reader = await create_key(db, {Scope.READ})
    _, ingest = await create_key(db, {Scope.INGEST})
    _, own = await create_key(db, {Scope.READ}, device_id="ev-own", device_kind=DeviceKind.VEHICLE)
    secured = settings.model_copy(update={"auth_enabled": True})
    async with start_engine(secured) as engine:
        client = engine.client

        def bearer(token: str) -> dict[str, str]:
            return {"Authorization": f"Bearer {token}"}

        for vehicle in ("ev-own", "ev-other"):
            response = await client.post(
                "/v1/ingest/vehicle",
                json=vehicle_reading(vehicle_id=vehicle, at=minute(-2)),
                headers=bearer(admin),
            )
            assert response.status_code == 201, response.text

        async def status(vehicle: str, token: str | None) -> int:
            headers = bearer(token) if token else {}
            path = f"/v1/analytics/vehicle/{vehicle}/series"
            return (await client.get(path, headers=headers)).status_code

        assert await status("ev-other", None) == 401
        assert await status("ev-other", ingest) == 403
        assert await status("ev-other", reader) == 200
        assert await status("ev-other", admin) == 200
        assert await status("ev-own", own) == 200
        assert await status("ev-other", own) == 403
        assert await status("ev-ghost", own) == 403  # decided before any lookup
