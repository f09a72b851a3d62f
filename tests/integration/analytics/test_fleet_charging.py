"""Fleet rows carry the per-vehicle answer's `charging`, `standby`, `threshold` and
`dataQuality`, and are judged on their charging minutes, from the folded hours.

Every fleet row must equal GET /v1/analytics/performance/{id} over the same window: before the
folder has run (the rows' hours are computed from history), after it (stored in
vehicle_energy_hours and the day rows), after an assignment changed in the past (the
changed days pending), and with power-class thresholds. The folded hours must equal what
history gives when computed afresh, however the readings arrived.
"""

from __future__ import annotations

import random
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import httpx
import pytest

from energy_ingest.config import Settings
from energy_ingest.writer.rollups import fold_rollups
from tests.factories import iso, meter_reading, vehicle_reading
from tests.integration.analytics.test_registers import post, register_meter
from tests.integration.analytics.test_sessions import assign
from tests.support import Engine, start_engine

SPLIT_FIELDS = (
    "energyConsumedAc",
    "energyDeliveredDc",
    "efficiency",
    "status",
    "dataPoints",
    "meterIds",
    "correlation",
    "dataQuality",
    "charging",
    "standby",
    "threshold",
    "thresholdRule",
)

HOUR = timedelta(hours=1)
# Three whole hours ago: every reading below lies in the past, on hour boundaries we choose.
BASE = datetime.now(UTC).replace(minute=0, second=0, microsecond=0) - 4 * HOUR


def at(minutes: float, seconds: int = 0) -> datetime:
    return BASE + timedelta(minutes=minutes, seconds=seconds)


def readings() -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """A small fleet's meters and vehicles, each case at an hour boundary or a window edge."""
    meters: list[dict[str, Any]] = []
    vehicles: list[dict[str, Any]] = []
    # ev-a (meter m-a): charges across the first hour boundary, clocks off either way (the meter
    # 2 s early, the vehicle 3 s late), idles at standby draw, then charges again after a pause
    # longer than the session gap.
    for index in range(40, 150):
        meter_kwh = 0.2 if 50 <= index < 75 or 90 <= index < 100 else 0.004
        vehicle_kwh = 0.17 if 50 <= index < 75 or 90 <= index < 100 else 0.0
        meters.append(meter_reading(meter_id="m-a", kwh=meter_kwh, at=at(index, -2)))
        vehicles.append(vehicle_reading(vehicle_id="ev-a", kwh=vehicle_kwh, at=at(index, 3)))
    # ev-b: fed by m-b1, then by m-b2 from minute 95 (mid-session: a second session begins);
    # m-b2 reports its register, with a glitch to 0 and a reset.
    for index in range(60, 140):
        vehicles.append(vehicle_reading(vehicle_id="ev-b", kwh=0.1, at=at(index, 1)))
        if index < 96:
            meters.append(meter_reading(meter_id="m-b1", kwh=0.12, at=at(index)))
    register = 1000.0
    for index in range(94, 140):
        register += 0.125
        value = register
        if index == 110:
            value = 0.0  # a glitch: the next reading takes it back
        if index >= 125:
            value = register - 900.0  # a reset at minute 125, confirmed after
        meters.append(register_meter("m-b2", value, at(index)))
    # ev-c: its meter of the same id, slow charging (1.5 kW: a household socket), a gap.
    for index in range(100, 220):
        if 150 <= index < 160:
            continue  # ten minutes without either
        meters.append(meter_reading(meter_id="ev-c", kwh=0.025, at=at(index, -1)))
        vehicles.append(vehicle_reading(vehicle_id="ev-c", kwh=0.02, at=at(index, 1)))
    # ev-d: no meter until an assignment made later, in the past.
    for index in range(30, 90):
        vehicles.append(vehicle_reading(vehicle_id="ev-d", kwh=0.05, at=at(index)))
        meters.append(meter_reading(meter_id="m-d", kwh=0.07, at=at(index)))
    return meters, vehicles


async def build(client: httpx.AsyncClient, seed: int) -> None:
    """The fleet, its readings sent shuffled in batches of up to 40 (late ones included)."""
    await assign(client, "ev-a", "m-a", at(-60))
    await assign(client, "ev-b", "m-b1", at(-60))
    await assign(client, "ev-b", "m-b2", at(95, 30))
    meters, vehicles = readings()
    shuffled = random.Random(seed)
    for kind, items in (("meter", meters), ("vehicle", vehicles)):
        shuffled.shuffle(items)
        for first in range(0, len(items), 40):
            await post(client, kind, items[first : first + 40])


WINDOWS = [
    None,  # the default: 24 whole hours
    (at(0), at(4 * 60)),  # whole hours
    (at(55, 17), at(2 * 60 + 13, 41)),  # partial hours at both edges, mid-session at the start
    (at(61), at(118)),  # inside one hour
]


