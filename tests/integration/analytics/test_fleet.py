"""GET /v1/analytics/fleet/performance: every vehicle, equal to its per-vehicle answer."""

from __future__ import annotations

import csv
import io
from datetime import datetime, timedelta
from typing import Any

import asyncpg
import httpx
import pytest

from tests.factories import iso, meter_reading, minute, vehicle_reading

BASE = minute(0)
FIRST = 300  # minutes of history before BASE, one reading a minute
NUMBERS = (
    "energyConsumedAc",
    "energyDeliveredDc",
    "efficiency",
    "efficiencyRatio",
    "energyLossKwh",
    "averageBatteryTemp",
    "status",
    "meterIds",
    "correlation",
    "dataPoints",
    "dataQuality",
    "charging",
    "standby",
    "threshold",
    "thresholdRule",
)


def at(minutes_ago: float, seconds: int = 0) -> datetime:
    return BASE - timedelta(minutes=minutes_ago) + timedelta(seconds=seconds)


async def post(client: httpx.AsyncClient, kind: str, body: list[dict[str, Any]]) -> None:
    for offset in range(0, len(body), 1000):
        response = await client.post(f"/v1/ingest/{kind}/batch", json=body[offset : offset + 1000])
        assert response.status_code == 201, response.text


async def assign(
    client: httpx.AsyncClient, vehicle_id: str, meter_id: str, start: datetime
) -> None:
    response = await client.put(
        f"/v1/vehicles/{vehicle_id}/meter", json={"meterId": meter_id, "from": iso(start)}
    )
    assert response.status_code == 201, response.text


def meter_history(meter_id: str, base_kwh: float) -> list[dict[str, Any]]:
    return [
        meter_reading(meter_id=meter_id, kwh=base_kwh + (i % 7) / 1000, at=at(i))
        for i in range(1, FIRST + 1)
    ]


def vehicle_history(vehicle_id: str, base_kwh: float) -> list[dict[str, Any]]:
    return [
        vehicle_reading(
            vehicle_id=vehicle_id, kwh=base_kwh + (i % 5) / 1000, temp=20 + (i % 13) / 10, at=at(i)
        )
        for i in range(1, FIRST + 1)
    ]


async def build_fleet(client: httpx.AsyncClient) -> None:
    """Nine vehicles covering each correlation, status and assignment edge."""
    long_ago = at(60 * 24 * 3)
    for vehicle, meter, ac, dc in [
        ("ev-ok", "m-ok", 0.1, 0.09),
        ("ev-loss", "m-loss", 0.1, 0.07),
        ("ev-impl", "m-impl", 0.1, 0.12),
        ("ev-switch", "m-a", 0.2, 0.17),
    ]:
        await assign(client, vehicle, meter, long_ago)
        await post(client, "meter", meter_history(meter, ac))
        await post(client, "vehicle", vehicle_history(vehicle, dc))
    # ev-switch changes meter mid-hour, retroactively: after all its readings are stored.
    await post(client, "meter", meter_history("m-b", 0.3))
    await assign(client, "ev-switch", "m-b", at(137, 20))
    # ev-ended: its meter is assigned and unassigned mid-hour (both retroactively).
    await post(client, "meter", meter_history("m-e", 0.15))
    await post(client, "vehicle", vehicle_history("ev-ended", 0.13))
    await assign(client, "ev-ended", "m-e", at(250, 30))
    response = await client.delete("/v1/vehicles/ev-ended/meter", params={"at": iso(at(40, 13))})
    assert response.status_code == 200, response.text
    # ev-same: never assigned, a meter of its id reports (the seed's rule).
    await post(client, "meter", meter_history("ev-same", 0.11))
    await post(client, "vehicle", vehicle_history("ev-same", 0.1))
    # ev-none: no meter at all; ev-idle: assigned, never reported.
    await post(client, "vehicle", vehicle_history("ev-none", 0.05))
    await assign(client, "ev-idle", "m-idle", long_ago)
    # ev-late: its history arrives days late, then recent readings; retries and conflicts.
    await assign(client, "ev-late", "m-late", long_ago)
    late = [vehicle_reading(vehicle_id="ev-late", kwh=0.4, at=at(60 * 50 + i)) for i in range(9)]
    await post(client, "vehicle", vehicle_history("ev-late", 0.08)[:100])
    await post(client, "meter", meter_history("m-late", 0.1)[:100])
    await post(client, "vehicle", late)
    await post(client, "vehicle", vehicle_history("ev-late", 0.08)[:50])  # duplicates
    conflicting = [meter_reading(meter_id="m-late", kwh=7.0, at=at(i)) for i in range(1, 20)]
    response = await client.post("/v1/ingest/meter/batch", json=conflicting)
    assert response.json()["stored"] == 0


