"""Register devices, their faults and standby: the readings sent carry exactly what was injected.

The simulator's expectations (`VehicleTruth`) are checked against an implementation of the
booking rules written here from the rules alone, applied to the readings the simulator sent:
the two must agree on every kWh and every event, so the engine has one right answer to find.
"""

from __future__ import annotations

import bisect
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import orjson
import pytest

from energy_ingest.readings import ValidMeterReading, ValidVehicleReading
from energy_ingest.simulator.fleet import (
    REGISTER_BASE_KWH,
    STANDBY_W,
    FieldsChoice,
    FleetSpec,
    build_fleet,
)
from energy_ingest.simulator.mess import MessRates
from energy_ingest.simulator.registers import SPIKE_KWH
from energy_ingest.simulator.simulation import FleetSimulation, Minute
from energy_ingest.wire import parse_timestamp, reading_body

START = datetime(2026, 11, 20, 6, 0, tzinfo=UTC)
MAX_KW = 1000.0
GAP_SECONDS = 150.0
FAULTS = MessRates(
    jitter=0.5, retry=0.02, late=0.02, silence=0.01, reset=0.004, glitch=0.01, spike=0.006
)


@dataclass
class _Reading:
    at: datetime
    interval: float | None
    register: float | None


@dataclass
class _Found:
    ac: float = 0.0
    dc: float = 0.0
    resets: int = 0
    glitches: int = 0
    rejected: int = 0
    gaps: int = 0
    gap_minutes: float = 0.0
    reconciliation: float | None = None
    dc_minutes: set[int] = field(default_factory=set)
    ac_by_minute: list[tuple[int, float]] = field(default_factory=list)


def _nearest_minute(at: datetime) -> int:
    """The whole minute nearest a timestamp: where a meter's and a vehicle's readings meet."""
    return round(at.timestamp() + 30.0) // 60


def _consistent(a: _Reading, b: _Reading) -> bool:
    assert a.register is not None
    assert b.register is not None
    hours = (b.at - a.at).total_seconds() / 3600.0
    return 0.0 <= b.register - a.register <= MAX_KW * hours


def _book(readings: list[_Reading]) -> list[tuple[_Reading, float, str | None, float | None]]:
    """(reading, kWh, event, register delta booked when both were sent), by the contract."""
    out: list[tuple[_Reading, float, str | None, float | None]] = []
    for i, r in enumerate(readings):
        p1 = readings[i - 1] if i >= 1 else None
        p2 = readings[i - 2] if i >= 2 else None
        n1 = readings[i + 1] if i + 1 < len(readings) else None
        if r.register is None or p1 is None or p1.register is None:
            out.append((r, r.interval or 0.0, None, None))
        elif (
            p2 is not None
            and p2.register is not None
            and not _consistent(p2, p1)
            and _consistent(p2, r)
        ):
            delta = r.register - p2.register
            out.append((r, delta, None, delta if r.interval is not None else None))
        elif not _consistent(p1, r) and n1 is not None and _consistent(p1, n1):
            out.append((r, 0.0, "glitch" if r.register < p1.register else "rejected", None))
        else:
            delta = r.register - p1.register
            if _consistent(p1, r):
                out.append((r, delta, None, delta if r.interval is not None else None))
            else:
                out.append((r, 0.0, "reset" if delta < 0 else "rejected", None))
    return out


def _engine_view(simulation: FleetSimulation, minutes: list[Minute]) -> dict[str, _Found]:
    """What the booking rules find per vehicle in the readings sent (retries sent once)."""
    meters: dict[str, dict[str, _Reading]] = defaultdict(dict)
    vehicles: dict[str, dict[str, _Reading]] = defaultdict(dict)
    spans: dict[str, list[tuple[datetime, str]]] = defaultdict(list)
    for change in simulation.initial_assignments():
        spans[change.meter_id].append((change.at, change.vehicle_id))
    for minute in minutes:
        for change in minute.changes:
            spans[change.meter_id].append((change.at, change.vehicle_id))
        for body in minute.meters:
            meters[body["meterId"]][body["timestamp"]] = _Reading(
                parse_timestamp(body["timestamp"]),
                body.get("kwhConsumedAc"),
                body.get("kwhRegisterAc"),
            )
        for body in minute.vehicles:
            vehicles[body["vehicleId"]][body["timestamp"]] = _Reading(
                parse_timestamp(body["timestamp"]),
                body.get("kwhDeliveredDc"),
                body.get("kwhRegisterDc"),
            )
    # A meter feeds the vehicle of its latest assignment until the vehicle moves away.
    moved_at = {change.vehicle_id: change.at for minute in minutes for change in minute.changes}
    found: dict[str, _Found] = defaultdict(_Found)

    def count(
        target: _Found, reading: _Reading, previous: _Reading | None, event: str | None
    ) -> None:
        if event == "reset":
            target.resets += 1
        elif event == "glitch":
            target.glitches += 1
        elif event == "rejected":
            target.rejected += 1
        if previous is not None:
            elapsed = (reading.at - previous.at).total_seconds()
            if elapsed > GAP_SECONDS:
                target.gaps += 1
                target.gap_minutes += (elapsed - 60.0) / 60.0

    def reconcile(target: _Found, reading: _Reading, delta: float | None) -> None:
        if delta is not None and reading.interval is not None:
            target.reconciliation = (target.reconciliation or 0.0) + reading.interval - delta

    for vehicle_id, by_stamp in vehicles.items():
        ordered = sorted(by_stamp.values(), key=lambda r: r.at)
        target = found[vehicle_id]
        for i, (reading, kwh, event, delta) in enumerate(_book(ordered)):
            target.dc += kwh
            if kwh > 0:
                target.dc_minutes.add(_nearest_minute(reading.at))
            count(target, reading, ordered[i - 1] if i else None, event)
            reconcile(target, reading, delta)
    for meter_id, by_stamp in meters.items():
        ordered = sorted(by_stamp.values(), key=lambda r: r.at)
        owners = sorted(spans[meter_id])
        for i, (reading, kwh, event, delta) in enumerate(_book(ordered)):
            at = bisect.bisect_right([start for start, _ in owners], reading.at) - 1
            if at < 0:
                continue
            vehicle_id = owners[at][1]
            moved = moved_at.get(vehicle_id)
            if moved is not None and owners[at][0] < moved <= reading.at:
                continue  # the vehicle left this meter
            target = found[vehicle_id]
            target.ac += kwh
            target.ac_by_minute.append((_nearest_minute(reading.at), kwh))
            count(target, reading, ordered[i - 1] if i else None, event)
            reconcile(target, reading, delta)
    return found


