"""GET /v1/analytics/performance/{vehicleId}: AC of the feeding meter(s) against DC, per window."""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Callable, Iterable
from datetime import UTC, datetime, timedelta
from importlib import resources
from typing import Any

import asyncpg
import httpx
import pytest

from energy_ingest.config import Settings
from energy_ingest.db.sql import parse_named_blocks
from tests.factories import iso, meter_reading, minute, vehicle_reading
from tests.support import Engine, start_engine

Ago = Callable[[int], datetime]


@pytest.fixture
def ago() -> Ago:
    """Whole minutes before one fixed minute, so a test never straddles a minute boundary."""
    base = minute(0)
    return lambda minutes: minute(-minutes, base=base)


def every_minute(first: datetime, last: datetime) -> list[datetime]:
    """Each whole minute from `first` to `last`, both included."""
    count = int((last - first) / timedelta(minutes=1)) + 1
    return [first + timedelta(minutes=index) for index in range(count)]


async def send_meter(
    client: httpx.AsyncClient, meter_id: str, kwh: float, moments: Iterable[datetime]
) -> None:
    readings = [meter_reading(meter_id=meter_id, kwh=kwh, at=moment) for moment in moments]
    response = await client.post("/v1/ingest/meter/batch", json=readings)
    assert response.status_code == 201, response.text
    assert response.json()["stored"] == len(readings)


async def send_vehicle(
    client: httpx.AsyncClient,
    vehicle_id: str,
    kwh: float,
    moments: Iterable[datetime],
    temp: float = 30.0,
) -> None:
    readings = [
        vehicle_reading(vehicle_id=vehicle_id, kwh=kwh, temp=temp, at=moment) for moment in moments
    ]
    response = await client.post("/v1/ingest/vehicle/batch", json=readings)
    assert response.status_code == 201, response.text
    assert response.json()["stored"] == len(readings)


async def assign(
    client: httpx.AsyncClient, vehicle_id: str, meter_id: str, start: datetime
) -> None:
    response = await client.put(
        f"/v1/vehicles/{vehicle_id}/meter", json={"meterId": meter_id, "from": iso(start)}
    )
    assert response.status_code == 201, response.text


async def unassign(client: httpx.AsyncClient, vehicle_id: str, at: datetime) -> None:
    response = await client.delete(f"/v1/vehicles/{vehicle_id}/meter", params={"at": iso(at)})
    assert response.status_code == 200, response.text


async def performance(
    client: httpx.AsyncClient,
    vehicle_id: str,
    start: datetime | None = None,
    end: datetime | None = None,
) -> httpx.Response:
    params = {}
    if start is not None:
        params["from"] = iso(start)
    if end is not None:
        params["to"] = iso(end)
    return await client.get(f"/v1/analytics/performance/{vehicle_id}", params=params)


async def summary(
    client: httpx.AsyncClient,
    vehicle_id: str,
    start: datetime | None = None,
    end: datetime | None = None,
) -> dict[str, Any]:
    response = await performance(client, vehicle_id, start, end)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


# --- the answer ---------------------------------------------------------------------------------


async def test_the_answer_has_the_seeds_fields_and_ours(
    client: httpx.AsyncClient, ago: Ago
) -> None:
    await send_vehicle(client, "ev-1", 0.5, [ago(5)])

    body = await summary(client, "ev-1")

    assert set(body) == {
        "vehicleId",
        "period",
        "energyConsumedAc",
        "energyDeliveredDc",
        "efficiencyRatio",
        "efficiency",
        "energyLossKwh",
        "averageBatteryTemp",
        "minBatteryTemp",
        "maxBatteryTemp",
        "dataPoints",
        "meterIds",
        "correlation",
        "dataQuality",
        "status",
        "charging",
        "standby",
        "threshold",
        "thresholdRule",
    }
    assert set(body["period"]) == {"start", "end"}
    assert set(body["dataPoints"]) == {"vehicle", "meter"}
    assert set(body["charging"]) == {
        "energyConsumedAc",
        "energyDeliveredDc",
        "efficiency",
        "minutes",
        "sessions",
    }
    assert set(body["standby"]) == {"energyConsumedAc", "minutes", "averagePowerW"}


