"""The simulated fleet: vehicles, the charger (meter) feeding each, faulty chargers, changes."""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Literal

ChargerKind = Literal["ac", "dc"]
EnergyFields = Literal["interval", "register", "both"]
"""What a device reports: the energy since its last reading, its cumulative register, or both."""
FieldsChoice = Literal["interval", "register", "both", "mixed"]
"""A fleet's devices all report the same fields, or (`mixed`) each draws its own."""
FIELDS_CHOICES: tuple[FieldsChoice, ...] = ("interval", "register", "both", "mixed")

HEALTHY_EFFICIENCY = (0.88, 0.95)
FAULTY_EFFICIENCY = (0.70, 0.82)
# Charger ratings (kW) and how common each is; DC fast chargers are rarer than level 2.
_AC_RATINGS = ((7.4, 5), (11.0, 4), (22.0, 2))
_DC_RATINGS = ((50.0, 3), (100.0, 2), (150.0, 2))
_BATTERIES_KWH = (40.0, 58.0, 64.0, 77.0, 82.0, 100.0)
_ONBOARD_AC_KW = (7.4, 11.0, 22.0)
_MAX_DC_KW = (50.0, 100.0, 150.0, 200.0)
# A first charging session starts this early at the latest, so even a short run sees every
# vehicle charge at least once (a vehicle that never charges cannot be judged).
_FIRST_CHARGE_WITHIN_MINUTES = 6 * 60
# A register starts at the reading of a device installed some time ago (kWh since installation).
REGISTER_BASE_KWH = (1_000.0, 50_000.0)
# What an idle charger draws from the grid (W): a wall box's electronics and contactor a few
# W, a DC fast charger's power stage, cooling and screen tens of W. At least 6 W, so that a
# minute's draw shows in a reading's 0.1 Wh.
STANDBY_W: dict[ChargerKind, tuple[float, float]] = {"ac": (6.0, 15.0), "dc": (20.0, 60.0)}


@dataclass(frozen=True, slots=True)
class FleetSpec:
    """What fleet to draw; the same spec always draws the same fleet."""

    vehicles: int = 100
    faulty_share: float = 0.02
    change_share: float = 0.05
    dc_fast_share: float = 0.2
    prefix: str = "sim"
    seed: int = 1
    energy_fields: FieldsChoice = "interval"
    register_share: float = 0.5  # `mixed`: share of devices with a register (half send both)
    standby: bool = False  # idle chargers draw standby power (STANDBY_W)
    connector_meters: bool = False  # OCPP: each meter is connector 1 of a charge point

    def __post_init__(self) -> None:
        if self.energy_fields not in FIELDS_CHOICES:
            raise ValueError(f"energy fields are one of {', '.join(FIELDS_CHOICES)}")
        if not 0.0 <= self.register_share <= 1.0:
            raise ValueError("the register share must be between 0 and 1")


@dataclass(frozen=True, slots=True)
class Charger:
    """A charger and the smart meter in front of it (the meter id names both)."""

    meter_id: str
    kind: ChargerKind
    max_power_kw: float
    efficiency: float
    faulty: bool
    nominal_voltage: float
    fields: EnergyFields = "interval"
    register_base: float = 0.0  # kWh on the register at the start of the run
    standby_kw: float = 0.0  # drawn while no vehicle charges on it

    @property
    def has_register(self) -> bool:
        """Whether the meter reports its cumulative import register."""
        return self.fields != "interval"


@dataclass(frozen=True, slots=True)
class ChargerChange:
    """At minute `at_minute` the vehicle is unplugged (if charging) and moved to `spare`."""

    at_minute: int
    spare: Charger


@dataclass(frozen=True, slots=True)
class Vehicle:
    """One electric vehicle, its battery, and the charger it starts on."""

    vehicle_id: str
    capacity_kwh: float
    max_ac_kw: float
    max_dc_kw: float
    initial_soc: float
    ambient_temp: float
    charger: Charger
    first_charge_minute: int
    change: ChargerChange | None
    fields: EnergyFields = "interval"
    register_base: float = 0.0  # kWh delivered to the battery since the car was built

    @property
    def has_register(self) -> bool:
        """Whether the vehicle reports its cumulative DC register."""
        return self.fields != "interval"

    @property
    def faulty(self) -> bool:
        """Fed by a faulty charger for the whole run (a spare has its original's health)."""
        return self.charger.faulty


@dataclass(frozen=True, slots=True)
class Fleet:
    """The drawn fleet over a run of `minutes` minutes."""

    spec: FleetSpec
    minutes: int
    vehicles: tuple[Vehicle, ...]

    @property
    def chargers(self) -> tuple[Charger, ...]:
        """Every meter: one per vehicle, then the spares vehicles move to."""
        primary = tuple(vehicle.charger for vehicle in self.vehicles)
        spares = tuple(v.change.spare for v in self.vehicles if v.change is not None)
        return primary + spares

    @property
    def faulty_vehicle_ids(self) -> frozenset[str]:
        """Vehicles fed by a faulty charger: the ground truth the engine should find."""
        return frozenset(vehicle.vehicle_id for vehicle in self.vehicles if vehicle.faulty)


def share_count(share: float, population: int) -> int:
    """How many of `population` a share picks: rounded, but at least one when share > 0."""
    if share <= 0 or population <= 0:
        return 0
    return min(population, max(1, round(share * population)))


