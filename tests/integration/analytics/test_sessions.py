"""Charging sessions, the charging/standby split of the performance answer, and its threshold.

GET /v1/analytics/vehicle/{vehicleId}/sessions and the `charging`, `standby`, `threshold` and
`thresholdRule` of GET /v1/analytics/performance/{vehicleId}, against the real database.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from datetime import datetime, timedelta
from typing import Any

import httpx
import pytest

from energy_ingest.config import Settings
from tests.factories import iso, meter_reading, minute, vehicle_reading
from tests.support import start_engine

Ago = Callable[[int], datetime]


@pytest.fixture
def ago() -> Ago:
    """Whole minutes before one fixed minute, so a test never straddles a minute boundary."""
    base = minute(0)
    return lambda minutes: minute(-minutes, base=base)


def minutes_from(first: datetime, count: int) -> list[datetime]:
    return [first + timedelta(minutes=index) for index in range(count)]


async def send_meter(
    client: httpx.AsyncClient,
    meter_id: str,
    kwh: float | Sequence[float],
    moments: Iterable[datetime],
) -> None:
    moments = list(moments)
    values = [kwh] * len(moments) if isinstance(kwh, float | int) else list(kwh)
    readings = [
        meter_reading(meter_id=meter_id, kwh=value, at=moment)
        for value, moment in zip(values, moments, strict=True)
    ]
    response = await client.post("/v1/ingest/meter/batch", json=readings)
    assert response.status_code == 201, response.text
    assert response.json()["stored"] == len(readings)


async def send_vehicle(
    client: httpx.AsyncClient,
    vehicle_id: str,
    kwh: float | Sequence[float],
    moments: Iterable[datetime],
) -> None:
    moments = list(moments)
    values = [kwh] * len(moments) if isinstance(kwh, float | int) else list(kwh)
    readings = [
        vehicle_reading(vehicle_id=vehicle_id, kwh=value, at=moment)
        for value, moment in zip(values, moments, strict=True)
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


def window(start: datetime | None, end: datetime | None) -> dict[str, str]:
    params = {}
    if start is not None:
        params["from"] = iso(start)
    if end is not None:
        params["to"] = iso(end)
    return params


async def sessions(
    client: httpx.AsyncClient,
    vehicle_id: str,
    start: datetime | None = None,
    end: datetime | None = None,
) -> list[dict[str, Any]]:
    response = await client.get(
        f"/v1/analytics/vehicle/{vehicle_id}/sessions", params=window(start, end)
    )
    assert response.status_code == 200, response.text
    body: list[dict[str, Any]] = response.json()
    return body


async def performance(
    client: httpx.AsyncClient,
    vehicle_id: str,
    start: datetime | None = None,
    end: datetime | None = None,
) -> dict[str, Any]:
    response = await client.get(
        f"/v1/analytics/performance/{vehicle_id}", params=window(start, end)
    )
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


# --- sessions -----------------------------------------------------------------------------------


async def test_a_session_is_a_run_of_charging_minutes_with_its_energy_and_power(
    client: httpx.AsyncClient, ago: Ago
) -> None:
    # Meter m-1 feeds ev-1. It charges 20 minutes at 0.2 kWh AC a minute (12 kW), one minute
    # drawing 0.3 (18 kW); idles (0.005 kWh a minute) around it; charges again 10 minutes later.
    await assign(client, "ev-1", "m-1", ago(120))
    first, second = minutes_from(ago(90), 20), minutes_from(ago(40), 10)
    idle = [moment for moment in minutes_from(ago(100), 100) if moment not in first + second]
    await send_meter(client, "m-1", [0.2] * 19 + [0.3], first)
    await send_meter(client, "m-1", 0.2, second)
    await send_meter(client, "m-1", 0.005, idle)
    await send_vehicle(client, "ev-1", 0.18, first + second)
    await send_vehicle(client, "ev-1", 0.0, idle)

    body = await sessions(client, "ev-1")

    assert body == [
        {
            "start": iso(ago(90)),
            "end": iso(ago(70)),
            "meterId": "m-1",
            "energyConsumedAc": 4.1,  # 19 × 0.2 + 0.3, exactly
            "energyDeliveredDc": 3.6,
            "efficiency": pytest.approx(3.6 / 4.1),
            "averagePowerKw": 12.3,  # 4.1 kWh over 20 minutes
            "peakPowerKw": 18.0,
        },
        {
            "start": iso(ago(40)),
            "end": iso(ago(30)),
            "meterId": "m-1",
            "energyConsumedAc": 2.0,
            "energyDeliveredDc": 1.8,
            "efficiency": 0.9,
            "averagePowerKw": 12.0,
            "peakPowerKw": 12.0,
        },
    ]


@pytest.mark.parametrize(
    ("gap", "count"),
    [
        pytest.param(5, 1, id="5-minutes-without-dc-stay-one-session"),
        pytest.param(6, 2, id="6-minutes-without-dc-split-it"),
    ],
)
async def test_a_short_gap_stays_inside_the_session(
    client: httpx.AsyncClient, ago: Ago, gap: int, count: int
) -> None:
    before = minutes_from(ago(60), 10)
    after = minutes_from(before[-1] + timedelta(minutes=gap + 1), 10)
    gap_minutes = minutes_from(before[-1] + timedelta(minutes=1), gap)
    await send_meter(client, "ev-1", 0.1, before + after)
    await send_meter(client, "ev-1", 0.01, gap_minutes)
    await send_vehicle(client, "ev-1", 0.09, before + after)

    body = await sessions(client, "ev-1")

    assert len(body) == count
    assert body[0]["start"] == iso(before[0])
    assert body[-1]["end"] == iso(after[-1] + timedelta(minutes=1))
    if count == 1:
        # The gap's minutes are in the session's time but not its energy: they are standby.
        assert body[0]["energyConsumedAc"] == 2.0
        assert body[0]["averagePowerKw"] == 2.0 * 60 / (20 + gap)
    summary = await performance(client, "ev-1")
    assert summary["charging"]["sessions"] == count
    assert summary["charging"]["minutes"] == 20
    assert summary["standby"]["minutes"] == gap
    assert summary["standby"]["energyConsumedAc"] == round(0.01 * gap, 2)


async def test_the_gap_comes_from_the_session_gap_setting(settings: Settings, ago: Ago) -> None:
    moments = [ago(30), ago(29), ago(27), ago(26)]  # one minute without DC
    async with start_engine(settings.model_copy(update={"session_gap_minutes": 0})) as engine:
        await send_meter(engine.client, "ev-1", 0.1, moments)
        await send_vehicle(engine.client, "ev-1", 0.09, moments)

        body = await sessions(engine.client, "ev-1")

    assert [(item["start"], item["end"]) for item in body] == [
        (iso(ago(30)), iso(ago(28))),
        (iso(ago(27)), iso(ago(25))),
    ]


async def test_a_session_across_an_assignment_change_is_split_per_meter(
    client: httpx.AsyncClient, ago: Ago
) -> None:
    # ev-1 charges 40 minutes without a pause; it is moved from charger-a to charger-b after
    # 25 of them. Both chargers report the whole time; only what each fed the vehicle counts.
    charge = minutes_from(ago(50), 40)
    await send_meter(client, "charger-a", 0.2, minutes_from(ago(60), 60))
    await send_meter(client, "charger-b", 0.5, minutes_from(ago(60), 60))
    await send_vehicle(client, "ev-1", 0.18, charge)
    await assign(client, "ev-1", "charger-a", ago(120))
    await assign(client, "ev-1", "charger-b", ago(25))

    body = await sessions(client, "ev-1", ago(60), ago(0))

    assert [(s["meterId"], s["start"], s["end"]) for s in body] == [
        ("charger-a", iso(ago(50)), iso(ago(25))),
        ("charger-b", iso(ago(25)), iso(ago(10))),
    ]
    assert [s["energyConsumedAc"] for s in body] == [25 * 0.2, 15 * 0.5]
    assert [s["energyDeliveredDc"] for s in body] == [4.5, 2.7]
    summary = await performance(client, "ev-1", ago(60), ago(0))
    assert summary["charging"] == {
        "energyConsumedAc": 12.5,
        "energyDeliveredDc": 7.2,
        "efficiency": 0.576,
        "minutes": 40,
        "sessions": 2,
    }
    # charger-a's 10 minutes before the charge, charger-b's 10 after it: standby.
    assert summary["standby"] == {"energyConsumedAc": 7.0, "minutes": 20, "averagePowerW": 21000.0}


async def test_a_vehicle_charging_without_a_meter_has_sessions_with_no_meter(
    client: httpx.AsyncClient, ago: Ago
) -> None:
    await send_vehicle(client, "ev-1", 0.5, minutes_from(ago(10), 5))

    body = await sessions(client, "ev-1")

    assert body == [
        {
            "start": iso(ago(10)),
            "end": iso(ago(5)),
            "meterId": None,
            "energyConsumedAc": 0.0,
            "energyDeliveredDc": 2.5,
            "efficiency": None,
            "averagePowerKw": 0.0,
            "peakPowerKw": 0.0,
        }
    ]
    summary = await performance(client, "ev-1")
    assert summary["status"] == "insufficient-data"  # the whole window, as before
    assert summary["thresholdRule"] == "flat"


async def test_a_session_is_cut_to_the_window(client: httpx.AsyncClient, ago: Ago) -> None:
    moments = minutes_from(ago(30), 20)
    await send_meter(client, "ev-1", 0.1, moments)
    await send_vehicle(client, "ev-1", 0.09, moments)
    start = ago(25) + timedelta(seconds=30)  # mid-minute: the minute's reading is outside

    body = await sessions(client, "ev-1", start, ago(15))

    assert [(s["start"], s["end"]) for s in body] == [(iso(ago(24)), iso(ago(15)))]
    assert body[0]["energyConsumedAc"] == 0.9

    end = ago(15) + timedelta(seconds=30)  # mid-minute: the session ends there, not at ago(14)

    body = await sessions(client, "ev-1", ago(25), end)

    assert [(s["start"], s["end"]) for s in body] == [(iso(ago(25)), iso(end))]
    assert body[0]["energyConsumedAc"] == 1.1
    assert body[0]["averagePowerKw"] == pytest.approx(1.1 * 60 / 10.5)


async def test_no_charging_is_an_empty_list(client: httpx.AsyncClient, ago: Ago) -> None:
    await send_meter(client, "ev-1", 0.01, minutes_from(ago(10), 10))
    await send_vehicle(client, "ev-1", 0.0, minutes_from(ago(10), 10))

    assert await sessions(client, "ev-1") == []


async def test_session_sums_are_exact_decimals(client: httpx.AsyncClient, ago: Ago) -> None:
    moments = minutes_from(ago(10), 3)
    await send_meter(client, "ev-1", [0.1, 0.1, 0.1], moments)
    await send_vehicle(client, "ev-1", [0.1, 0.2, 0.0001], moments)
    assert 0.1 + 0.1 + 0.1 != 0.3  # as binary floats add them

    response = await client.get("/v1/analytics/vehicle/ev-1/sessions")

    assert response.status_code == 200
    assert '"energyConsumedAc":0.3,' in response.text
    assert '"energyDeliveredDc":0.3001,' in response.text
    assert '"averagePowerKw":6.0,' in response.text
    summary = await performance(client, "ev-1")
    assert summary["charging"]["energyConsumedAc"] == 0.3
    assert summary["charging"]["energyDeliveredDc"] == 0.3001


# --- 404, 422, the window -----------------------------------------------------------------------


async def test_an_unknown_vehicle_is_404(client: httpx.AsyncClient, ago: Ago) -> None:
    await send_meter(client, "ev-ghost", 1.0, [ago(1)])  # a meter of its id does not make it known

    response = await client.get("/v1/analytics/vehicle/ev-ghost/sessions")

    assert response.status_code == 404
    assert response.json() == {
        "error": "not_found",
        "message": "vehicle ev-ghost has never reported and has no meter assignment",
    }


async def test_a_vehicle_known_only_by_its_assignment_has_no_sessions(
    client: httpx.AsyncClient, ago: Ago
) -> None:
    await assign(client, "ev-silent", "m-1", ago(30))

    assert await sessions(client, "ev-silent") == []


async def test_a_malformed_vehicle_id_is_422(client: httpx.AsyncClient) -> None:
    response = await client.get("/v1/analytics/vehicle/bad%20id/sessions")

    assert response.status_code == 422
    assert [error["field"] for error in response.json()["errors"]] == ["vehicleId"]


@pytest.mark.parametrize(
    ("params", "field", "rule"),
    [
        pytest.param({"from": "yesterday"}, "from", "format", id="garbage-from"),
        pytest.param(
            {"from": "2026-01-02T00:00:00Z", "to": "2026-01-01T00:00:00Z"},
            "from",
            "before_to",
            id="from-after-to",
        ),
        pytest.param(
            {"from": "2026-01-01T00:00:00Z", "to": "2026-02-02T00:00:01Z"},
            "to",
            "max_span",
            id="span-beyond-31-days",
        ),
    ],
)
async def test_an_invalid_window_is_422(
    client: httpx.AsyncClient, ago: Ago, params: dict[str, str], field: str, rule: str
) -> None:
    await send_vehicle(client, "ev-1", 0.5, [ago(1)])

    response = await client.get("/v1/analytics/vehicle/ev-1/sessions", params=params)

    assert response.status_code == 422
    assert [(e["field"], e["rule"]) for e in response.json()["errors"]] == [(field, rule)]


async def test_the_default_window_is_the_24_hours_ending_now(
    client: httpx.AsyncClient, ago: Ago
) -> None:
    day = 24 * 60
    await send_meter(client, "ev-1", 0.1, [ago(day + 5), ago(5)])
    await send_vehicle(client, "ev-1", 0.09, [ago(day + 5), ago(5)])

    body = await sessions(client, "ev-1")

    assert [s["start"] for s in body] == [iso(ago(5))]


# --- the charging/standby split of the performance answer ---------------------------------------


async def test_standby_does_not_make_a_healthy_charger_underperform(
    client: httpx.AsyncClient, ago: Ago
) -> None:
    # Four hours plugged in: 30 minutes charging at 90 %, the rest idling at 300 W.
    await assign(client, "ev-1", "m-1", ago(300))
    everything = minutes_from(ago(240), 240)
    charge = everything[60:90]
    idle = [moment for moment in everything if moment not in charge]
    await send_meter(client, "m-1", 0.2, charge)
    await send_meter(client, "m-1", 0.005, idle)
    await send_vehicle(client, "ev-1", 0.18, charge)
    await send_vehicle(client, "ev-1", 0.0, idle)

    body = await performance(client, "ev-1")

    # The seed's whole-window figures are unchanged: 6.0 + 1.05 kWh AC, 5.4 DC, 76.6 %.
    assert body["energyConsumedAc"] == 7.05
    assert body["energyDeliveredDc"] == 5.4
    assert body["efficiencyRatio"] == 76.6
    assert body["charging"] == {
        "energyConsumedAc": 6.0,
        "energyDeliveredDc": 5.4,
        "efficiency": 0.9,
        "minutes": 30,
        "sessions": 1,
    }
    assert body["standby"] == {"energyConsumedAc": 1.05, "minutes": 210, "averagePowerW": 300.0}
    assert body["status"] == "ok"  # judged on charging: 0.9 ≥ 0.85
    assert (body["threshold"], body["thresholdRule"]) == (0.85, "flat")


async def test_charging_and_standby_add_up_to_the_whole_window_exactly(
    client: httpx.AsyncClient, ago: Ago
) -> None:
    moments = minutes_from(ago(20), 20)
    await send_meter(client, "ev-1", [0.1, 0.2, 0.3, 0.0001, 0.7] * 4, moments)
    await send_vehicle(client, "ev-1", [0.09, 0.0, 0.27, 0.0, 0.6] * 4, moments)

    body = await performance(client, "ev-1")

    assert body["charging"]["energyConsumedAc"] == 4.4  # 4 × (0.1 + 0.3 + 0.7)
    assert body["standby"]["energyConsumedAc"] == 0.8004  # 4 × (0.2 + 0.0001)
    assert body["energyConsumedAc"] == 5.2004
    assert body["charging"]["minutes"] == 12
    assert body["standby"]["minutes"] == 8
    assert body["charging"]["energyDeliveredDc"] == body["energyDeliveredDc"] == 3.84
    # Sessions of one minute each (a minute without DC between), all inside the default gap.
    assert body["charging"]["sessions"] == 1


async def test_without_charging_minutes_the_whole_window_is_judged_as_before(
    client: httpx.AsyncClient, ago: Ago
) -> None:
    moments = minutes_from(ago(10), 10)
    await send_meter(client, "ev-1", 0.01, moments)
    await send_vehicle(client, "ev-1", 0.0, moments)

    body = await performance(client, "ev-1")

    assert body["charging"] == {
        "energyConsumedAc": 0.0,
        "energyDeliveredDc": 0.0,
        "efficiency": None,
        "minutes": 0,
        "sessions": 0,
    }
    assert body["standby"]["energyConsumedAc"] == 0.1
    assert body["status"] == "underperforming"  # 0 DC of 0.1 kWh AC, as the seed judged it
    assert (body["threshold"], body["thresholdRule"]) == (0.85, "flat")


async def test_charging_without_ac_falls_back_to_the_whole_window(
    client: httpx.AsyncClient, ago: Ago
) -> None:
    # The meter reports only between the charging minutes: the split cannot be judged.
    await send_meter(client, "ev-1", 1.0, [ago(5), ago(3)])
    await send_vehicle(client, "ev-1", 0.8, [ago(4), ago(2)])

    body = await performance(client, "ev-1")

    assert body["charging"]["energyConsumedAc"] == 0.0
    assert body["charging"]["efficiency"] is None
    assert body["efficiency"] == 0.8
    assert body["status"] == "underperforming"  # 1.6 of 2.0, the whole window


# --- the threshold ------------------------------------------------------------------------------


SOCKET_AC = (0.06, 0.06, 0.065)  # 0.185 kWh in 3 minutes: 3.7 kW, the top of the socket class
WALLBOX_AC = (0.06, 0.065, 0.065)  # 0.19 kWh in 3 minutes: 3.8 kW
WALLBOX_TOP_AC = (0.4, 0.4, 0.3)  # 1.1 kWh in 3 minutes: 22 kW, the top of the wallbox class
FAST_AC = (0.4, 0.4, 0.4)  # 24 kW


@pytest.mark.parametrize(
    ("ac", "dc", "rule", "threshold", "status"),
    [
        pytest.param(SOCKET_AC, (0.045, 0.045, 0.04875), "socket", 0.7, "ok", id="socket-75%"),
        pytest.param(SOCKET_AC, (0.042, 0.042, 0.0455), "socket", 0.7, "ok", id="socket-70%"),
        pytest.param(
            SOCKET_AC, (0.039, 0.039, 0.04225), "socket", 0.7, "underperforming", id="socket-65%"
        ),
        pytest.param(
            WALLBOX_AC, (0.048, 0.052, 0.052), "wallbox", 0.85, "underperforming", id="wallbox-80%"
        ),
        pytest.param(WALLBOX_TOP_AC, (0.34, 0.34, 0.255), "wallbox", 0.85, "ok", id="wallbox-85%"),
        # Fast: the flat threshold, 0.9 in this engine.
        pytest.param(FAST_AC, (0.356, 0.356, 0.356), "fast", 0.9, "underperforming", id="fast-89%"),
        pytest.param(FAST_AC, (0.36, 0.36, 0.36), "fast", 0.9, "ok", id="fast-90%"),
    ],
)
async def test_power_class_thresholds(
    settings: Settings,
    ago: Ago,
    ac: tuple[float, ...],
    dc: tuple[float, ...],
    rule: str,
    threshold: float,
    status: str,
) -> None:
    moments = minutes_from(ago(10), 3)
    power_class = settings.model_copy(
        update={"threshold_mode": "power-class", "efficiency_threshold": 0.9}
    )
    async with start_engine(power_class) as engine:
        await send_meter(engine.client, "ev-1", ac, moments)
        await send_vehicle(engine.client, "ev-1", dc, moments)
        # Standby beside the charge changes neither the class nor the status.
        await send_meter(engine.client, "ev-1", 0.05, minutes_from(ago(60), 30))

        body = await performance(engine.client, "ev-1")

    assert (body["threshold"], body["thresholdRule"], body["status"]) == (threshold, rule, status)
    assert body["charging"]["minutes"] == 3


async def test_the_default_mode_is_flat(client: httpx.AsyncClient, ago: Ago) -> None:
    # A 3.7 kW charge at 75 %: fine for a household socket, but the seed's rule is 85 % flat.
    moments = minutes_from(ago(10), 3)
    await send_meter(client, "ev-1", SOCKET_AC, moments)
    await send_vehicle(client, "ev-1", (0.045, 0.045, 0.04875), moments)

    body = await performance(client, "ev-1")

    assert (body["threshold"], body["thresholdRule"], body["status"]) == (
        0.85,
        "flat",
        "underperforming",
    )


async def test_power_class_mode_without_charging_minutes_uses_the_flat_threshold(
    settings: Settings, ago: Ago
) -> None:
    moments = minutes_from(ago(10), 10)
    async with start_engine(
        settings.model_copy(update={"threshold_mode": "power-class"})
    ) as engine:
        await send_meter(engine.client, "ev-1", 0.01, moments)
        await send_vehicle(engine.client, "ev-1", 0.0, moments)

        body = await performance(engine.client, "ev-1")

    assert (body["threshold"], body["thresholdRule"], body["status"]) == (
        0.85,
        "flat",
        "underperforming",
    )


# --- registers ----------------------------------------------------------------------------------


async def test_a_register_meter_books_its_deltas_into_sessions_and_standby(
    client: httpx.AsyncClient, ago: Ago
) -> None:
    # The meter sends only its cumulative register: idle at 100.0, then 0.2 kWh a minute for
    # 10 minutes (one reading glitching to 0 and back), then 5 Wh a minute of standby.
    registers = (
        [(ago(minutes), 100.0) for minutes in range(20, 15, -1)]
        + [(ago(15 - step), round(100.2 + 0.2 * step, 3)) for step in range(10)]
        + [(ago(5 - step), round(102.005 + 0.005 * step, 3)) for step in range(5)]
    )
    registers[10] = (ago(10), 0.0)  # the glitch: ago(9) books 101.4 − 101.0, ago(10) nothing
    body = [
        {"meterId": "ev-1", "kwhRegisterAc": value, "voltage": 230.0, "timestamp": iso(moment)}
        for moment, value in registers
    ]
    response = await client.post("/v1/ingest/meter/batch", json=body)
    assert response.status_code == 201, response.text
    await send_vehicle(client, "ev-1", 0.18, minutes_from(ago(15), 10))
    await send_vehicle(client, "ev-1", 0.0, minutes_from(ago(20), 5) + minutes_from(ago(5), 5))

    assert await sessions(client, "ev-1") == [
        {
            "start": iso(ago(15)),
            "end": iso(ago(5)),
            "meterId": "ev-1",
            "energyConsumedAc": 2.0,
            "energyDeliveredDc": 1.8,
            "efficiency": 0.9,
            "averagePowerKw": 12.0,
            "peakPowerKw": 24.0,  # the minute after the glitch books two minutes' energy
        }
    ]
    summary = await performance(client, "ev-1")
    assert summary["charging"]["energyConsumedAc"] == 2.0
    assert summary["standby"] == {"energyConsumedAc": 0.025, "minutes": 10, "averagePowerW": 150.0}


async def test_readings_are_matched_to_the_nearest_minute_whatever_their_jitter(
    client: httpx.AsyncClient, ago: Ago
) -> None:
    # Clocks a few seconds off either way: the meter's 11:59:58 and the vehicle's 12:00:03 are
    # the same minute's readings; flooring them would put half the charge's AC in standby.
    charge = minutes_from(ago(20), 10)
    idle = minutes_from(ago(10), 5)
    early, late = timedelta(seconds=-2), timedelta(seconds=3)
    await send_meter(client, "ev-1", 0.2, [moment + early for moment in charge])
    await send_meter(client, "ev-1", 0.01, [moment + late for moment in idle])
    await send_vehicle(client, "ev-1", 0.18, [moment + late for moment in charge])
    await send_vehicle(client, "ev-1", 0.0, [moment + early for moment in idle])

    body = await sessions(client, "ev-1")

    assert [(s["start"], s["end"], s["energyConsumedAc"]) for s in body] == [
        (iso(ago(20)), iso(ago(10)), 2.0)
    ]
    summary = await performance(client, "ev-1")
    assert summary["charging"]["efficiency"] == 0.9
    assert summary["standby"] == {"energyConsumedAc": 0.05, "minutes": 5, "averagePowerW": 600.0}