async def test_a_vehicle_without_assignment_uses_the_meter_with_its_id(
    client: httpx.AsyncClient, ago: Ago
) -> None:
    moments = every_minute(ago(10), ago(1))
    await send_meter(client, "ev-1", 1.0, moments)
    await send_meter(client, "meter-elsewhere", 5.0, moments)
    for index, moment in enumerate(moments):  # temperatures 20.0 … 29.0
        await send_vehicle(client, "ev-1", 0.875, [moment], temp=20.0 + index)

    body = await summary(client, "ev-1")

    assert body["vehicleId"] == "ev-1"
    assert body["correlation"] == "same-id"
    assert body["meterIds"] == ["ev-1"]
    assert body["energyConsumedAc"] == 10.0
    assert body["energyDeliveredDc"] == 8.75
    assert body["efficiency"] == 0.875
    assert body["efficiencyRatio"] == 87.5
    assert body["energyLossKwh"] == 1.25
    assert body["dataPoints"] == {"vehicle": 10, "meter": 10}
    assert body["averageBatteryTemp"] == 24.5
    assert body["minBatteryTemp"] == 20.0
    assert body["maxBatteryTemp"] == 29.0
    assert body["status"] == "ok"


async def test_the_same_id_meter_is_not_used_while_it_is_assigned_to_another_vehicle(
    client: httpx.AsyncClient, ago: Ago
) -> None:
    # Meter "ev-1" feeds ev-2: counting it for ev-1 too would bill its energy twice.
    moments = every_minute(ago(10), ago(1))
    await assign(client, "ev-2", "ev-1", ago(60))
    await send_meter(client, "ev-1", 1.0, moments)
    await send_vehicle(client, "ev-1", 0.5, moments)

    body = await summary(client, "ev-1")

    assert body["correlation"] == "none"
    assert body["meterIds"] == []
    assert body["energyConsumedAc"] == 0.0
    assert body["status"] == "insufficient-data"
    assert (await summary(client, "ev-2"))["energyConsumedAc"] == 10.0


async def test_efficiency_ratio_is_a_rounded_percentage_and_efficiency_is_not_rounded(
    client: httpx.AsyncClient, ago: Ago
) -> None:
    await send_meter(client, "ev-1", 1.0, [ago(3), ago(2), ago(1)])
    await send_vehicle(client, "ev-1", 1.0, [ago(2), ago(1)])

    body = await summary(client, "ev-1")

    assert body["efficiency"] == 2.0 / 3.0
    assert body["efficiencyRatio"] == 66.67


# --- correlation by assignment ------------------------------------------------------------------


async def test_an_assignment_change_inside_the_window_splits_ac_between_the_meters(
    client: httpx.AsyncClient, ago: Ago
) -> None:
    # Both chargers report the whole time; only what each fed the vehicle may count.
    start, switch, end = ago(120), ago(60), ago(10)
    moments = every_minute(ago(150), ago(1))
    await send_meter(client, "charger-a", 1.0, moments)
    await send_meter(client, "charger-b", 10.0, moments)
    await send_vehicle(client, "ev-1", 0.5, moments)
    await assign(client, "ev-1", "charger-a", ago(180))
    await assign(client, "ev-1", "charger-b", switch)

    body = await summary(client, "ev-1", start, end)

    # charger-a over [start, switch): 60 × 1.0; charger-b over [switch, end): 50 × 10.0.
    # Counting charger-a after the switch, charger-b before it, or either outside the window
    # would each change the sum.
    assert body["energyConsumedAc"] == 60 * 1.0 + 50 * 10.0
    assert body["dataPoints"] == {"vehicle": 110, "meter": 110}
    assert body["energyDeliveredDc"] == 110 * 0.5
    assert body["meterIds"] == ["charger-a", "charger-b"]
    assert body["correlation"] == "assignment"


async def test_a_meter_assigned_twice_in_the_window_counts_both_spans_and_is_listed_once(
    client: httpx.AsyncClient, ago: Ago
) -> None:
    moments = every_minute(ago(90), ago(1))
    await send_meter(client, "charger-a", 1.0, moments)
    await send_meter(client, "charger-b", 10.0, moments)
    await send_vehicle(client, "ev-1", 0.5, moments)
    await assign(client, "ev-1", "charger-a", ago(90))
    await assign(client, "ev-1", "charger-b", ago(60))
    await assign(client, "ev-1", "charger-a", ago(30))

    body = await summary(client, "ev-1", ago(90), ago(0))

    assert body["meterIds"] == ["charger-a", "charger-b"]
    assert body["energyConsumedAc"] == 30 * 1.0 + 30 * 10.0 + 30 * 1.0
    assert body["dataPoints"]["meter"] == 90