async def fleet(client: httpx.AsyncClient, **params: str) -> dict[str, Any]:
    response = await client.get("/v1/analytics/fleet/performance", params=params)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


async def assert_equal_to_per_vehicle(client: httpx.AsyncClient, body: dict[str, Any]) -> None:
    period = body["period"]
    for row in body["vehicles"]:
        response = await client.get(
            f"/v1/analytics/performance/{row['vehicleId']}",
            params={"from": period["start"], "to": period["end"]},
        )
        assert response.status_code == 200, response.text
        single = response.json()
        assert single["period"] == period
        assert {name: row[name] for name in NUMBERS} == {name: single[name] for name in NUMBERS}


VEHICLES = {
    "ev-ok",
    "ev-loss",
    "ev-impl",
    "ev-switch",
    "ev-ended",
    "ev-same",
    "ev-none",
    "ev-idle",
    "ev-late",
}


@pytest.mark.parametrize(
    "window",
    [
        None,  # the default: 24 whole hours, from rollups alone
        (at(277, 13), at(3, -7)),  # partial hours at both edges
        (at(50, 5), at(20)),  # inside one hour
        (at(FIRST + 60 * 47), at(0)),  # reaching the late readings two days back
    ],
)
async def test_every_row_equals_the_per_vehicle_answer(
    client: httpx.AsyncClient, window: tuple[datetime, datetime] | None
) -> None:
    await build_fleet(client)
    params = {"limit": "1000"}
    if window is not None:
        params |= {"from": iso(window[0]), "to": iso(window[1])}

    body = await fleet(client, **params)

    assert {row["vehicleId"] for row in body["vehicles"]} == VEHICLES
    await assert_equal_to_per_vehicle(client, body)
    rows = {row["vehicleId"]: row for row in body["vehicles"]}
    assert rows["ev-switch"]["meterIds"] == ["m-a", "m-b"] or window == (at(50, 5), at(20))
    if window is None:
        assert {name: rows[name]["status"] for name in rows} == {
            "ev-ok": "ok",
            "ev-loss": "underperforming",
            "ev-impl": "implausible",
            "ev-switch": "underperforming",  # m-b draws more after the switch
            "ev-ended": "implausible",  # its meter counted only while assigned
            "ev-same": "ok",
            "ev-none": "insufficient-data",
            "ev-idle": "insufficient-data",
            "ev-late": "underperforming",
        }
        assert rows["ev-idle"]["lastSeen"] is None
        assert rows["ev-ok"]["completeness"]["vehicle"] == round(FIRST / (24 * 60), 4)


async def test_the_answer_has_the_fields_and_the_summary_adds_up(
    client: httpx.AsyncClient,
) -> None:
    await build_fleet(client)

    body = await fleet(client, limit="2")

    assert set(body) == {"period", "summary", "vehicles", "nextCursor"}
    assert set(body["summary"]) == {
        "vehicles",
        "ok",
        "underperforming",
        "implausible",
        "insufficientData",
        "silent",
        "energyConsumedAc",
        "energyDeliveredDc",
        "efficiency",
        "energyLossKwh",
    }
    summary = body["summary"]
    assert (summary["vehicles"], summary["ok"], summary["underperforming"]) == (9, 2, 3)
    assert (summary["implausible"], summary["insufficientData"], summary["silent"]) == (2, 2, 0)
    assert set(body["vehicles"][0]) == {
        "vehicleId",
        "energyConsumedAc",
        "energyDeliveredDc",
        "efficiency",
        "efficiencyRatio",
        "energyLossKwh",
        "averageBatteryTemp",
        "status",
        "meterIds",
        "correlation",
        "dataPoints",
        "completeness",
        "lastSeen",
        "dataQuality",
        "charging",
        "standby",
        "threshold",
        "thresholdRule",
    }
    everything = await fleet(client, limit="1000")
    rows = everything["vehicles"]
    assert summary["energyDeliveredDc"] == pytest.approx(
        sum(row["energyDeliveredDc"] for row in rows)
    )
    assert summary["energyConsumedAc"] == pytest.approx(
        sum(row["energyConsumedAc"] for row in rows)
    )
    # Worst first: efficiency ascending, vehicles without any last.
    efficiencies = [row["efficiency"] for row in rows]
    known = [value for value in efficiencies if value is not None]
    assert efficiencies == sorted(known) + [None] * (len(rows) - len(known))


