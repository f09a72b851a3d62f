"""Registers as well as intervals: what a reading books, and what the answers say about it.

A meter (or vehicle) that sends its cumulative register books the step from where its count
goes on: a backward step the next reading takes back is a glitch (nothing booked), one the next
reading confirms is a reset (the count goes on from there), a step faster than the power cap is
rejected, and a step across a gap is booked whole (and spread over the gap in a series).
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import asyncpg
import httpx
import pytest

from energy_ingest.config import Settings
from tests.factories import iso, meter_reading, vehicle_reading
from tests.integration.analytics.test_performance import Ago, ago, send_vehicle, summary
from tests.integration.writer.test_rollups import assert_rollups_match_history

__all__ = ["ago"]  # the fixture, shared


def register_meter(meter_id: str, register: float | None, at: datetime, **extra: Any) -> Any:
    """A meter reading carrying its register (and no interval value unless given)."""
    body = meter_reading(meter_id=meter_id, at=at, **extra)
    if "kwhConsumedAc" not in extra:
        del body["kwhConsumedAc"]
    if register is not None:
        body["kwhRegisterAc"] = register
    return body


def register_vehicle(vehicle_id: str, register: float, at: datetime, **extra: Any) -> Any:
    body = vehicle_reading(vehicle_id=vehicle_id, at=at, **extra)
    if "kwhDeliveredDc" not in extra:
        del body["kwhDeliveredDc"]
    body["kwhRegisterDc"] = register
    return body


async def post(client: httpx.AsyncClient, kind: str, items: list[Any]) -> dict[str, Any]:
    response = await client.post(f"/v1/ingest/{kind}/batch", json=items)
    assert response.status_code == 201, response.text
    body: dict[str, Any] = response.json()
    return body


async def send_registers(
    client: httpx.AsyncClient, meter_id: str, registers: list[float | None], ago: Ago, first: int
) -> list[datetime]:
    """One register reading a minute from `first` minutes ago; None: no reading that minute."""
    moments = [ago(first - index) for index in range(len(registers))]
    items = [
        register_meter(meter_id, register, at)
        for register, at in zip(registers, moments, strict=True)
        if register is not None
    ]
    assert (await post(client, "meter", items))["stored"] == len(items)
    return moments


async def charged(client: httpx.AsyncClient, vehicle_id: str, ago: Ago, first: int) -> None:
    """The vehicle (same id as its meter) took 0.1 kWh a minute over the same minutes."""
    await send_vehicle(client, vehicle_id, 0.1, [ago(first - index) for index in range(first)])


# --- the rules, one at a time ------------------------------------------------------------------


async def test_register_steps_are_booked_exactly(client: httpx.AsyncClient, ago: Ago) -> None:
    await send_registers(client, "M-REG", [1000.0, 1000.1, 1000.25, 1000.3], ago, 10)
    await charged(client, "M-REG", ago, 10)

    body = await summary(client, "M-REG")

    # The first reading is the register's base: only the steps after it are energy.
    assert body["energyConsumedAc"] == 0.3
    assert body["dataPoints"]["meter"] == 4
    quality = body["dataQuality"]
    assert quality["acSource"] == "register"
    assert quality["dcSource"] == "interval"
    assert (quality["resets"], quality["glitches"], quality["rejectedDeltas"]) == (0, 0, 0)
    assert quality["reconciliationKwh"] is None


async def test_a_glitch_to_zero_books_nothing(client: httpx.AsyncClient, ago: Ago) -> None:
    # The register reads 0 once (a momentary fault) and comes back.
    await send_registers(client, "M-GLITCH", [5000.0, 5000.2, 0.0, 5000.5, 5000.6], ago, 10)
    await charged(client, "M-GLITCH", ago, 10)

    body = await summary(client, "M-GLITCH")

    assert body["energyConsumedAc"] == 0.6  # never −5000.2 nor +5000.5
    assert body["dataQuality"]["glitches"] == 1
    assert body["dataQuality"]["resets"] == 0


async def test_a_confirmed_backward_step_is_a_reset(client: httpx.AsyncClient, ago: Ago) -> None:
    # The meter was replaced: the new one starts at 2.0 and keeps counting from there.
    await send_registers(client, "M-RESET", [800.0, 800.5, 2.0, 2.25, 2.5], ago, 10)
    await charged(client, "M-RESET", ago, 10)

    body = await summary(client, "M-RESET")

    assert body["energyConsumedAc"] == 1.0  # 0.5 before, nothing for the step, 0.5 after
    assert body["dataQuality"]["resets"] == 1
    assert body["dataQuality"]["glitches"] == 0


async def test_a_step_beyond_the_power_cap_is_never_booked(
    client: httpx.AsyncClient, ago: Ago, settings: Settings
) -> None:
    # 53.7 MWh in one minute on a site whose register otherwise climbs 0.1 kWh a minute: once
    # taken back by the next reading, once for good (the count goes on from the new level).
    await send_registers(client, "M-SPIKE", [100.0, 100.1, 53_800.0, 100.3, 100.4], ago, 20)
    await send_registers(client, "M-JUMP", [100.0, 100.1, 53_800.0, 53_800.1], ago, 20)
    await charged(client, "M-SPIKE", ago, 20)
    await charged(client, "M-JUMP", ago, 20)

    spike = await summary(client, "M-SPIKE")
    jump = await summary(client, "M-JUMP")

    assert spike["energyConsumedAc"] == 0.4
    assert spike["dataQuality"]["rejectedDeltas"] == 1
    assert jump["energyConsumedAc"] == 0.2
    assert jump["dataQuality"]["rejectedDeltas"] == 1
    assert settings.max_meter_power_kw * (1 / 60) < 53_700  # the cap the rule applied


async def test_a_step_across_a_gap_is_booked_whole_and_spread_in_a_series(
    client: httpx.AsyncClient, ago: Ago
) -> None:
    # Silent for 9 minutes in the middle; the register kept counting (0.1 kWh a minute).
    registers: list[float | None] = [10.0, 10.1, *[None] * 9, 11.1, 11.2]
    moments = await send_registers(client, "M-GAP", registers, ago, 30)
    await charged(client, "M-GAP", ago, 30)

    body = await summary(client, "M-GAP")
    assert body["energyConsumedAc"] == pytest.approx(1.2)  # nothing lost
    assert body["dataQuality"]["gaps"] == 1
    assert body["dataQuality"]["gapMinutes"] == 9

    # At 1-minute steps the 1.0 kWh that closed the gap is spread over its 10 minutes.
    start, end = moments[0], moments[-1] + timedelta(minutes=1)
    response = await client.get(
        "/v1/analytics/vehicle/M-GAP/series",
        params={"from": iso(start), "to": iso(end), "step": "1m"},
    )
    assert response.status_code == 200, response.text
    ac = [bucket["energyConsumedAc"] for bucket in response.json()["buckets"]]
    assert ac[0] == 0  # the register's base
    assert ac[1:12] == pytest.approx([0.1] * 11)
    assert sum(value or 0 for value in ac) == pytest.approx(1.2)


async def test_the_next_reading_tells_a_glitch_from_a_reset(
    client: httpx.AsyncClient, ago: Ago, db: asyncpg.Connection
) -> None:
    await send_registers(client, "M-NEXT", [300.0, 300.1, 0.0], ago, 10)
    await charged(client, "M-NEXT", ago, 10)
    newest = await summary(client, "M-NEXT")
    # While the 0 is the newest reading nothing tells: it books nothing, counted as a reset.
    assert newest["energyConsumedAc"] == pytest.approx(0.1)
    assert (newest["dataQuality"]["resets"], newest["dataQuality"]["glitches"]) == (1, 0)

    await post(client, "meter", [register_meter("M-NEXT", 300.3, ago(7))])

    taken_back = await summary(client, "M-NEXT")
    assert taken_back["energyConsumedAc"] == pytest.approx(0.3)
    assert (taken_back["dataQuality"]["resets"], taken_back["dataQuality"]["glitches"]) == (0, 1)
    await assert_rollups_match_history(db)


async def test_a_late_reading_splits_the_step_it_falls_into(
    client: httpx.AsyncClient, ago: Ago, db: asyncpg.Connection
) -> None:
    moments = [ago(10 - index) for index in range(4)]
    registers = [500.0, 500.1, 500.2, 500.3]
    await post(
        client, "meter", [register_meter("M-LATE", registers[i], moments[i]) for i in (0, 1, 3)]
    )
    await charged(client, "M-LATE", ago, 10)
    assert (await summary(client, "M-LATE"))["energyConsumedAc"] == pytest.approx(0.3)

    await post(client, "meter", [register_meter("M-LATE", registers[2], moments[2])])

    assert (await summary(client, "M-LATE"))["energyConsumedAc"] == pytest.approx(0.3)
    response = await client.get(
        "/v1/analytics/vehicle/M-LATE/series",
        params={
            "from": iso(moments[0]),
            "to": iso(moments[-1] + timedelta(minutes=1)),
            "step": "1m",
        },
    )
    ac = [bucket["energyConsumedAc"] for bucket in response.json()["buckets"]]
    assert ac == pytest.approx([0.0, 0.1, 0.1, 0.1])  # the late reading took its share
    await assert_rollups_match_history(db)


async def test_interval_and_register_together_are_reconciled(
    client: httpx.AsyncClient, ago: Ago
) -> None:
    # The intervals say 0.1 a minute, the register 0.12: the answer books the register and
    # says by how much the two disagree.
    items = [
        register_meter("M-BOTH", 50.0 + 0.12 * index, ago(10 - index), kwhConsumedAc=0.1)
        for index in range(6)
    ]
    await post(client, "meter", items)
    await charged(client, "M-BOTH", ago, 10)

    body = await summary(client, "M-BOTH")

    assert body["energyConsumedAc"] == pytest.approx(0.7)  # 5 steps of 0.12, and the base's 0.1
    assert body["dataQuality"]["acSource"] == "mixed"  # the base books its interval
    assert body["dataQuality"]["reconciliationKwh"] == pytest.approx(-0.1)  # 5 × (0.1 − 0.12)
    assert body["dataQuality"]["acReconciliationKwh"] == pytest.approx(-0.1)
    assert body["dataQuality"]["dcReconciliationKwh"] is None


async def test_a_vehicle_register_books_its_dc(client: httpx.AsyncClient, ago: Ago) -> None:
    items = [register_vehicle("EV-REG", 20.0 + 0.09 * index, ago(10 - index)) for index in range(5)]
    await post(client, "vehicle", items)
    await send_registers(client, "EV-REG", [7.0, 7.1, 7.2, 7.3, 7.4], ago, 10)

    body = await summary(client, "EV-REG")

    assert body["energyDeliveredDc"] == pytest.approx(0.36)
    assert body["energyConsumedAc"] == pytest.approx(0.4)
    assert body["efficiency"] == pytest.approx(0.9)
    assert body["dataQuality"]["dcSource"] == "register"


# --- the wire ------------------------------------------------------------------------------------


async def test_a_reading_needs_its_interval_or_its_register(
    client: httpx.AsyncClient, ago: Ago
) -> None:
    neither = meter_reading(meter_id="M-1", at=ago(1))
    del neither["kwhConsumedAc"]
    response = await client.post("/v1/ingest/meter", json=neither)
    assert response.status_code == 422
    problem = response.json()["errors"][0]
    assert (problem["field"], problem["rule"]) == ("kwhConsumedAc", "required")
    assert "kwhRegisterAc" in problem["message"]

    negative = register_meter("M-1", -1.0, ago(1))
    response = await client.post("/v1/ingest/meter", json=negative)
    assert response.status_code == 422
    assert {"field": "kwhRegisterAc", "rule": "range"} in [
        {"field": problem["field"], "rule": problem["rule"]}
        for problem in response.json()["errors"]
    ]

    assert (
        await client.post("/v1/ingest/meter", json=register_meter("M-1", 1.0, ago(1)))
    ).status_code == 201
    vehicle = register_vehicle("V-1", 3.0, ago(1))
    assert (await client.post("/v1/ingest/vehicle", json=vehicle)).status_code == 201


async def test_a_resent_register_is_a_duplicate_and_a_changed_one_a_conflict(
    client: httpx.AsyncClient, ago: Ago
) -> None:
    first = register_meter("M-DUP", 12.5, ago(2))
    assert (await client.post("/v1/ingest/meter", json=first)).status_code == 201
    assert (await client.post("/v1/ingest/meter", json=first)).status_code == 200
    changed = register_meter("M-DUP", 12.75, ago(2))
    assert (await client.post("/v1/ingest/meter", json=changed)).status_code == 409


async def test_the_live_state_shows_the_register(client: httpx.AsyncClient, ago: Ago) -> None:
    await send_registers(client, "M-LIVE", [42.5], ago, 1)
    response = await client.get("/v1/analytics/meter/M-LIVE/live")
    assert response.status_code == 200, response.text
    assert response.json()["kwhRegisterAc"] == 42.5
    assert response.json()["kwhConsumedAc"] is None


async def test_fleet_rows_book_registers_as_the_vehicle_answer_does(
    client: httpx.AsyncClient, ago: Ago
) -> None:
    # A glitch, a reset and a step over the cap, inside a window given to the minute: the fleet
    # statement books the partial hours from history, the whole ones from the rollups.
    await send_registers(
        client, "M-FLEET", [7000.0, 7000.2, 0.0, 7000.5, 3.0, 3.1, 90_000.0, 3.3], ago, 12
    )
    await charged(client, "M-FLEET", ago, 12)
    start, end = ago(13), ago(0) + timedelta(seconds=30)

    vehicle = await summary(client, "M-FLEET", start, end)
    response = await client.get(
        "/v1/analytics/fleet/performance", params={"from": iso(start), "to": iso(end)}
    )
    assert response.status_code == 200, response.text
    (row,) = [row for row in response.json()["vehicles"] if row["vehicleId"] == "M-FLEET"]

    assert vehicle["energyConsumedAc"] == pytest.approx(0.8)  # 0.2 + 0.3 + 0.1 + 0.2
    assert row["energyConsumedAc"] == vehicle["energyConsumedAc"]
    assert row["energyDeliveredDc"] == vehicle["energyDeliveredDc"]