def _run(spec: FleetSpec, minutes: int, mess: MessRates) -> tuple[FleetSimulation, list[Minute]]:
    simulation = FleetSimulation(build_fleet(spec, minutes), mess, START)
    return simulation, list(simulation)


@pytest.mark.parametrize("fields", ["register", "both", "mixed"])
def test_the_truth_is_what_the_booking_rules_find_in_the_readings_sent(
    fields: FieldsChoice,
) -> None:
    spec = FleetSpec(vehicles=30, change_share=0.2, seed=13, energy_fields=fields, standby=True)
    simulation, minutes = _run(spec, 6 * 60, FAULTS)
    found = _engine_view(simulation, minutes)
    for vehicle_id, truth in simulation.truths.items():
        engine = found[vehicle_id]
        assert truth.ac_sent == pytest.approx(engine.ac, abs=1e-6), vehicle_id
        assert truth.dc_sent == pytest.approx(engine.dc, abs=1e-6), vehicle_id
        assert (truth.resets, truth.glitches, truth.rejected, truth.gaps) == (
            engine.resets,
            engine.glitches,
            engine.rejected,
            engine.gaps,
        ), vehicle_id
        assert truth.gap_minutes == pytest.approx(engine.gap_minutes, abs=1e-9)
        if engine.reconciliation is None:
            assert truth.reconciliation is None
        else:
            assert truth.reconciliation == pytest.approx(engine.reconciliation, abs=1e-6)
        charging_ac = sum(kwh for m, kwh in engine.ac_by_minute if m in engine.dc_minutes)
        assert truth.charging_ac == pytest.approx(charging_ac, abs=1e-6)
        assert truth.standby_ac == pytest.approx(engine.ac - charging_ac, abs=1e-6)
        assert truth.booked_charging_minutes == len(engine.dc_minutes)
    counts = simulation.counts
    # Every kind of fault happened, and the vehicles' answers see them.
    assert counts.resets > 0
    assert counts.glitches > 0
    assert counts.spikes > 0
    truths = simulation.truths.values()
    assert sum(t.resets for t in truths) > 0
    assert sum(t.glitches for t in truths) > 0
    assert sum(t.rejected for t in truths) > 0
    assert sum(t.gaps for t in truths) > 0


def test_register_devices_send_their_register_and_it_counts_through_silence() -> None:
    spec = FleetSpec(vehicles=10, seed=4, energy_fields="register")
    silent = MessRates(jitter=0.0, retry=0.0, late=0.0, silence=0.05)
    simulation, minutes = _run(spec, 4 * 60, silent)
    bases = {c.meter_id: c.register_base for c in simulation.fleet.chargers}
    bases.update({v.vehicle_id: v.register_base for v in simulation.fleet.vehicles})
    assert all(REGISTER_BASE_KWH[0] <= base <= REGISTER_BASE_KWH[1] for base in bases.values())
    last: dict[str, float] = {}
    for minute in minutes:
        for body in [*minute.meters, *minute.vehicles]:
            assert "kwhConsumedAc" not in body
            assert "kwhDeliveredDc" not in body
            device = body.get("meterId") or body["vehicleId"]
            register = float(body["kwhRegisterAc" if "meterId" in body else "kwhRegisterDc"])
            assert register >= last.get(device, bases[device])  # no faults: never backwards
            last[device] = register
    assert simulation.counts.lost > 0
    for truth in simulation.truths.values():
        # Nothing is lost to silence but the first reading's minute (the register's base) and
        # whatever was drawn after a device's last reading (each minute's true energy is
        # rounded to 0.1 Wh, the register only once).
        assert truth.dc_sent <= truth.dc_true + 240 * 0.00005
        if truth.lost_while_charging == 0:
            # Nothing was drawn while charging that no reading books: DC and AC are whole.
            assert truth.dc_sent == pytest.approx(truth.dc_true, abs=240 * 0.00005)
            assert truth.charging_minutes > 0
    # Silences while charging that lose nothing: those vehicles are still judged.
    assert any(
        t.register_silent_while_charging and not t.lost_while_charging
        for t in simulation.truths.values()
    )