async def test_a_stored_reading_is_in_the_next_answer_and_silence_is_counted(
    client: httpx.AsyncClient,
) -> None:
    await post(client, "vehicle", [vehicle_reading(vehicle_id="ev-1", kwh=0.5, at=at(30))])
    await post(client, "vehicle", [vehicle_reading(vehicle_id="ev-2", kwh=0.5, at=at(1))])
    first = await fleet(client)
    assert first["summary"]["silent"] == 1
    assert [row["dataPoints"]["vehicle"] for row in first["vehicles"]] == [1, 1]

    await post(client, "vehicle", [vehicle_reading(vehicle_id="ev-1", kwh=0.25, at=at(2))])
    await post(client, "meter", [meter_reading(meter_id="ev-1", kwh=1.0, at=at(2))])

    then = await fleet(client, sort="vehicleId")
    assert then["summary"]["silent"] == 0
    row = then["vehicles"][0]
    assert (row["vehicleId"], row["dataPoints"], row["energyDeliveredDc"]) == (
        "ev-1",
        {"vehicle": 2, "meter": 1},
        0.75,
    )
    assert row["correlation"] == "same-id"


@pytest.mark.parametrize(
    "sort", ["efficiency", "energyLossKwh", "energyConsumedAc", "vehicleId", "lastSeen"]
)
@pytest.mark.parametrize("order", ["asc", "desc"])
async def test_pages_cover_every_row_once_in_order(
    client: httpx.AsyncClient, sort: str, order: str
) -> None:
    await build_fleet(client)
    whole = await fleet(client, sort=sort, order=order, limit="1000")
    assert whole["nextCursor"] is None
    expected = [row["vehicleId"] for row in whole["vehicles"]]

    seen: list[str] = []
    params = {"sort": sort, "order": order, "limit": "2"}
    pages = 0
    while True:
        body = await fleet(client, **params)
        assert body["period"] == whole["period"]
        seen += [row["vehicleId"] for row in body["vehicles"]]
        pages += 1
        if body["nextCursor"] is None:
            break
        params["cursor"] = body["nextCursor"]
    assert seen == expected
    assert pages == 5
    values = [row[sort] for row in whole["vehicles"] if row[sort] is not None]
    assert values == sorted(values, reverse=order == "desc")


async def test_the_status_filter_keeps_the_words_asked_for(client: httpx.AsyncClient) -> None:
    await build_fleet(client)

    body = await fleet(client, status="underperforming,implausible", sort="vehicleId")

    assert [(row["vehicleId"], row["status"]) for row in body["vehicles"]] == [
        ("ev-ended", "implausible"),
        ("ev-impl", "implausible"),
        ("ev-late", "underperforming"),
        ("ev-loss", "underperforming"),
        ("ev-switch", "underperforming"),
    ]
    assert body["summary"]["vehicles"] == 9  # the summary is the whole fleet's
    body = await fleet(client, status="insufficient-data", limit="1")
    assert [row["vehicleId"] for row in body["vehicles"]] == ["ev-idle"]
    body = await fleet(client, status="insufficient-data", cursor=body["nextCursor"])
    assert [row["vehicleId"] for row in body["vehicles"]] == ["ev-none"]


@pytest.mark.parametrize("how", ["query", "accept"])
async def test_csv_has_every_row(client: httpx.AsyncClient, how: str) -> None:
    await build_fleet(client)
    if how == "query":
        response = await client.get(
            "/v1/analytics/fleet/performance", params={"format": "csv", "limit": "1"}
        )
    else:
        response = await client.get(
            "/v1/analytics/fleet/performance",
            params={"limit": "1"},
            headers={"Accept": "text/csv"},
        )
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(response.text)))
    body = await fleet(client, limit="1000")
    assert [row["vehicleId"] for row in rows] == [row["vehicleId"] for row in body["vehicles"]]
    by_id = {row["vehicleId"]: row for row in body["vehicles"]}
    for row in rows:
        answer = by_id[row["vehicleId"]]
        assert row["status"] == answer["status"]
        assert float(row["energyConsumedAc"]) == answer["energyConsumedAc"]
        assert (float(row["efficiency"]) if row["efficiency"] else None) == answer["efficiency"]
        assert row["meterIds"].split() == answer["meterIds"]
        assert int(row["dataPointsVehicle"]) == answer["dataPoints"]["vehicle"]


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"from": "2026-01-02T00:00:00Z", "to": "2026-01-01T00:00:00Z"}, "from"),
        ({"from": "2026-01-01T00:00:00Z", "to": "2026-02-01T00:00:01Z"}, "to"),
        ({"from": "yesterday"}, "from"),
        ({"limit": "0"}, "limit"),
        ({"limit": "1001"}, "limit"),
        ({"limit": "ten"}, "limit"),
        ({"sort": "soc"}, "sort"),
        ({"order": "up"}, "order"),
        ({"status": "ok,broken"}, "status"),
        ({"cursor": "not-a-cursor"}, "cursor"),
        ({"format": "xml"}, "format"),
    ],
)
async def test_a_bad_parameter_is_422_naming_it(
    client: httpx.AsyncClient, params: dict[str, str], field: str
) -> None:
    response = await client.get("/v1/analytics/fleet/performance", params=params)

    assert response.status_code == 422, response.text
    assert [error["field"] for error in response.json()["errors"]] == [field]


