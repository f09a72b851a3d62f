"""The simulator's physics: energy conserved, SoC within 0–100 and stopping at 100, idle is zero."""

from __future__ import annotations

import random
from collections import defaultdict
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from energy_ingest.readings import ValidMeterReading, ValidVehicleReading
from energy_ingest.simulator.fleet import (
    FAULTY_EFFICIENCY,
    HEALTHY_EFFICIENCY,
    Charger,
    FleetSpec,
    Vehicle,
    build_fleet,
)
from energy_ingest.simulator.mess import MessRates
from energy_ingest.simulator.physics import Activity, VehicleModel
from energy_ingest.simulator.simulation import FleetSimulation, Minute
from energy_ingest.wire import parse_timestamp, reading_body

START = datetime(2026, 11, 20, 6, 0, tzinfo=UTC)
NO_MESS = MessRates(jitter=0.0, retry=0.0, late=0.0, silence=0.0)


def _run(
    spec: FleetSpec, minutes: int, mess: MessRates = NO_MESS
) -> tuple[FleetSimulation, list[Minute]]:
    simulation = FleetSimulation(build_fleet(spec, minutes), mess, START)
    return simulation, list(simulation)


def _charger(kind: str = "dc", power: float = 150.0, efficiency: float = 0.9) -> Charger:
    return Charger(
        meter_id="m-1",
        kind="dc" if kind == "dc" else "ac",
        max_power_kw=power,
        efficiency=efficiency,
        faulty=efficiency < 0.85,
        nominal_voltage=400.0,
    )


def _vehicle(**changes: Any) -> Vehicle:
    vehicle = Vehicle(
        vehicle_id="v-1",
        capacity_kwh=60.0,
        max_ac_kw=11.0,
        max_dc_kw=150.0,
        initial_soc=50.0,
        ambient_temp=20.0,
        charger=_charger(),
        first_charge_minute=0,
        change=None,
    )
    return replace(vehicle, **changes)


def test_every_charging_minute_conserves_energy_ac_times_efficiency_is_dc() -> None:
    simulation, minutes = _run(FleetSpec(vehicles=20, change_share=0.2, seed=4), 8 * 60)
    feeding: dict[str, Charger] = {v.vehicle_id: v.charger for v in simulation.fleet.vehicles}
    meters_seen = 0
    for minute in minutes[:-1]:
        for change in minute.changes:
            vehicle = next(
                v for v in simulation.fleet.vehicles if v.vehicle_id == change.vehicle_id
            )
            assert vehicle.change is not None
            feeding[change.vehicle_id] = vehicle.change.spare
        ac_by_meter = {m["meterId"]: m["kwhConsumedAc"] for m in minute.meters}
        for reading in minute.vehicles:
            charger = feeding[reading["vehicleId"]]
            ac = ac_by_meter[charger.meter_id]
            # Both sides are rounded to 0.1 Wh on the wire: equal within that.
            assert ac * charger.efficiency == pytest.approx(reading["kwhDeliveredDc"], abs=1.1e-4)
            meters_seen += reading["kwhDeliveredDc"] > 0
    assert meters_seen > 1_000


def test_a_charging_vehicle_stops_exactly_at_100_percent() -> None:
    vehicle = _vehicle(initial_soc=97.0, capacity_kwh=60.0)
    model = VehicleModel(vehicle, random.Random(1))
    assert model.charging
    delivered = [model.step() for _ in range(30)]
    assert model.soc == 100.0
    # Exactly the room that was left, no more: 3 % of 60 kWh.
    assert sum(delivered) == pytest.approx(0.03 * 60.0, rel=1e-12)
    full_at = next(i for i, _ in enumerate(delivered) if sum(delivered[: i + 1]) >= 1.8 - 1e-12)
    assert all(energy == 0.0 for energy in delivered[full_at + 1 :])
    assert not model.charging


def test_soc_stays_within_0_and_100_and_rises_only_while_charging() -> None:
    _, minutes = _run(FleetSpec(vehicles=20, dc_fast_share=0.8, seed=9), 24 * 60)
    last: dict[str, float] = {}
    rises = full = 0
    for minute in minutes:
        for reading in minute.vehicles:
            soc = reading["soc"]
            assert 0.0 <= soc <= 100.0
            previous = last.get(reading["vehicleId"])
            if previous == 100.0:
                assert reading["kwhDeliveredDc"] == 0.0, "a full battery takes nothing more"
                full += 1
            if previous is not None and soc > previous + 1e-9:
                rises += 1
                assert reading["kwhDeliveredDc"] > 0, "SoC only rises with energy delivered"
            last[reading["vehicleId"]] = soc
    assert rises > 1_000
    assert full > 0, "some vehicles charge to full during a day"


def test_soc_rises_by_the_energy_delivered_over_the_battery_capacity() -> None:
    vehicle = _vehicle(initial_soc=20.0, capacity_kwh=77.0, charger=_charger("ac", 11.0))
    model = VehicleModel(vehicle, random.Random(2))
    before = model.soc
    energy = sum(model.step() for _ in range(30))
    assert model.soc - before == pytest.approx(energy / 77.0 * 100.0, rel=1e-9)
    assert 30 * 6.5 / 60 < energy <= 30 * 11.0 / 60  # level 2: about 7–22 kW


