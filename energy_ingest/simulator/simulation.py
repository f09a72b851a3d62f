"""The fleet's readings minute by minute, as devices deliver them, and what the truth is."""

from __future__ import annotations

import heapq
import itertools
import math
import random
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from energy_ingest.simulator.fleet import Charger, ChargerChange, Fleet, Vehicle
from energy_ingest.simulator.mess import ON_TIME, DeviceMess, Fate, MessRates
from energy_ingest.simulator.physics import VehicleModel
from energy_ingest.simulator.registers import Booking, DeviceLedger, Source, gap_minutes

Payload = dict[str, Any]
# Assignments start a little before the first reading, so that a reading whose clock runs a
# few seconds early is still inside its vehicle's assignment.
ASSIGNMENT_LEAD = timedelta(minutes=5)
_VOLTAGE_SIGMA = 0.008  # relative standard deviation of the grid voltage around nominal
_VOLTAGE_SPREAD = 0.05  # a meter never reports further than this from nominal
GAP_SECONDS = 150.0  # the engine's default: a longer silence between two readings is a gap


@dataclass(frozen=True, slots=True)
class AssignmentChange:
    """`meter_id` feeds `vehicle_id` from `at` on (the previous assignment ends there)."""

    vehicle_id: str
    meter_id: str
    at: datetime


@dataclass(slots=True)
class Minute:
    """The readings delivered during one simulated minute, and the assignments made in it.

    `index` counts minutes from the start; the last Minute (index == the run's minutes,
    `final`) carries the late readings and retries still owed when the run ends.
    """

    index: int
    at: datetime
    meters: list[Payload]
    vehicles: list[Payload]
    changes: list[AssignmentChange]
    final: bool = False

    @property
    def readings(self) -> int:
        """How many readings are delivered (retries included)."""
        return len(self.meters) + len(self.vehicles)


@dataclass(slots=True)
class VehicleTruth:
    """What the simulator knows about one vehicle: its chargers and the energy it sent.

    `*_sent` sum what the readings actually delivered should book (what the engine can see:
    the interval values, or the register deltas by the engine's rules); `*_true` sum every
    reading taken, delivered or lost. Meter energy and events are counted for the vehicle the
    meter fed at the reading's timestamp, as the engine correlates them.

    The data-quality counts are what the simulator injected into the readings booked for this
    vehicle (its own and its meters'); `charging_ac` / `standby_ac` split the meter energy booked
    by whether the vehicle booked DC in the reading's UTC minute (the engine's definition of a
    charging minute), `standby_true` is the standby energy its meters really drew.
    """

    vehicle_id: str
    faulty: bool
    chargers: list[Charger]
    dc_sent: float = 0.0
    ac_sent: float = 0.0
    dc_true: float = 0.0
    ac_true: float = 0.0
    vehicle_points: int = 0
    meter_points: int = 0
    charging_minutes: int = 0
    lost_while_charging: int = 0
    # Register readings lost while charging: their energy is booked whole by the next reading
    # (so the window's energy is right), but in that reading's minute.
    register_silent_while_charging: int = 0
    resets: int = 0
    glitches: int = 0
    rejected: int = 0
    gaps: int = 0
    gap_minutes: float = 0.0
    reconciliation_ac: float | None = None
    reconciliation_dc: float | None = None
    ac_sources: set[Source] = field(default_factory=set)
    dc_sources: set[Source] = field(default_factory=set)
    charging_ac: float = 0.0
    standby_ac: float = 0.0
    standby_true: float = 0.0
    booked_charging_minutes: int = 0
    # UTC minutes (epoch minutes) in which the vehicle booked DC, and meter energy booked in
    # minutes not yet known to be charging or not; both kept only until `settle` splits them.
    _dc_minutes: set[int] = field(default_factory=set)
    _ac_minutes: list[tuple[int, float]] = field(default_factory=list)

    @property
    def meter_ids(self) -> list[str]:
        """Every meter that fed the vehicle during the run, in order."""
        return [charger.meter_id for charger in self.chargers]

    def book(self, booking: Booking, at_ms: int, *, meter: bool) -> None:
        """Count one delivered reading of the vehicle or of a meter feeding it."""
        minute = reading_minute(at_ms)
        if meter:
            self.ac_sent += booking.kwh
            self.meter_points += 1
            self.ac_sources.add(booking.source)
            self._ac_minutes.append((minute, booking.kwh))
        else:
            self.dc_sent += booking.kwh
            self.vehicle_points += 1
            self.dc_sources.add(booking.source)
            if booking.kwh > 0.0 and minute not in self._dc_minutes:
                self._dc_minutes.add(minute)
                self.booked_charging_minutes += 1
        if booking.event == "reset":
            self.resets += 1
        elif booking.event == "glitch":
            self.glitches += 1
        elif booking.event == "rejected":
            self.rejected += 1
        if booking.gap_ms is not None:
            self.gaps += 1
            self.gap_minutes += gap_minutes(booking.gap_ms)
        if booking.reconciliation is None:
            pass
        elif meter:
            self.reconciliation_ac = (self.reconciliation_ac or 0.0) + booking.reconciliation
        else:
            self.reconciliation_dc = (self.reconciliation_dc or 0.0) + booking.reconciliation

    @property
    def reconciliation(self) -> float | None:
        """Interval sum minus register deltas over readings that sent both; None: none did."""
        if self.reconciliation_ac is None and self.reconciliation_dc is None:
            return None
        return (self.reconciliation_ac or 0.0) + (self.reconciliation_dc or 0.0)

    @property
    def ac_source(self) -> str | None:
        """Where the meter energy booked for the vehicle comes from, as the engine names it."""
        return _source(self.ac_sources)

    @property
    def dc_source(self) -> str | None:
        """Where the vehicle's booked energy comes from, as the engine names it."""
        return _source(self.dc_sources)

    def settle(self, through_minute: int) -> None:
        """Split the meter energy booked up to UTC minute `through_minute` (epoch minutes).

        Called once no reading of the vehicle can land in that minute or before any more.
        """
        keep = []
        for minute, kwh in self._ac_minutes:
            if minute > through_minute:
                keep.append((minute, kwh))
            elif minute in self._dc_minutes:
                self.charging_ac += kwh
            else:
                self.standby_ac += kwh
        self._ac_minutes = keep
        self._dc_minutes = {minute for minute in self._dc_minutes if minute > through_minute}

    @property
    def charging_dc(self) -> float:
        """DC booked in charging minutes: all of it (a minute booking DC is a charging minute)."""
        return self.dc_sent