def test_faults_look_like_what_they_are() -> None:
    spec = FleetSpec(vehicles=20, seed=8, energy_fields="register")
    rates = MessRates(
        jitter=0.0, retry=0.0, late=0.0, silence=0.0, reset=0.01, glitch=0.02, spike=0.01
    )
    _, minutes = _run(spec, 3 * 60, rates)
    series: dict[str, list[float]] = defaultdict(list)
    for minute in minutes:
        for body in minute.meters:
            series[body["meterId"]].append(body["kwhRegisterAc"])
    zeros = spikes = drops = 0
    for values in series.values():
        for before, value, after in zip(values, values[1:], values[2:], strict=False):
            if value == 0.0 and after >= before:
                zeros += 1  # a glitch: back to the true level
            elif value > before + SPIKE_KWH / 2:
                spikes += 1
                assert before <= after < value
            elif value < before and after < before:
                drops += 1  # a reset: the register stays down
    assert zeros
    assert spikes
    assert drops


def test_idle_chargers_draw_standby_power_and_vehicles_nothing() -> None:
    spec = FleetSpec(vehicles=15, seed=6, standby=True)
    simulation, minutes = _run(
        spec, 6 * 60, MessRates(jitter=0.0, retry=0.0, late=0.0, silence=0.0)
    )
    standby = {c.meter_id: c.standby_kw for c in simulation.fleet.chargers}
    for charger in simulation.fleet.chargers:
        low, high = STANDBY_W[charger.kind]
        assert low / 1000 <= charger.standby_kw <= high / 1000
    feeding = {v.vehicle_id: v.charger.meter_id for v in simulation.fleet.vehicles}
    idle = 0
    for minute in minutes[:-1]:
        for change in minute.changes:
            feeding[change.vehicle_id] = change.meter_id
        charging = {feeding[r["vehicleId"]] for r in minute.vehicles if r["kwhDeliveredDc"] > 0}
        for reading in minute.meters:
            if reading["meterId"] not in charging:
                idle += 1
                assert reading["kwhConsumedAc"] == round(standby[reading["meterId"]] / 60, 4)
    assert idle > 1_000
    for truth in simulation.truths.values():
        assert truth.standby_true > 0
        assert truth.standby_ac == pytest.approx(truth.standby_true, abs=1e-6)
        assert truth.charging_ac + truth.standby_ac == pytest.approx(truth.ac_sent, abs=1e-6)


def test_the_energy_options_leave_the_rest_of_the_fleet_and_its_mess_as_they_were() -> None:
    plain = _run(FleetSpec(vehicles=10, seed=3), 120, MessRates())[1]
    registered = _run(
        FleetSpec(vehicles=10, seed=3, energy_fields="both", standby=True), 120, MessRates()
    )[1]

    def shape(minutes: list[Minute]) -> list[tuple[int, str, Any]]:
        return [
            (m.index, body["timestamp"], body.get("soc", body.get("voltage")))
            for m in minutes
            for body in [*m.meters, *m.vehicles]
        ]

    assert shape(plain) == shape(registered)


def test_the_same_seed_gives_the_same_register_readings() -> None:
    spec = FleetSpec(vehicles=8, seed=21, energy_fields="mixed", standby=True)

    def sent() -> list[bytes]:
        return [
            orjson.dumps(b) for m in _run(spec, 90, FAULTS)[1] for b in [*m.meters, *m.vehicles]
        ]

    assert sent() == sent()


def test_register_bodies_are_the_engines_wire_format_of_the_same_reading() -> None:
    spec = FleetSpec(vehicles=12, seed=5, energy_fields="mixed", standby=True)
    _, minutes = _run(spec, 60, FAULTS)
    bodies = [body for m in minutes for body in [*m.meters, *m.vehicles]]
    assert {"kwhRegisterAc", "kwhRegisterDc", "kwhConsumedAc", "kwhDeliveredDc"} <= {
        name for body in bodies for name in body
    }
    for body in bodies:
        at = parse_timestamp(body["timestamp"])
        reading = (
            ValidMeterReading(
                body["meterId"],
                body.get("kwhConsumedAc"),
                body["voltage"],
                at,
                body.get("kwhRegisterAc"),
            )
            if "meterId" in body
            else ValidVehicleReading(
                body["vehicleId"],
                body["soc"],
                body.get("kwhDeliveredDc"),
                body["batteryTemp"],
                at,
                body.get("kwhRegisterDc"),
            )
        )
        assert reading_body(reading) == body