def test_idle_minutes_report_zero_energy_on_both_sides() -> None:
    simulation, minutes = _run(FleetSpec(vehicles=15, change_share=0.3, seed=6), 10 * 60)
    fleet = simulation.fleet
    feeding = {v.vehicle_id: v.charger.meter_id for v in fleet.vehicles}
    idle_vehicle_minutes = 0
    for minute in minutes[:-1]:
        for change in minute.changes:
            feeding[change.vehicle_id] = change.meter_id
        charging_meters = set()
        for reading in minute.vehicles:
            if reading["kwhDeliveredDc"] > 0:
                charging_meters.add(feeding[reading["vehicleId"]])
            else:
                idle_vehicle_minutes += 1
        for reading in minute.meters:
            if reading["meterId"] not in charging_meters:
                assert reading["kwhConsumedAc"] == 0.0
    assert idle_vehicle_minutes > 1_000
    # A change takes an idle minute: nothing is drawn while the vehicle moves.
    changes = [(m.index, c.vehicle_id) for m in minutes for c in m.changes]
    assert changes
    for index, vehicle_id in changes:
        reading = next(r for r in minutes[index].vehicles if r["vehicleId"] == vehicle_id)
        assert reading["kwhDeliveredDc"] == 0.0


def test_battery_temperature_rises_while_charging_and_relaxes_afterwards() -> None:
    vehicle = _vehicle(initial_soc=10.0, capacity_kwh=100.0, ambient_temp=15.0)
    model = VehicleModel(vehicle, random.Random(3))
    temperatures = []
    while model.charging:
        model.step()
        temperatures.append(model.temperature)
    peak = max(temperatures)
    assert peak > 15.0 + 5.0  # DC fast charging warms the pack
    for _ in range(120):
        model.step()
        if model.activity is Activity.CHARGING:
            break
    else:
        assert model.temperature < peak


def test_voltage_jitters_around_the_nominal_value() -> None:
    simulation, minutes = _run(FleetSpec(vehicles=10, seed=1), 120)
    nominal = {c.meter_id: c.nominal_voltage for c in simulation.fleet.chargers}
    voltages = defaultdict(set)
    for minute in minutes:
        for reading in minute.meters:
            expected = nominal[reading["meterId"]]
            assert abs(reading["voltage"] - expected) <= expected * 0.05 + 0.05
            voltages[reading["meterId"]].add(reading["voltage"])
    assert all(len(values) > 10 for values in voltages.values())


def test_chargers_are_healthy_or_faulty_within_their_efficiency_bands() -> None:
    fleet = build_fleet(FleetSpec(vehicles=200, faulty_share=0.1, change_share=0.1, seed=8), 600)
    faulty = [c for c in fleet.chargers if c.faulty]
    healthy = [c for c in fleet.chargers if not c.faulty]
    assert all(FAULTY_EFFICIENCY[0] <= c.efficiency <= FAULTY_EFFICIENCY[1] for c in faulty)
    assert all(HEALTHY_EFFICIENCY[0] <= c.efficiency <= HEALTHY_EFFICIENCY[1] for c in healthy)
    assert sum(1 for v in fleet.vehicles if v.faulty) == 20
    for vehicle in fleet.vehicles:
        if vehicle.change is not None:
            # The spare has the health of the charger it replaces: the truth never flips.
            assert vehicle.change.spare.faulty == vehicle.charger.faulty
            assert 200 <= vehicle.change.at_minute <= 400
    powers = {(c.kind, c.max_power_kw) for c in fleet.chargers}
    assert {kind for kind, _ in powers} == {"ac", "dc"}
    assert all(7.0 <= p <= 22.0 if k == "ac" else 50.0 <= p <= 150.0 for k, p in powers)


def test_every_vehicle_charges_within_a_short_run() -> None:
    simulation, _ = _run(FleetSpec(vehicles=40, seed=12), 120)
    assert all(truth.charging_minutes > 0 for truth in simulation.truths.values())


def test_the_run_ends_before_now_and_readings_are_whole_minutes_without_jitter() -> None:
    start = datetime.now(UTC).replace(second=0, microsecond=0) - timedelta(hours=1)
    simulation = FleetSimulation(build_fleet(FleetSpec(vehicles=3), 60), NO_MESS, start)
    stamps = [r["timestamp"] for m in simulation for r in [*m.meters, *m.vehicles]]
    assert all(stamp.endswith(":00.000Z") for stamp in stamps)
    assert max(stamps) < datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.000Z")


def test_the_simulators_bodies_are_the_engines_wire_format_of_the_same_reading() -> None:
    # The simulator builds its bodies itself (millions per run, a dict literal is ~15 times
    # cheaper than `reading_body`); they must be exactly what `reading_body` gives.
    _, minutes = _run(FleetSpec(vehicles=20, seed=3), 90, MessRates())
    bodies = [(True, body) for m in minutes for body in m.meters]
    bodies += [(False, body) for m in minutes for body in m.vehicles]
    assert any(not body["timestamp"].endswith(":00.000Z") for _, body in bodies)  # jittered
    for is_meter, body in bodies:
        at = parse_timestamp(body["timestamp"])
        reading = (
            ValidMeterReading(body["meterId"], body["kwhConsumedAc"], body["voltage"], at)
            if is_meter
            else ValidVehicleReading(
                body["vehicleId"], body["soc"], body["kwhDeliveredDc"], body["batteryTemp"], at
            )
        )
        assert reading_body(reading) == body