async def test_an_assignment_ended_inside_the_window_counts_its_meter_only_until_the_end(
    client: httpx.AsyncClient, ago: Ago
) -> None:
    moments = every_minute(ago(60), ago(1))
    await send_meter(client, "charger-a", 1.0, moments)
    await send_vehicle(client, "ev-1", 0.5, moments)
    await assign(client, "ev-1", "charger-a", ago(90))
    await unassign(client, "ev-1", ago(20))

    body = await summary(client, "ev-1")

    assert body["energyConsumedAc"] == 40 * 1.0
    assert body["dataPoints"] == {"vehicle": 60, "meter": 40}
    assert body["meterIds"] == ["charger-a"]


async def test_an_assignment_takes_precedence_over_the_meter_with_the_vehicles_id(
    client: httpx.AsyncClient, ago: Ago
) -> None:
    moments = every_minute(ago(10), ago(1))
    await send_meter(client, "ev-1", 7.0, moments)
    await send_meter(client, "charger-a", 1.0, moments)
    await send_vehicle(client, "ev-1", 0.875, moments)
    await assign(client, "ev-1", "charger-a", ago(30))

    body = await summary(client, "ev-1")

    assert body["correlation"] == "assignment"
    assert body["meterIds"] == ["charger-a"]
    assert body["energyConsumedAc"] == 10.0


async def test_assignments_outside_the_window_give_no_ac(
    client: httpx.AsyncClient, ago: Ago
) -> None:
    await send_meter(client, "charger-a", 1.0, every_minute(ago(120), ago(1)))
    await send_vehicle(client, "ev-1", 0.5, every_minute(ago(30), ago(1)))
    await assign(client, "ev-1", "charger-a", ago(180))
    await unassign(client, "ev-1", ago(60))

    body = await summary(client, "ev-1", ago(40), ago(0))

    assert body["correlation"] == "assignment"
    assert body["meterIds"] == []
    assert body["energyConsumedAc"] == 0.0
    assert body["dataPoints"] == {"vehicle": 30, "meter": 0}
    assert body["efficiency"] is None
    assert body["efficiencyRatio"] is None
    assert body["status"] == "insufficient-data"


async def test_a_vehicle_known_only_by_its_assignment_has_null_temperatures(
    client: httpx.AsyncClient, ago: Ago
) -> None:
    await send_meter(client, "charger-a", 1.0, every_minute(ago(10), ago(1)))
    await assign(client, "ev-silent", "charger-a", ago(30))

    body = await summary(client, "ev-silent")

    assert body["energyConsumedAc"] == 10.0
    assert body["energyDeliveredDc"] == 0.0
    assert body["dataPoints"] == {"vehicle": 0, "meter": 10}
    assert body["averageBatteryTemp"] is None
    assert body["minBatteryTemp"] is None
    assert body["maxBatteryTemp"] is None
    assert body["status"] == "insufficient-data"


# --- no meter, no AC ----------------------------------------------------------------------------


async def test_a_vehicle_without_any_meter_has_null_efficiency(
    client: httpx.AsyncClient, ago: Ago
) -> None:
    await send_vehicle(client, "ev-1", 0.5, every_minute(ago(4), ago(1)))

    body = await summary(client, "ev-1")

    assert body["correlation"] == "none"
    assert body["meterIds"] == []
    assert body["energyConsumedAc"] == 0.0
    assert body["energyDeliveredDc"] == 2.0
    assert body["energyLossKwh"] is None  # no AC measured: no loss to speak of
    assert body["efficiency"] is None
    assert body["efficiencyRatio"] is None
    assert body["dataPoints"] == {"vehicle": 4, "meter": 0}
    assert body["status"] == "insufficient-data"


async def test_a_meter_that_drew_nothing_gives_null_efficiency(
    client: httpx.AsyncClient, ago: Ago
) -> None:
    await send_meter(client, "ev-1", 0.0, every_minute(ago(4), ago(1)))
    await send_vehicle(client, "ev-1", 0.0, every_minute(ago(4), ago(1)))

    body = await summary(client, "ev-1")

    assert body["dataPoints"] == {"vehicle": 4, "meter": 4}
    assert body["efficiency"] is None
    assert body["efficiencyRatio"] is None
    assert body["status"] == "insufficient-data"


