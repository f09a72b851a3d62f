"""Deterministic fleet readings for the benchmark, and their HTTP request bodies."""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from itertools import zip_longest
from typing import Any, Literal

import orjson

from energy_ingest.readings import ValidMeterReading, ValidVehicleReading
from energy_ingest.wire import reading_body

Kind = Literal["meter", "vehicle"]
METER_BATCH_PATH = "/v1/ingest/meter/batch"
VEHICLE_BATCH_PATH = "/v1/ingest/vehicle/batch"
METER_PATH = "/v1/ingest/meter"
VEHICLE_PATH = "/v1/ingest/vehicle"


@dataclass(frozen=True, slots=True)
class Reading:
    """One generated reading; `values` is (kwh, voltage) for a meter, (soc, kwh, temp) else."""

    kind: Kind
    device_id: str
    at: datetime
    values: tuple[float, ...]

    def payload(self) -> dict[str, Any]:
        """The reading in the engine's wire format (camelCase, ISO 8601 timestamp with Z)."""
        if self.kind == "meter":
            kwh, voltage = self.values
            return reading_body(ValidMeterReading(self.device_id, kwh, voltage, self.at))
        soc, kwh, temp = self.values
        return reading_body(ValidVehicleReading(self.device_id, soc, kwh, temp, self.at))


def meter_id(device: int) -> str:
    """The id of meter number `device`."""
    return f"meter-{device:05d}"


def vehicle_id(device: int) -> str:
    """The id of vehicle number `device`."""
    return f"vehicle-{device:05d}"


@dataclass(frozen=True, slots=True)
class Timeline:
    """Readings minute by minute: per minute every meter, then every vehicle (a minute's burst)."""

    minutes: list[list[Reading]]

    def readings(self, first: int = 0, last: int | None = None) -> list[Reading]:
        """The readings of minutes [first, last), in arrival order."""
        return [reading for minute in self.minutes[first:last] for reading in minute]

    def interleaved(self, first: int = 0, last: int | None = None) -> list[Reading]:
        """The same minutes with meter and vehicle readings alternating (single-reading clients)."""
        result: list[Reading] = []
        for minute in self.minutes[first:last]:
            half = len(minute) // 2
            for meter, vehicle in zip_longest(minute[:half], minute[half:]):
                result.extend(reading for reading in (meter, vehicle) if reading is not None)
        return result


def generate_timeline(devices: int, minutes: int, seed: int, end: datetime) -> Timeline:
    """`minutes` whole minutes ending before `end`; values depend only on `seed`.

    Every timestamp is in the past and inside the engine's back-fill window. A vehicle charges
    from the meter of the same number: DC is AC times an efficiency between 80 and 96%.
    """
    rng = random.Random(seed)
    last = end.replace(second=0, microsecond=0) - timedelta(minutes=1)
    first = last - timedelta(minutes=minutes - 1)
    voltage = [rng.uniform(225.0, 240.0) for _ in range(devices)]
    charge_kw = [rng.choice((3.7, 7.4, 11.0)) for _ in range(devices)]
    efficiency = [rng.uniform(0.80, 0.96) for _ in range(devices)]
    capacity_kwh = [rng.choice((40.0, 60.0, 77.0, 100.0)) for _ in range(devices)]
    soc = [rng.uniform(10.0, 60.0) for _ in range(devices)]
    temp = [rng.uniform(18.0, 32.0) for _ in range(devices)]
    meter_ids = [meter_id(device) for device in range(devices)]
    vehicle_ids = [vehicle_id(device) for device in range(devices)]
    timeline: list[list[Reading]] = []
    for minute in range(minutes):
        at = first + timedelta(minutes=minute)
        readings: list[Reading] = []
        delivered: list[float] = []
        for device in range(devices):
            ac = charge_kw[device] / 60 * rng.uniform(0.95, 1.0)
            delivered.append(ac * efficiency[device])
            volts = voltage[device] + rng.uniform(-2.0, 2.0)
            readings.append(
                Reading("meter", meter_ids[device], at, (round(ac, 5), round(volts, 2)))
            )
        for device in range(devices):
            dc = delivered[device]
            soc[device] = min(100.0, soc[device] + dc / capacity_kwh[device] * 100)
            temp[device] = min(45.0, temp[device] + rng.uniform(-0.05, 0.1))
            readings.append(
                Reading(
                    "vehicle",
                    vehicle_ids[device],
                    at,
                    (round(soc[device], 3), round(dc, 5), round(temp[device], 2)),
                )
            )
        timeline.append(readings)
    return Timeline(timeline)


@dataclass(frozen=True, slots=True)
class Body:
    """One request body, encoded before any clock starts, and how many readings it carries."""

    path: str
    body: bytes
    readings: int


def batch_bodies(readings: Sequence[Reading], batch_size: int) -> list[Body]:
    """Each kind in arrival order, `batch_size` a request; meter and vehicle requests alternate."""
    per_kind: list[list[Body]] = []
    for kind, path in (("meter", METER_BATCH_PATH), ("vehicle", VEHICLE_BATCH_PATH)):
        of_kind = [reading for reading in readings if reading.kind == kind]
        per_kind.append(
            [
                Body(path, orjson.dumps([reading.payload() for reading in chunk]), len(chunk))
                for chunk in (
                    of_kind[start : start + batch_size]
                    for start in range(0, len(of_kind), batch_size)
                )
            ]
        )
    return [body for pair in zip_longest(*per_kind) for body in pair if body is not None]


def single_bodies(readings: Sequence[Reading]) -> list[Body]:
    """One request per reading, to /v1/ingest/meter or /v1/ingest/vehicle (the device pattern)."""
    return [
        Body(
            METER_PATH if reading.kind == "meter" else VEHICLE_PATH,
            orjson.dumps(reading.payload()),
            1,
        )
        for reading in readings
    ]