async def fleet_rows(
    client: httpx.AsyncClient, window: tuple[datetime, datetime] | None
) -> tuple[dict[str, Any], dict[str, dict[str, Any]]]:
    params = {"limit": "1000"}
    if window is not None:
        params |= {"from": iso(window[0]), "to": iso(window[1])}
    response = await client.get("/v1/analytics/fleet/performance", params=params)
    assert response.status_code == 200, response.text
    body = response.json()
    return body["period"], {row["vehicleId"]: row for row in body["vehicles"]}


async def assert_rows_equal_the_vehicle_answers(client: httpx.AsyncClient) -> None:
    for window in WINDOWS:
        period, rows = await fleet_rows(client, window)
        assert set(rows) == {"ev-a", "ev-b", "ev-c", "ev-d"}
        for vehicle_id, row in rows.items():
            response = await client.get(
                f"/v1/analytics/performance/{vehicle_id}",
                params={"from": period["start"], "to": period["end"]},
            )
            assert response.status_code == 200, response.text
            single = response.json()
            assert {name: row[name] for name in SPLIT_FIELDS} == {
                name: single[name] for name in SPLIT_FIELDS
            }, (vehicle_id, window)


async def fold_everything(db: asyncpg.Connection, settings: Settings) -> None:
    """Fold until the inbox and the pending vehicle-days are empty."""
    for _ in range(100):
        folded = await fold_rollups(db, rules=settings.split_rules)
        pending = await db.fetchval("SELECT count(*) FROM vehicle_energy_pending")
        inbox = await db.fetchval(
            "SELECT (SELECT count(*) FROM meter_rollup_inbox)"
            " + (SELECT count(*) FROM vehicle_rollup_inbox)"
        )
        if folded is not None and pending == 0 and inbox == 0:
            return
    raise AssertionError("the fold never caught up")


# The stored hours against the same hours computed afresh from history, column by column.
_STORED_VERSUS_FRESH = """
WITH fresh AS (
    SELECT vehicles.vehicle_key, hours.*
    FROM vehicles
    CROSS JOIN LATERAL vehicle_energy_hours_of(vehicles.vehicle_id, $1, $2, 5, 1000, 1000, 150)
        AS hours
), stored AS (
    SELECT vehicle_key, hour, charging_ac, charging_dc, charging_minutes, charging_readings,
           session_starts, continues, standby_ac, standby_minutes, ac_interval_readings,
           ac_register_readings, ac_gaps, ac_gap_minutes, ac_resets, ac_glitches,
           ac_rejected_deltas, ac_reconciled_interval, ac_reconciled_register,
           dc_interval_readings, dc_register_readings, dc_gaps, dc_gap_minutes, dc_resets,
           dc_glitches, dc_rejected_deltas, dc_reconciled_interval, dc_reconciled_register,
           standby_ac_from, charging_minutes_from
    FROM vehicle_energy_hours
)
(SELECT 'missing' AS problem, * FROM (SELECT * FROM fresh EXCEPT SELECT * FROM stored) AS m)
UNION ALL
(SELECT 'extra', * FROM (SELECT * FROM stored EXCEPT SELECT * FROM fresh) AS e)
"""

# Each day row's running totals against its day's stored hours.
_DAYS_VERSUS_HOURS = """
SELECT days.vehicle_key, days.day, slot
FROM vehicle_rollup_days AS days
CROSS JOIN generate_series(0, 23) AS slot
CROSS JOIN LATERAL (
    SELECT coalesce(sum(h.standby_ac), 0) AS standby,
           coalesce(sum(h.charging_minutes), 0) AS minutes
    FROM vehicle_energy_hours AS h
    WHERE h.vehicle_key = days.vehicle_key
      AND h.hour >= days.day + slot * interval '1 hour' AND h.hour < days.day + interval '1 day'
) AS summed
WHERE days.standby_ac[slot + 1] <> summed.standby
   OR days.charging_minutes[slot + 1] <> summed.minutes
"""


async def assert_folded_hours_are_history(db: asyncpg.Connection) -> None:
    problems = await db.fetch(_STORED_VERSUS_FRESH, BASE - 2 * HOUR, BASE + 8 * HOUR)
    assert [tuple(problem) for problem in problems] == []
    assert [tuple(row) for row in await db.fetch(_DAYS_VERSUS_HOURS)] == []


@pytest.fixture
async def slow_folding(settings: Settings) -> AsyncIterator[Engine]:
    """The engine with its own folder idle (the test folds), so both paths are seen."""
    async with start_engine(settings.model_copy(update={"rollup_fold_seconds": 3600})) as engine:
        yield engine