async def test_no_vehicle_reading_inside_the_window_is_insufficient_data(
    client: httpx.AsyncClient, ago: Ago
) -> None:
    await send_vehicle(client, "ev-1", 0.5, [ago(90)])
    await send_meter(client, "ev-1", 1.0, every_minute(ago(10), ago(1)))

    body = await summary(client, "ev-1", ago(30), ago(0))

    assert body["dataPoints"] == {"vehicle": 0, "meter": 10}
    assert body["averageBatteryTemp"] is None
    assert body["status"] == "insufficient-data"


# --- status -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("ac", "dc", "status"),
    [
        pytest.param(1.0, 0.9, "ok", id="ok"),
        pytest.param(1.0, 0.85, "ok", id="exactly-the-threshold-is-ok"),
        pytest.param(1.0, 0.8, "underperforming", id="underperforming"),
        pytest.param(1.0, 1.0, "ok", id="lossless-is-ok"),
        pytest.param(1.0, 1.1, "implausible", id="dc-above-ac-is-implausible"),
    ],
)
async def test_status_follows_the_efficiency(
    client: httpx.AsyncClient, ago: Ago, ac: float, dc: float, status: str
) -> None:
    await send_meter(client, "ev-1", ac, [ago(1)])
    await send_vehicle(client, "ev-1", dc, [ago(1)])

    body = await summary(client, "ev-1")

    assert body["efficiency"] == dc / ac
    assert body["status"] == status


async def test_the_threshold_comes_from_the_efficiency_threshold_setting(
    settings: Settings, ago: Ago
) -> None:
    settings = settings.model_copy(update={"efficiency_threshold": 0.95})
    async with start_engine(settings) as engine:
        await send_meter(engine.client, "ev-1", 1.0, [ago(1)])
        await send_vehicle(engine.client, "ev-1", 0.9, [ago(1)])

        body = await summary(engine.client, "ev-1")

    assert body["status"] == "underperforming"


# --- 404 ----------------------------------------------------------------------------------------


async def test_an_unknown_vehicle_is_404(client: httpx.AsyncClient) -> None:
    response = await performance(client, "ev-unknown")

    assert response.status_code == 404
    assert response.json() == {
        "error": "not_found",
        "message": "vehicle ev-unknown has never reported and has no meter assignment",
    }


async def test_a_meter_with_the_vehicles_id_does_not_make_the_vehicle_known(
    client: httpx.AsyncClient, ago: Ago
) -> None:
    await send_meter(client, "ev-1", 1.0, [ago(1)])

    response = await performance(client, "ev-1")

    assert response.status_code == 404


async def test_a_malformed_vehicle_id_is_422(client: httpx.AsyncClient) -> None:
    response = await client.get("/v1/analytics/performance/bad%20id")

    assert response.status_code == 422
    assert [error["field"] for error in response.json()["errors"]] == ["vehicleId"]


# --- the window ---------------------------------------------------------------------------------


async def test_the_default_window_is_the_24_hours_ending_now(
    client: httpx.AsyncClient, ago: Ago
) -> None:
    day = 24 * 60
    await send_meter(client, "ev-1", 1.0, [ago(day + 1), ago(1)])
    await send_vehicle(client, "ev-1", 0.5, [ago(day + 1), ago(1)])

    before = datetime.now(UTC)
    body = await summary(client, "ev-1")
    after = datetime.now(UTC)

    start = datetime.fromisoformat(body["period"]["start"])
    end = datetime.fromisoformat(body["period"]["end"])
    # Now, cut to whole milliseconds as the answer writes it.
    assert body["period"]["end"].endswith("Z")
    assert len(body["period"]["end"]) == len("2026-01-01T00:00:00.000Z")
    assert before - timedelta(milliseconds=1) < end <= after
    assert end - start == timedelta(hours=24)
    assert body["dataPoints"] == {"vehicle": 1, "meter": 1}
    assert body["energyConsumedAc"] == 1.0


async def test_to_alone_ends_a_24_hour_window(client: httpx.AsyncClient, ago: Ago) -> None:
    await send_vehicle(client, "ev-1", 0.5, [ago(1)])

    body = await summary(client, "ev-1", end=ago(30))

    assert body["period"] == {"start": iso(ago(30) - timedelta(hours=24)), "end": iso(ago(30))}
    assert body["dataPoints"]["vehicle"] == 0


