"""What one device sends for its energy, the faults of its register, and what the engine books.

A register device reports its cumulative register (kWh since installation); the register keeps
counting while the device is silent, so the reading after a gap carries the missed energy. Its
faults are injected here, each one so that the engine's booking rules must recognise it:

* reset: the register restarts from 0 or a lower base (the meter was rebooted or replaced) and
  counts from there: the reading books nothing, the energy since the previous one is lost;
* glitch: one reading reports 0, the next returns to the true level: the glitch books nothing
  and the next reading books everything since the one before the glitch;
* spike: one reading reports a value far over what the device could draw in the time since its
  previous reading (a rejected delta), then the next returns to the true level, as for a glitch.

A fault needs two clean readings before it (the engine judges a reading against the two before
it and the one after), so faults never touch; a reset needs a register of at least
`RESET_FROM_KWH`, so that the readings after it stay below the level before it whatever the
gap. A glitch to 0 needs a register above what the physical cap (1,000 kW by default) allows in
three hours, so that no reading after it could pass for a plausible climb from 0 (a rule that
judges a reading against the two before it would otherwise take the glitch for a base).

A glitch that turns out to be the device's last reading is a reset to the engine (nothing
follows to return to the true level); `DeviceLedger.open_glitch` says so at the end of a run.
"""

from __future__ import annotations

import random
from typing import Literal, NamedTuple

from energy_ingest.simulator.fleet import EnergyFields
from energy_ingest.simulator.mess import MessRates

Event = Literal["glitch", "reset", "rejected"]
Source = Literal["interval", "register"]
SPIKE_KWH = 1_000_000.0  # a 1 GWh jump: over any device's physical cap between two readings
RESET_FROM_KWH = 1_000.0
GLITCH_FROM_KWH = 3_000.0
_CLEAN_BEFORE_FAULT = 2
_MINUTE_MS = 60_000


class Booking(NamedTuple):
    """One delivered reading: the energy fields it carries and what the engine should book."""

    interval: float | None  # kWh since the previous reading, as sent
    register: float | None  # the register, as sent
    kwh: float  # booked
    source: Source
    event: Event | None
    gap_ms: int | None  # time since the device's previous reading, when that is a gap
    reconciliation: float | None  # interval − the register delta booked, when both were sent


class DeviceLedger:
    """One device's energy fields, from its own random stream: same seed, same faults.

    `take` is called for every reading taken, in time order, with the energy of the minute
    and the timestamp (epoch ms) of the reading, None when it is lost.
    """

    __slots__ = (
        "_anchor",
        "_clean",
        "_gap_ms",
        "_last_ms",
        "_level",
        "_rates",
        "_rng",
        "fields",
        "last_fault_ms",
        "open_glitch",
        "unbooked_charging",
    )

    def __init__(
        self,
        fields: EnergyFields,
        base: float,
        rates: MessRates,
        rng: random.Random,
        gap_seconds: float,
    ) -> None:
        self.fields = fields
        self._level = base
        self._rates = rates
        self._rng = rng
        self._gap_ms = gap_seconds * 1000.0
        self._last_ms: int | None = None
        # The register of the last reading that was not a glitch or spike: the next clean
        # reading books its own register minus this one.
        self._anchor: float | None = None
        self._clean = 0
        self.open_glitch = False
        self.last_fault_ms = 0
        # Readings taken while charging since the last one that booked (kept by the caller).
        self.unbooked_charging = 0

    def take(self, energy: float, at_ms: int | None) -> Booking | None:
        """The reading of a minute in which the device drew (or delivered) `energy` kWh."""
        interval = round(energy, 4)
        if self.fields == "interval":  # most devices: the gap check inlined
            if at_ms is None:
                return None
            last, self._last_ms = self._last_ms, at_ms
            gap = None if last is None or at_ms - last <= self._gap_ms else at_ms - last
            return Booking(interval, None, interval, "interval", None, gap, None)
        self._level += energy
        # Drawn for every reading taken, lost or not: the faults do not depend on the silence.
        draw = self._rng.random()
        if at_ms is None:
            return None
        gap = self._gap(at_ms)
        sent_interval = interval if self.fields == "both" else None
        level = round(self._level, 4)
        rates = self._rates
        eligible = self._clean >= _CLEAN_BEFORE_FAULT
        if eligible and draw < rates.reset and level >= RESET_FROM_KWH:
            base = 0.0 if self._rng.random() < 0.5 else self._rng.uniform(0.0, 0.2 * level)
            # The register restarted at the start of the minute and has counted this minute.
            self._level = base + energy
            register = round(self._level, 4)
            self._fault(at_ms)
            self._anchor = register
            return Booking(sent_interval, register, 0.0, "register", "reset", gap, None)
        draw -= rates.reset
        if eligible and draw < rates.glitch and level >= GLITCH_FROM_KWH:
            self._fault(at_ms)
            self.open_glitch = True
            return Booking(sent_interval, 0.0, 0.0, "register", "glitch", gap, None)
        draw -= rates.glitch
        if eligible and draw < rates.spike:
            self._fault(at_ms)
            register = round(self._level + SPIKE_KWH, 4)
            return Booking(sent_interval, register, 0.0, "register", "rejected", gap, None)
        self._clean += 1
        self.open_glitch = False
        anchor, self._anchor = self._anchor, level
        if anchor is None:
            # The first register: the engine has nothing to subtract it from.
            if sent_interval is None:
                return Booking(None, level, 0.0, "register", None, gap, None)
            return Booking(sent_interval, level, sent_interval, "interval", None, gap, None)
        delta = round(level - anchor, 4)
        reconciliation = None if sent_interval is None else round(sent_interval - delta, 4)
        return Booking(sent_interval, level, delta, "register", None, gap, reconciliation)

    def _fault(self, at_ms: int) -> None:
        self._clean = 0
        self.open_glitch = False
        self.last_fault_ms = at_ms

    def _gap(self, at_ms: int) -> int | None:
        last, self._last_ms = self._last_ms, at_ms
        if last is None or at_ms - last <= self._gap_ms:
            return None
        return at_ms - last


def gap_minutes(gap_ms: int) -> float:
    """The minutes a gap of `gap_ms` between two readings misses (a reading a minute is none)."""
    return (gap_ms - _MINUTE_MS) / _MINUTE_MS