@pytest.mark.parametrize("seed", [1, 2])
async def test_fleet_rows_equal_the_vehicle_answers_before_and_after_the_fold(
    slow_folding: Engine, db: asyncpg.Connection, settings: Settings, seed: int
) -> None:
    client = slow_folding.client
    await build(client, seed)

    # Nothing folded: every hour of the fleet rows is computed from history.
    await assert_rows_equal_the_vehicle_answers(client)

    await fold_everything(db, settings)
    assert await db.fetchval("SELECT count(*) FROM vehicle_energy_hours") > 0
    await assert_folded_hours_are_history(db)
    # Folded: the whole hours come from the day rows and vehicle_energy_hours.
    await assert_rows_equal_the_vehicle_answers(client)

    # A reading arriving late, into a folded charging minute of ev-a (standby turns charging).
    await post(client, "vehicle", [vehicle_reading(vehicle_id="ev-a", kwh=0.3, at=at(80, 20))])
    await assert_rows_equal_the_vehicle_answers(client)
    await fold_everything(db, settings)
    await assert_folded_hours_are_history(db)
    await assert_rows_equal_the_vehicle_answers(client)


async def test_an_assignment_changed_in_the_past_recomputes_the_vehicles_hours(
    slow_folding: Engine, db: asyncpg.Connection, settings: Settings
) -> None:
    client = slow_folding.client
    await build(client, 3)
    await fold_everything(db, settings)
    _, rows = await fleet_rows(client, None)
    assert rows["ev-d"]["charging"]["energyConsumedAc"] == 0
    assert rows["ev-d"]["correlation"] == "none"

    # ev-d is given m-d from before its first reading: its charging AC appears at once (the
    # days pending, computed by the reader), and stays once the folder has caught up.
    await assign(client, "ev-d", "m-d", at(0))
    assert await db.fetchval("SELECT count(*) FROM vehicle_energy_pending") > 0
    _, rows = await fleet_rows(client, None)
    assert rows["ev-d"]["charging"]["energyConsumedAc"] == pytest.approx(0.07 * 60)
    await assert_rows_equal_the_vehicle_answers(client)
    await fold_everything(db, settings)
    await assert_folded_hours_are_history(db)
    await assert_rows_equal_the_vehicle_answers(client)

    # ev-c, correlated by its meter's id until now, is assigned another meter: the same-id
    # rule no longer holds for any of its windows, so all its days are computed again.
    await assign(client, "ev-c", "m-a2", at(200))
    _, rows = await fleet_rows(client, None)
    assert rows["ev-c"]["correlation"] == "assignment"
    await assert_rows_equal_the_vehicle_answers(client)
    await fold_everything(db, settings)
    await assert_rows_equal_the_vehicle_answers(client)


async def test_fleet_rows_judge_the_charging_minutes_and_say_by_which_threshold(
    settings: Settings, db: asyncpg.Connection
) -> None:
    power_class = settings.model_copy(
        update={"threshold_mode": "power-class", "rollup_fold_seconds": 3600}
    )
    async with start_engine(power_class) as engine:
        await build(engine.client, 4)
        await assert_rows_equal_the_vehicle_answers(engine.client)
        await fold_everything(db, power_class)
        await assert_rows_equal_the_vehicle_answers(engine.client)
        _, rows = await fleet_rows(engine.client, None)

    # ev-c charges at 1.5 kW: a socket, judged against 0.70 (its 0.8 is ok); ev-a charges at
    # 12 kW (a wallbox, 0.85) and its charging minutes are judged, not its standby hours.
    assert (rows["ev-c"]["thresholdRule"], rows["ev-c"]["threshold"]) == ("socket", 0.70)
    assert rows["ev-c"]["status"] == "ok"
    assert (rows["ev-a"]["thresholdRule"], rows["ev-a"]["threshold"]) == ("wallbox", 0.85)
    assert rows["ev-a"]["status"] == "ok"
    assert rows["ev-a"]["charging"]["efficiency"] == pytest.approx(0.85)
    assert rows["ev-a"]["standby"]["minutes"] > 0
    assert rows["ev-a"]["charging"]["sessions"] == 2


async def test_a_fold_computes_pending_days_newest_first_within_its_budget(
    slow_folding: Engine, db: asyncpg.Connection, settings: Settings
) -> None:
    await build(slow_folding.client, 5)
    # A budget of one vehicle-hour: each fold computes one pending vehicle-day (at least one,
    # whatever its hours) and says more are pending until none is.
    folded = await fold_rollups(db, rules=settings.split_rules, energy_limit=1)
    assert folded is not None
    assert (folded.vehicle_days, folded.split_more) == (1, True)
    days_left = await db.fetch("SELECT day FROM vehicle_energy_pending ORDER BY day DESC")
    assert days_left
    rounds = 0
    while folded is not None and folded.split_more:
        newest = await db.fetchval("SELECT max(day) FROM vehicle_energy_pending")
        folded = await fold_rollups(db, rules=settings.split_rules, energy_limit=1)
        assert folded is not None
        assert folded.vehicle_days == 1
        remaining = await db.fetchval("SELECT max(day) FROM vehicle_energy_pending")
        assert remaining is None or remaining <= newest
        rounds += 1
    assert rounds == len(days_left)
    await assert_folded_hours_are_history(db)
    await assert_rows_equal_the_vehicle_answers(slow_folding.client)