async def test_an_explicit_window_is_half_open(client: httpx.AsyncClient, ago: Ago) -> None:
    start, end = ago(50), ago(20)
    # One reading just before, at, just before the end of, and at the end of the window.
    edges = [ago(51), start, ago(21), end]
    await send_meter(client, "ev-1", 1.0, edges)
    await send_vehicle(client, "ev-1", 0.5, edges)

    body = await summary(client, "ev-1", start, end)

    assert body["period"] == {"start": iso(start), "end": iso(end)}
    assert body["dataPoints"] == {"vehicle": 2, "meter": 2}
    assert body["energyConsumedAc"] == 2.0
    assert body["energyDeliveredDc"] == 1.0


async def test_a_window_of_exactly_the_maximum_span_is_accepted(
    client: httpx.AsyncClient, ago: Ago
) -> None:
    await send_vehicle(client, "ev-1", 0.5, [ago(1)])

    response = await performance(client, "ev-1", ago(0) - timedelta(days=31), ago(0))

    assert response.status_code == 200
    assert response.json()["dataPoints"]["vehicle"] == 1


@pytest.mark.parametrize(
    ("window", "field", "rule"),
    [
        pytest.param((60, 60), "from", "before_to", id="from-equals-to"),
        pytest.param((30, 60), "from", "before_to", id="from-after-to"),
        pytest.param((32 * 24 * 60, 0), "to", "max_span", id="span-beyond-31-days"),
    ],
)
async def test_an_invalid_window_is_422(
    client: httpx.AsyncClient, ago: Ago, window: tuple[int, int], field: str, rule: str
) -> None:
    await send_vehicle(client, "ev-1", 0.5, [ago(1)])

    response = await performance(client, "ev-1", ago(window[0]), ago(window[1]))

    assert response.status_code == 422
    assert [(e["field"], e["rule"]) for e in response.json()["errors"]] == [(field, rule)]


@pytest.mark.parametrize(
    ("params", "field"),
    [
        pytest.param({"from": "yesterday"}, "from", id="garbage-from"),
        pytest.param({"to": "2026-02-30T00:00:00Z"}, "to", id="impossible-date-to"),
        pytest.param({"from": "2026-02-09T13:30:00"}, "from", id="naive-from"),
    ],
)
async def test_a_malformed_timestamp_is_422_naming_it(
    client: httpx.AsyncClient, ago: Ago, params: dict[str, str], field: str
) -> None:
    await send_vehicle(client, "ev-1", 0.5, [ago(1)])

    response = await client.get("/v1/analytics/performance/ev-1", params=params)

    assert response.status_code == 422
    assert [(e["field"], e["rule"]) for e in response.json()["errors"]] == [(field, "format")]


async def test_every_malformed_window_parameter_is_named(
    client: httpx.AsyncClient, ago: Ago
) -> None:
    await send_vehicle(client, "ev-1", 0.5, [ago(1)])

    response = await client.get(
        "/v1/analytics/performance/ev-1", params={"from": "yesterday", "to": "2026-13-01T00:00:00Z"}
    )

    assert response.status_code == 422
    assert [(e["field"], e["rule"]) for e in response.json()["errors"]] == [
        ("from", "format"),
        ("to", "format"),
    ]


# --- exact numbers, as the seed answers them ----------------------------------------------------


async def test_energy_sums_are_exact_decimals_without_float_noise(
    client: httpx.AsyncClient, ago: Ago
) -> None:
    ac_readings = [0.1] * 9 + [83.4145]
    dc_readings = [0.1, 0.2]
    # Added up as binary floats (as float8 sum() does), both show noise.
    assert sum(ac_readings) != 84.3145
    assert sum(dc_readings) != 0.3
    moments = every_minute(ago(len(ac_readings)), ago(1))
    for kwh, moment in zip(ac_readings, moments, strict=True):
        await send_meter(client, "ev-1", kwh, [moment])
    for kwh, moment in zip(dc_readings, moments[: len(dc_readings)], strict=True):
        await send_vehicle(client, "ev-1", kwh, [moment])

    response = await performance(client, "ev-1")

    assert response.status_code == 200
    body = response.json()
    assert body["energyConsumedAc"] == 84.3145
    assert body["energyDeliveredDc"] == 0.3
    assert body["energyLossKwh"] == 84.0145  # the exact decimal difference
    # JSON numbers, written as short as the decimals are.
    assert '"energyConsumedAc":84.3145,' in response.text
    assert '"energyDeliveredDc":0.3,' in response.text
    assert '"energyLossKwh":84.0145,' in response.text


