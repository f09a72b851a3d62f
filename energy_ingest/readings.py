"""The readings every layer speaks: the two kinds, what happened to one, and what differs per kind.

Imports nothing of the engine: the writer, the ingest feature, the metrics, the simulator and the
bench all build on it, and the adapters of further device protocols will too.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import NamedTuple


class DeviceKind(StrEnum):
    """The two kinds of device that report: a smart meter (grid side) and a vehicle (battery)."""

    METER = "meter"
    VEHICLE = "vehicle"


class ValidMeterReading(NamedTuple):
    """A meter reading that passed validation: what the writer stores.

    Named tuples rather than the pydantic models (or frozen dataclasses): one is built for
    every reading of every batch, and a tuple costs a fraction of either.
    """

    meter_id: str
    kwh_consumed_ac: float | None
    """Energy since the previous reading (kWh); None when only the register was sent."""
    voltage: float
    timestamp: datetime
    kwh_register_ac: float | None = None
    """The cumulative import register (kWh since installation), when the meter sent it."""

    @property
    def device_id(self) -> str:
        return self.meter_id


class ValidVehicleReading(NamedTuple):
    """A vehicle reading that passed validation: what the writer stores."""

    vehicle_id: str
    soc: float
    kwh_delivered_dc: float | None
    """Energy since the previous reading (kWh); None when only the register was sent."""
    battery_temp: float
    timestamp: datetime
    kwh_register_dc: float | None = None
    """The battery side's cumulative register (kWh), when the vehicle sent it."""

    @property
    def device_id(self) -> str:
        return self.vehicle_id


Reading = ValidMeterReading | ValidVehicleReading
"""Either kind. Both are tuples of (device id, *values, timestamp, register), in that order: the
register comes last so that a reading without one is built as before."""


class Outcome(StrEnum):
    """What happened to one accepted reading."""

    STORED = "stored"
    DUPLICATE = "duplicate"
    CONFLICT = "conflict"


@dataclass(frozen=True, slots=True)
class ReadingKind:
    """What differs between the kinds of reading, as data rather than `isinstance` branches.

    A reading tuple is `(device id, *values, timestamp, register)`: `values` names the middle
    fields, in tuple order, by their attribute and by their JSON name.
    """

    kind: DeviceKind
    reading_type: type[Reading]
    id_attribute: str
    id_field: str
    """The id's JSON name on the wire."""
    value_attributes: tuple[str, ...]
    value_fields: tuple[str, ...]
    """The values' JSON names on the wire, in tuple order."""
    energy_field: str
    """The interval energy's JSON name (one of `value_fields`)."""
    register_field: str
    """The register's JSON name: a reading carries the interval energy, the register or both."""
    history_table: str
    live_table: str

    def values(self, reading: Reading) -> tuple[float | None, ...]:
        """The reading's values in tuple order (without id, timestamp and register)."""
        values: tuple[float | None, ...] = reading[1:-2]
        return values


METER = ReadingKind(
    kind=DeviceKind.METER,
    reading_type=ValidMeterReading,
    id_attribute="meter_id",
    id_field="meterId",
    value_attributes=("kwh_consumed_ac", "voltage"),
    value_fields=("kwhConsumedAc", "voltage"),
    energy_field="kwhConsumedAc",
    register_field="kwhRegisterAc",
    history_table="meter_readings",
    live_table="meter_live",
)
VEHICLE = ReadingKind(
    kind=DeviceKind.VEHICLE,
    reading_type=ValidVehicleReading,
    id_attribute="vehicle_id",
    id_field="vehicleId",
    value_attributes=("soc", "kwh_delivered_dc", "battery_temp"),
    value_fields=("soc", "kwhDeliveredDc", "batteryTemp"),
    energy_field="kwhDeliveredDc",
    register_field="kwhRegisterDc",
    history_table="vehicle_readings",
    live_table="vehicle_live",
)
KINDS: tuple[ReadingKind, ...] = (METER, VEHICLE)
BY_TYPE: dict[type[Reading], ReadingKind] = {kind.reading_type: kind for kind in KINDS}
BY_DEVICE_KIND: dict[DeviceKind, ReadingKind] = {kind.kind: kind for kind in KINDS}


def kind_of(reading: Reading) -> ReadingKind:
    """The descriptor of `reading`'s kind (one dict lookup by type)."""
    return BY_TYPE[type(reading)]