def _weighted(rng: random.Random, choices: tuple[tuple[float, int], ...]) -> float:
    values = [value for value, _ in choices]
    weights = [weight for _, weight in choices]
    return rng.choices(values, weights)[0]


def _energy_rng(spec: FleetSpec, device_id: str) -> random.Random:
    # A stream of its own: the fields and standby of a device never change the rest of it, so a
    # seed draws the same chargers and vehicles whatever the energy options.
    return random.Random(f"{spec.seed}/energy/{device_id}")


def _fields(spec: FleetSpec, rng: random.Random) -> tuple[EnergyFields, float]:
    """What the device reports, and its register's reading at the start of the run."""
    fields: EnergyFields
    if spec.energy_fields == "mixed":
        has_register = rng.random() < spec.register_share
        both = rng.random() < 0.5
        fields = ("both" if both else "register") if has_register else "interval"
    else:
        fields = spec.energy_fields
    base = round(rng.uniform(*REGISTER_BASE_KWH), 4) if fields != "interval" else 0.0
    return fields, base


def _charger(rng: random.Random, meter_id: str, *, faulty: bool, spec: FleetSpec) -> Charger:
    kind: ChargerKind = "dc" if rng.random() < spec.dc_fast_share else "ac"
    rating = _weighted(rng, _DC_RATINGS if kind == "dc" else _AC_RATINGS)
    low, high = FAULTY_EFFICIENCY if faulty else HEALTHY_EFFICIENCY
    # Single-phase 230 V feeds a 7.4 kW wall box; bigger chargers sit on three-phase 400 V.
    voltage = 230.0 if rating < 10 else 400.0
    energy = _energy_rng(spec, meter_id)
    fields, base = _fields(spec, energy)
    standby_kw = round(energy.uniform(*STANDBY_W[kind]) / 1000.0, 6) if spec.standby else 0.0
    return Charger(
        meter_id=meter_id,
        kind=kind,
        max_power_kw=rating,
        efficiency=round(rng.uniform(low, high), 4),
        faulty=faulty,
        nominal_voltage=voltage,
        fields=fields,
        register_base=base,
        standby_kw=standby_kw,
    )


def _id_width(spec: FleetSpec) -> int:
    # Room for the spares numbered after the vehicles' own meters.
    return max(4, len(str(spec.vehicles * 2)))


def vehicle_id(spec: FleetSpec, number: int) -> str:
    """The id of the fleet's vehicle `number` (1-based)."""
    return f"{spec.prefix}-v{number:0{_id_width(spec)}d}"


def meter_id(spec: FleetSpec, number: int) -> str:
    """The id of meter `number`: 1…N feed vehicles 1…N at the start, spares come after. With
    `connector_meters` (OCPP) it is connector 1 of the charge point PREFIX-m0001: `…:1`."""
    meter = f"{spec.prefix}-m{number:0{_id_width(spec)}d}"
    return f"{meter}:1" if spec.connector_meters else meter


def build_fleet(spec: FleetSpec, minutes: int) -> Fleet:
    """Draw the fleet for a run of `minutes`; deterministic in `spec` (seed included)."""
    if spec.vehicles < 1:
        raise ValueError("a fleet has at least one vehicle")
    if minutes < 1:
        raise ValueError("a run lasts at least one minute")
    rng = random.Random(f"{spec.seed}/fleet")
    faulty = set(rng.sample(range(spec.vehicles), share_count(spec.faulty_share, spec.vehicles)))
    movers = sorted(rng.sample(range(spec.vehicles), share_count(spec.change_share, spec.vehicles)))
    spare_numbers = {index: spec.vehicles + n for n, index in enumerate(movers)}
    vehicles = []
    for index in range(spec.vehicles):
        number = index + 1
        # Each vehicle draws from its own stream, so it is the same vehicle whatever the size
        # of the fleet around it.
        own = random.Random(f"{spec.seed}/vehicle/{number}")
        is_faulty = index in faulty
        charger = _charger(own, meter_id(spec, number), faulty=is_faulty, spec=spec)
        change = None
        if index in spare_numbers:
            # The spare has the health of the charger it replaces: a vehicle moved from a
            # faulty to a healthy charger mid-window would have no single right answer.
            spare = _charger(
                own,
                meter_id(spec, spare_numbers[index] + 1),
                faulty=is_faulty,
                spec=spec,
            )
            change = ChargerChange(
                at_minute=own.randint(minutes // 3, max(minutes // 3, 2 * minutes // 3)),
                spare=spare,
            )
        fields, base = _fields(spec, _energy_rng(spec, vehicle_id(spec, number)))
        vehicles.append(
            Vehicle(
                vehicle_id=vehicle_id(spec, number),
                capacity_kwh=own.choice(_BATTERIES_KWH),
                max_ac_kw=own.choice(_ONBOARD_AC_KW),
                max_dc_kw=own.choice(_MAX_DC_KW),
                initial_soc=round(own.uniform(15.0, 65.0), 2),
                ambient_temp=round(own.uniform(8.0, 24.0), 1),
                charger=charger,
                first_charge_minute=own.randint(
                    0, max(0, min(minutes // 2, _FIRST_CHARGE_WITHIN_MINUTES))
                ),
                change=change,
                fields=fields,
                register_base=base,
            )
        )
    return Fleet(spec=spec, minutes=minutes, vehicles=tuple(vehicles))