async def test_temperatures_are_rounded_to_two_decimals_as_the_seed_does(
    client: httpx.AsyncClient, ago: Ago
) -> None:
    for temp, moment in zip((31.234, 30.0, 30.0), (ago(3), ago(2), ago(1)), strict=True):
        await send_vehicle(client, "ev-1", 0.5, [moment], temp=temp)

    response = await performance(client, "ev-1")

    body = response.json()
    assert body["averageBatteryTemp"] == 30.41  # 30.411333…
    assert body["minBatteryTemp"] == 30.0
    assert body["maxBatteryTemp"] == 31.23
    assert '"averageBatteryTemp":30.41,' in response.text


async def test_the_default_period_is_written_in_milliseconds(
    client: httpx.AsyncClient, ago: Ago
) -> None:
    await send_vehicle(client, "ev-1", 0.5, [ago(1)])

    period = (await summary(client, "ev-1"))["period"]

    for moment in (period["start"], period["end"]):
        assert moment == iso(datetime.fromisoformat(moment))
        assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", moment), moment


# --- many assignments: one statement for all their spans ----------------------------------------

MANY = 3_000

_MANY_ASSIGNMENTS = """
INSERT INTO vehicle_meter_assignments (vehicle_id, meter_id, during)
SELECT $1, $2 || number,
       tstzrange($3::timestamptz + number * interval '1 minute',
                 $3::timestamptz + (number + 1) * interval '1 minute', '[)')
FROM generate_series(0, $4 - 1) AS number
"""


async def _statements_of_one_answer(
    engine: Engine, vehicle_id: str, start: datetime, end: datetime
) -> tuple[Counter[str], dict[str, Any]]:
    """The analytics statements one performance answer ran (by name, with their counts)."""
    names = {
        " ".join(text.split()): name
        for name, text in parse_named_blocks(
            resources.files("energy_ingest.db")
            .joinpath("queries", "analytics.sql")
            .read_text(encoding="utf-8")
        ).items()
    }
    ran: Counter[str] = Counter()

    def log(record: asyncpg.connection.LoggedQuery) -> None:
        ran[names.get(" ".join(record.query.split()), "other")] += 1

    pool = engine.state.database.read_pool
    assert pool.get_max_size() == 1  # the one connection every answer uses
    async with pool.acquire() as connection:
        connection.add_query_logger(log)
    try:
        response = await engine.client.get(
            f"/v1/analytics/performance/{vehicle_id}",
            params={"from": iso(start), "to": iso(end)},
        )
    finally:
        async with pool.acquire() as connection:
            connection.remove_query_logger(log)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return ran, body


async def test_thousands_of_assignments_cost_the_statements_of_one(
    settings: Settings, db: asyncpg.Connection
) -> None:
    start = minute(-MANY - 60)
    end = minute(-30)
    one_reading_per_span = [
        meter_reading(meter_id=f"many-m{number}", kwh=0.1, at=start + timedelta(minutes=number))
        for number in range(MANY)
    ]
    async with start_engine(settings.model_copy(update={"read_pool_size": 1})) as engine:
        response = await engine.client.post("/v1/ingest/meter/batch", json=one_reading_per_span)
        assert response.status_code == 201, response.text
        await send_vehicle(engine.client, "few", 0.05, [start])
        await send_vehicle(engine.client, "many", 0.05, [start])
        # 3,000 assignments inside the window, each fed by its own meter; and just two.
        await db.execute(_MANY_ASSIGNMENTS, "many", "many-m", start, MANY)
        await db.execute(_MANY_ASSIGNMENTS, "few", "few-m", start, 2)

        # The first answer also has the driver look up the array types once: not counted.
        await _statements_of_one_answer(engine, "few", start, end)
        few, _ = await _statements_of_one_answer(engine, "few", start, end)
        many, body = await _statements_of_one_answer(engine, "many", start, end)

    assert body["dataPoints"]["meter"] == MANY
    assert body["energyConsumedAc"] == 300.0  # 3,000 × 0.1, exactly
    assert len(body["meterIds"]) == MANY
    assert many == few
    assert many["summarize_meter_spans"] == 1
    assert many["summarize_vehicle_sessions"] == 1  # the charging and standby split
    assert sum(count for name, count in many.items() if name != "other") == 5