async def test_a_cursor_continues_only_its_own_listing(client: httpx.AsyncClient) -> None:
    await build_fleet(client)
    body = await fleet(client, limit="2")

    response = await client.get(
        "/v1/analytics/fleet/performance",
        params={"limit": "2", "sort": "vehicleId", "cursor": body["nextCursor"]},
    )

    assert response.status_code == 422
    assert [error["field"] for error in response.json()["errors"]] == ["cursor"]


async def test_a_window_of_31_days_is_answered(client: httpx.AsyncClient) -> None:
    await post(client, "vehicle", [vehicle_reading(vehicle_id="ev-1", kwh=0.5, at=at(30))])
    body = await fleet(client, **{"from": iso(at(60 * 24 * 31)), "to": iso(at(0))})
    assert body["vehicles"][0]["dataPoints"] == {"vehicle": 1, "meter": 0}


async def test_a_retroactive_assignment_change_moves_the_meter_minutes_without_rewriting_rollups(
    client: httpx.AsyncClient, db: asyncpg.Connection
) -> None:
    await assign(client, "ev-1", "m-1", at(60 * 24))
    await post(client, "meter", meter_history("m-1", 0.1))
    await post(client, "meter", meter_history("m-2", 0.2))
    await post(client, "vehicle", vehicle_history("ev-1", 0.09))
    rollups = [dict(row) for row in await db.fetch("SELECT * FROM meter_rollups ORDER BY 1, 4")]
    before = await fleet(client)
    assert before["vehicles"][0]["meterIds"] == ["m-1"]

    # Mid-hour, 3 h 20 min 30 s ago: from then on m-2 fed ev-1, as an operator now records.
    await assign(client, "ev-1", "m-2", at(200, 30))

    after = await fleet(client)
    row = after["vehicles"][0]
    assert row["meterIds"] == ["m-1", "m-2"]
    assert row["dataPoints"]["meter"] == FIRST
    assert row["energyConsumedAc"] > before["vehicles"][0]["energyConsumedAc"]
    await assert_equal_to_per_vehicle(client, after)
    assert [dict(row) for row in await db.fetch("SELECT * FROM meter_rollups ORDER BY 1, 4")] == (
        rollups
    )


async def test_the_histogram_counts_the_whole_fleet_by_exact_efficiency_bins(
    client: httpx.AsyncClient,
) -> None:
    # Efficiencies 0.40, 0.85 (exactly on an edge: the bin it starts), 0.8499, 0.97, 1.2, and a
    # vehicle without AC (no efficiency, not counted).
    cases = {"H-40": 0.4, "H-85": 0.85, "H-849": 0.8499, "H-97": 0.97, "H-120": 1.2}
    at = minute(-30)
    for vehicle, efficiency in cases.items():
        meter = meter_reading(meter_id=vehicle, kwh=1.0, at=at)
        assert (await client.post("/v1/ingest/meter", json=meter)).status_code == 201
        body = vehicle_reading(vehicle_id=vehicle, kwh=efficiency, at=at)
        assert (await client.post("/v1/ingest/vehicle", json=body)).status_code == 201
    lone = vehicle_reading(vehicle_id="H-none", kwh=0.5, at=at)
    assert (await client.post("/v1/ingest/vehicle", json=lone)).status_code == 201

    plain = (await client.get("/v1/analytics/fleet/performance")).json()
    assert "efficiencyHistogram" not in plain["summary"]
    answer = await client.get(
        "/v1/analytics/fleet/performance", params={"histogram": "true", "limit": "1"}
    )
    assert answer.status_code == 200
    bins = answer.json()["summary"]["efficiencyHistogram"]
    assert len(bins) == 14
    assert bins[0] == {"from": None, "to": 0.5, "vehicles": 1}
    assert bins[-1] == {"from": 1.1, "to": None, "vehicles": 1}
    counted = {(b["from"], b["to"]): b["vehicles"] for b in bins if b["vehicles"]}
    assert counted == {
        (None, 0.5): 1,
        (0.8, 0.85): 1,
        (0.85, 0.9): 1,
        (0.95, 1.0): 1,
        (1.1, None): 1,
    }
    # The histogram is the whole fleet's, whatever the page or the status filter.
    filtered = await client.get(
        "/v1/analytics/fleet/performance", params={"histogram": "true", "status": "ok"}
    )
    assert filtered.json()["summary"]["efficiencyHistogram"] == bins
