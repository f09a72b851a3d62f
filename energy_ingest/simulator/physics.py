"""One vehicle's battery, minute by minute: parked, driving, or charging on its charger."""

from __future__ import annotations

import random
from enum import Enum

from energy_ingest.simulator.fleet import Charger, Vehicle

# How long each state lasts (minutes), drawn uniformly.
_PARKED_MINUTES = (20, 240)
_DRIVING_MINUTES = (20, 150)
_AC_SESSION_MINUTES = (60, 600)
_DC_SESSION_MINUTES = (15, 60)
_DRIVING_KW = (6.0, 18.0)
_LOWEST_SOC = 8.0  # a driver heads for a charger before the battery is empty
# Above these SoC levels the battery management system lowers the charging power.
_DC_TAPER_FROM = 80.0
_AC_TAPER_FROM = 95.0
# Battery temperature relaxes towards a target: faster when heating than when cooling down.
_HEATING_PER_MINUTE = 1 / 20
_COOLING_PER_MINUTE = 1 / 40
_CHARGING_HEAT_C_PER_KW = 0.12
_DRIVING_HEAT_C_PER_KW = 0.25


class Activity(Enum):
    """What a vehicle is doing during a minute."""

    PARKED = "parked"
    DRIVING = "driving"
    CHARGING = "charging"


def charging_power_kw(charger: Charger, vehicle: Vehicle, rng: random.Random) -> float:
    """DC power of a new session: the charger's and the car's limit, a little under the lower."""
    if charger.kind == "dc":
        limit = min(charger.max_power_kw, vehicle.max_dc_kw)
        return max(45.0, limit * rng.uniform(0.8, 1.0))
    return min(charger.max_power_kw, vehicle.max_ac_kw) * rng.uniform(0.92, 1.0)


def taper(kind: str, soc: float) -> float:
    """Share of the session's power the battery accepts at this state of charge."""
    if kind == "dc" and soc > _DC_TAPER_FROM:
        return max(0.15, (100.0 - soc) / (100.0 - _DC_TAPER_FROM))
    if kind == "ac" and soc > _AC_TAPER_FROM:
        return max(0.3, (100.0 - soc) / (100.0 - _AC_TAPER_FROM))
    return 1.0


class VehicleModel:
    """The state of one vehicle; `step()` advances it by one minute and returns the DC kWh.

    `charger` is the charger the vehicle uses now; AC drawn by its meter is DC / efficiency.
    """

    __slots__ = (
        "_forced_charge",
        "_minutes_left",
        "_power_kw",
        "_rng",
        "activity",
        "charger",
        "soc",
        "temperature",
        "vehicle",
    )

    def __init__(self, vehicle: Vehicle, rng: random.Random) -> None:
        self.vehicle = vehicle
        self.charger = vehicle.charger
        self._rng = rng
        self.soc = vehicle.initial_soc
        self.temperature = vehicle.ambient_temp
        self._power_kw = 0.0
        # Parked or on the road until the first session, which is then sure to happen.
        self.activity = Activity.DRIVING if rng.random() < 0.5 else Activity.PARKED
        self._minutes_left = vehicle.first_charge_minute
        self._forced_charge = True
        if self._minutes_left == 0:
            self._start(Activity.CHARGING)
        elif self.activity is Activity.DRIVING:
            self._power_kw = rng.uniform(*_DRIVING_KW)

    @property
    def charging(self) -> bool:
        """Whether the vehicle is plugged in and will draw energy this minute."""
        return self.activity is Activity.CHARGING

    def switch_charger(self, spare: Charger) -> None:
        """Unplug if charging and move to `spare`: this minute draws nothing, charging follows."""
        self.charger = spare
        self.activity = Activity.PARKED
        self._minutes_left = 1
        self._forced_charge = True

    def step(self) -> float:
        """Advance one minute; the kWh delivered to the battery (0 unless charging)."""
        delivered = 0.0
        heat_target = self.vehicle.ambient_temp
        if self.activity is Activity.CHARGING:
            delivered = self._charge_one_minute()
            heat_target += 1.5 + _CHARGING_HEAT_C_PER_KW * self._power_kw
        elif self.activity is Activity.DRIVING:
            used = self._power_kw / 60.0
            self.soc = max(_LOWEST_SOC - 1.0, self.soc - used / self.vehicle.capacity_kwh * 100.0)
            heat_target += 4.0 + _DRIVING_HEAT_C_PER_KW * self._power_kw
            if self.soc <= _LOWEST_SOC:
                self._minutes_left = 0
        rate = _HEATING_PER_MINUTE if heat_target > self.temperature else _COOLING_PER_MINUTE
        self.temperature += (heat_target - self.temperature) * rate
        self._minutes_left -= 1
        if self._minutes_left <= 0:
            self._next_activity()
        return delivered

    def _charge_one_minute(self) -> float:
        capacity = self.vehicle.capacity_kwh
        room = (100.0 - self.soc) / 100.0 * capacity
        energy = self._power_kw * taper(self.charger.kind, self.soc) / 60.0
        if energy >= room:
            # The battery is full: it takes what room is left and the session ends.
            self.soc = 100.0
            self._minutes_left = 0
            return room
        self.soc += energy / capacity * 100.0
        return energy

    def _start(self, activity: Activity) -> None:
        rng = self._rng
        self.activity = activity
        if activity is Activity.CHARGING:
            self._forced_charge = False
            self._power_kw = charging_power_kw(self.charger, self.vehicle, rng)
            bounds = _DC_SESSION_MINUTES if self.charger.kind == "dc" else _AC_SESSION_MINUTES
            self._minutes_left = rng.randint(*bounds)
        elif activity is Activity.DRIVING:
            self._power_kw = rng.uniform(*_DRIVING_KW)
            self._minutes_left = rng.randint(*_DRIVING_MINUTES)
        else:
            self._power_kw = 0.0
            self._minutes_left = rng.randint(*_PARKED_MINUTES)

    def _next_activity(self) -> None:
        rng = self._rng
        if self._forced_charge or (self.soc < rng.uniform(35.0, 65.0) and self.soc < 100.0):
            self._start(Activity.CHARGING)
        elif self.activity is Activity.PARKED and rng.random() < 0.7:
            self._start(Activity.DRIVING)
        else:
            self._start(Activity.PARKED)