def reading_minute(at_ms: int) -> int:
    """The minute (epoch minutes) a reading stamped `at_ms` counts in for charging and standby.

    The whole minute nearest its timestamp, as the engine matches a vehicle's and its meter's
    readings: clocks are off by seconds either way, and a meter stamped 11:59:58 and a vehicle
    stamped 12:00:02 report the same minute (by the UTC minute they fall in, a fifth of the
    charging energy of a fleet with the default jitter would read as standby).
    """
    return (at_ms + 30_000) // 60_000


def _source(sources: set[Source]) -> str | None:
    if not sources:
        return None
    return next(iter(sources)) if len(sources) == 1 else "mixed"


@dataclass(slots=True)
class GenerationCounts:
    """What the simulation produced: each number is a count of readings."""

    taken: int = 0
    lost: int = 0
    jittered: int = 0
    late: int = 0
    retries: int = 0
    resets: int = 0
    glitches: int = 0
    spikes: int = 0

    @property
    def unique_delivered(self) -> int:
        """Readings delivered at least once: what the engine should store."""
        return self.taken - self.lost

    @property
    def deliveries(self) -> int:
        """Readings sent in all, retries included."""
        return self.unique_delivered + self.retries


class _TimestampFormat:
    """Epoch ms → `2026-11-27T17:03:02.000Z`, each distinct instant formatted once.

    Clocks are off by whole seconds, so the readings of a minute share a handful of texts;
    `next_minute()` forgets them, as readings are stamped in the minute they are taken.
    """

    def __init__(self) -> None:
        self._texts: dict[int, str] = {}

    def __call__(self, epoch_ms: int) -> str:
        text = self._texts.get(epoch_ms)
        if text is None:
            moment = datetime.fromtimestamp(epoch_ms // 1000, UTC)
            text = f"{moment:%Y-%m-%dT%H:%M:%S}.{epoch_ms % 1000:03d}Z"
            self._texts[epoch_ms] = text
        return text

    def next_minute(self) -> None:
        """Forget the texts of the minute that ended."""
        self._texts.clear()


@dataclass(slots=True)
class _MeterState:
    charger: Charger
    grid: random.Random
    mess: DeviceMess
    ledger: DeviceLedger
    # (from ms, to ms, vehicle) for each time the meter fed a vehicle.
    spans: list[tuple[int, int, VehicleTruth]] = field(default_factory=list)

    def owner(self, epoch_ms: int) -> VehicleTruth | None:
        for start, end, truth in self.spans:
            if start <= epoch_ms < end:
                return truth
        return None


_FOREVER = 2**62
_SETTLE_EVERY = 30  # minutes between splits of the meter energy into charging and standby


def _epoch_ms(moment: datetime) -> int:
    return round(moment.timestamp() * 1000)


def minute_floor(moment: datetime) -> datetime:
    """The whole UTC minute at or before `moment` (which must be timezone-aware)."""
    if moment.tzinfo is None:
        raise ValueError("a simulation time must be timezone-aware")
    return moment.astimezone(UTC).replace(second=0, microsecond=0)


class FleetSimulation:
    """The run of a fleet from `start` for `fleet.minutes` minutes; iterate to get each Minute.

    Iterating again starts over and yields the same readings: everything random comes from
    streams seeded by the fleet's seed and the device.
    """

    def __init__(
        self, fleet: Fleet, mess: MessRates, start: datetime, *, gap_seconds: float = GAP_SECONDS
    ) -> None:
        self.fleet = fleet
        self.mess = mess
        self.gap_seconds = gap_seconds
        self.start = minute_floor(start)
        self.counts = GenerationCounts()
        self.truths: dict[str, VehicleTruth] = {}

    @property
    def minutes(self) -> int:
        """Length of the run in minutes."""
        return self.fleet.minutes

    @property
    def end(self) -> datetime:
        """The end of the run: the last reading is taken the minute before."""
        return self.start + timedelta(minutes=self.fleet.minutes)

    @property
    def assignments_start(self) -> datetime:
        """When the initial assignments begin."""
        return self.start - ASSIGNMENT_LEAD

    @property
    def window(self) -> tuple[datetime, datetime]:
        """An analytics window holding every reading of the run, and nothing from before it."""
        return self.assignments_start, self.end + ASSIGNMENT_LEAD

    @property
    def device_count(self) -> int:
        """Devices reporting every minute: the vehicles and all their meters (spares included)."""
        return len(self.fleet.vehicles) + len(self.fleet.chargers)

    def initial_assignments(self) -> list[AssignmentChange]:
        """Meter i feeds vehicle i from just before the first reading."""
        return [
            AssignmentChange(vehicle.vehicle_id, vehicle.charger.meter_id, self.assignments_start)
            for vehicle in self.fleet.vehicles
        ]

    def __iter__(self) -> Iterator[Minute]:
        run = _Run(self)
        self.counts, self.truths = run.counts, run.truths
        for index in range(self.fleet.minutes):
            yield run.minute(index)
        yield run.final()


@dataclass(slots=True)
class _VehicleState:
    vehicle: Vehicle
    model: VehicleModel
    mess: DeviceMess
    ledger: DeviceLedger
    truth: VehicleTruth


class _Run:
    """One pass over a simulation: every device's state, and deliveries owed to later minutes."""

    def __init__(self, simulation: FleetSimulation) -> None:
        fleet = simulation.fleet
        seed = fleet.spec.seed
        self.start = simulation.start
        self.start_ms = _epoch_ms(simulation.start)
        self.minutes = fleet.minutes
        self.counts = GenerationCounts()
        self.truths: dict[str, VehicleTruth] = {}
        self.vehicles: list[_VehicleState] = []
        for vehicle in fleet.vehicles:
            truth = VehicleTruth(vehicle.vehicle_id, vehicle.faulty, [vehicle.charger])
            self.truths[vehicle.vehicle_id] = truth
            self.vehicles.append(
                _VehicleState(
                    vehicle,
                    VehicleModel(vehicle, random.Random(f"{seed}/physics/{vehicle.vehicle_id}")),
                    DeviceMess(simulation.mess, random.Random(f"{seed}/mess/{vehicle.vehicle_id}")),
                    DeviceLedger(
                        vehicle.fields,
                        vehicle.register_base,
                        simulation.mess,
                        random.Random(f"{seed}/faults/{vehicle.vehicle_id}"),
                        simulation.gap_seconds,
                    ),
                    truth,
                )
            )
        self.meters = [
            _MeterState(
                charger,
                random.Random(f"{seed}/grid/{charger.meter_id}"),
                DeviceMess(simulation.mess, random.Random(f"{seed}/mess/{charger.meter_id}")),
                DeviceLedger(
                    charger.fields,
                    charger.register_base,
                    simulation.mess,
                    random.Random(f"{seed}/faults/{charger.meter_id}"),
                    simulation.gap_seconds,
                ),
            )
            for charger in fleet.chargers
        ]
        # What each meter draws in a minute nobody charges on it.
        self.standby = [meter.charger.standby_kw / 60.0 for meter in self.meters]
        self.meter_index = {meter.charger.meter_id: i for i, meter in enumerate(self.meters)}
        assigned_ms = _epoch_ms(simulation.assignments_start)
        for state in self.vehicles:
            meter = self.meters[self.meter_index[state.vehicle.charger.meter_id]]
            meter.spans.append((assigned_ms, _FOREVER, state.truth))
        self.timestamp = _TimestampFormat()
        # Deliveries owed to a later minute: (minute, order, is_meter, payload).
        self.pending: list[tuple[int, int, bool, Payload]] = []
        self.order = itertools.count()

    def minute(self, index: int) -> Minute:
        """Advance every device by minute `index` and collect what is delivered in it."""
        minute_ms = self.start_ms + index * 60_000
        out = Minute(
            index=index,
            at=self.start + timedelta(minutes=index),
            meters=[],
            vehicles=[],
            changes=[],
        )
        self.timestamp.next_minute()
        # AC kWh each meter draws this minute: the charging car's AC, or its standby draw.
        drawn = self.standby.copy()
        charging = [False] * len(self.meters)
        for state in self.vehicles:
            self._vehicle(state, out, minute_ms, drawn, charging)
        for meter, ac, feeding in zip(self.meters, drawn, charging, strict=True):
            self._meter(meter, ac, feeding, out, minute_ms)
        # No reading taken from the next minute on lands in the minute before this one (clocks
        # are off by 20 s at most): that minute's meter energy is charging or standby for good.
        if index % _SETTLE_EVERY == 0:
            through = minute_ms // 60_000 - 1
            for state in self.vehicles:
                state.truth.settle(through)
        while self.pending and self.pending[0][0] <= index:
            _, _, is_meter, payload = heapq.heappop(self.pending)
            (out.meters if is_meter else out.vehicles).append(payload)
        return out

    def final(self) -> Minute:
        """The late readings and retries still owed when the run ends."""
        out = Minute(
            index=self.minutes,
            at=self.start + timedelta(minutes=self.minutes),
            meters=[],
            vehicles=[],
            changes=[],
            final=True,
        )
        for state in self.vehicles:
            state.truth.settle(_FOREVER)
            self._close(state.ledger, state.truth)
        for meter in self.meters:
            self._close(meter.ledger, meter.owner(meter.ledger.last_fault_ms))
        while self.pending:
            _, _, is_meter, payload = heapq.heappop(self.pending)
            (out.meters if is_meter else out.vehicles).append(payload)
        return out

    def _move(self, state: _VehicleState, change: ChargerChange, out: Minute, at_ms: int) -> None:
        # The move takes this minute, which draws nothing on either meter: a jittered
        # timestamp on either side of the change cannot shift energy between them.
        old = self.meters[self.meter_index[state.vehicle.charger.meter_id]]
        new = self.meters[self.meter_index[change.spare.meter_id]]
        old.spans[-1] = (old.spans[-1][0], at_ms, state.truth)
        new.spans.append((at_ms, _FOREVER, state.truth))
        state.model.switch_charger(change.spare)
        state.truth.chargers.append(change.spare)
        out.changes.append(
            AssignmentChange(state.vehicle.vehicle_id, change.spare.meter_id, out.at)
        )

    def _close(self, ledger: DeviceLedger, owner: VehicleTruth | None) -> None:
        # A glitch with no reading after it never returns to the true level: a reset.
        if ledger.open_glitch:
            self.counts.glitches -= 1
            self.counts.resets += 1
            if owner is not None:
                owner.glitches -= 1
                owner.resets += 1
        if owner is not None:
            # Drawn while charging after the device's last reading: no reading books it.
            owner.lost_while_charging += ledger.unbooked_charging

    def _lost(self, ledger: DeviceLedger, charging: bool, owner: VehicleTruth | None) -> None:
        self.counts.lost += 1
        if not charging or owner is None:
            return
        if ledger.fields == "interval":
            owner.lost_while_charging += 1  # its energy is gone for good
        else:
            ledger.unbooked_charging += 1
            owner.register_silent_while_charging += 1

    def _booked(
        self, ledger: DeviceLedger, booking: Booking, charging: bool, owner: VehicleTruth | None
    ) -> None:
        counts = self.counts
        event = booking.event
        if event is None:
            if charging and owner is not None and booking.kwh == 0.0 and booking.interval is None:
                owner.lost_while_charging += 1  # a register's first reading: its base
            ledger.unbooked_charging = 0
        elif event == "reset":
            counts.resets += 1
            if owner is not None:
                # The energy since the previous reading is lost with the old register.
                owner.lost_while_charging += ledger.unbooked_charging + charging
            ledger.unbooked_charging = 0
        elif event == "glitch":
            counts.glitches += 1
        else:
            counts.spikes += 1

    def _vehicle(
        self,
        state: _VehicleState,
        out: Minute,
        minute_ms: int,
        drawn: list[float],
        charging: list[bool],
    ) -> None:
        change = state.vehicle.change
        if change is not None and out.index == change.at_minute:
            self._move(state, change, out, minute_ms)
        model, truth, counts = state.model, state.truth, self.counts
        dc = model.step()
        if dc > 0.0:
            meter = self.meter_index[model.charger.meter_id]
            drawn[meter] = dc / model.charger.efficiency
            charging[meter] = True
            truth.charging_minutes += 1
        dc_sent = round(dc, 4)
        truth.dc_true += dc_sent
        counts.taken += 1
        fate = state.mess.fate(out.index)
        at_ms = minute_ms + fate.jitter_ms if fate is not None else None
        booking = state.ledger.take(dc, at_ms)
        if booking is None or at_ms is None or fate is None:
            self._lost(state.ledger, dc > 0.0, truth)
            return
        truth.book(booking, at_ms, meter=False)
        self._booked(state.ledger, booking, dc > 0.0, truth)
        payload: Payload = {
            "vehicleId": state.vehicle.vehicle_id,
            # Rounded down: 100.00 only once the battery is really full.
            "soc": math.floor(model.soc * 100.0) / 100.0,
        }
        if booking.interval is not None:
            payload["kwhDeliveredDc"] = booking.interval
        if booking.register is not None:
            payload["kwhRegisterDc"] = booking.register
        payload["batteryTemp"] = round(model.temperature, 1)
        payload["timestamp"] = self.timestamp(at_ms)
        self._deliver(out, fate, False, payload)

    def _meter(
        self, meter: _MeterState, ac: float, charging: bool, out: Minute, minute_ms: int
    ) -> None:
        counts = self.counts
        ac_sent = round(ac, 4)
        # Drawn whether or not the reading gets through: the mess never changes the grid.
        deviation = meter.grid.gauss(0.0, _VOLTAGE_SIGMA)
        deviation = max(-_VOLTAGE_SPREAD, min(_VOLTAGE_SPREAD, deviation))
        counts.taken += 1
        fate = meter.mess.fate(out.index)
        at_ms = minute_ms + (fate.jitter_ms if fate else 0)
        owner = meter.owner(at_ms)
        if owner is not None:
            owner.ac_true += ac_sent
            if not charging:
                owner.standby_true += ac_sent
        booking = meter.ledger.take(ac, at_ms if fate is not None else None)
        if booking is None or fate is None:
            self._lost(meter.ledger, charging, owner)
            return
        if owner is not None:
            owner.book(booking, at_ms, meter=True)
        self._booked(meter.ledger, booking, charging, owner)
        payload: Payload = {"meterId": meter.charger.meter_id}
        if booking.interval is not None:
            payload["kwhConsumedAc"] = booking.interval
        if booking.register is not None:
            payload["kwhRegisterAc"] = booking.register
        payload["voltage"] = round(meter.charger.nominal_voltage * (1.0 + deviation), 1)
        payload["timestamp"] = self.timestamp(at_ms)
        self._deliver(out, fate, True, payload)

    def _deliver(self, out: Minute, fate: Fate, is_meter: bool, payload: Payload) -> None:
        if fate is ON_TIME:  # most readings: straight into this minute
            (out.meters if is_meter else out.vehicles).append(payload)
            return
        counts = self.counts
        if fate.jitter_ms:
            counts.jittered += 1
        delivery = out.index + fate.delay_minutes
        sends = [delivery]
        if fate.delay_minutes:
            counts.late += 1
        if fate.retry_after_minutes is not None:
            # The identical payload again: the engine must answer "duplicate".
            counts.retries += 1
            sends.append(delivery + fate.retry_after_minutes)
        for minute in sends:
            if minute <= out.index:
                (out.meters if is_meter else out.vehicles).append(payload)
            else:
                heapq.heappush(self.pending, (minute, next(self.order), is_meter, payload))
