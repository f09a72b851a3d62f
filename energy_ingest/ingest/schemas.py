"""The ingest request models, the validation of a reading against them and the Limits, and the
answers of the ingest endpoints. The reading types are in `readings`, the wire rules in `wire`."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
)

from energy_ingest.config import Settings
from energy_ingest.errors import FieldProblem
from energy_ingest.readings import Reading, ValidMeterReading, ValidVehicleReading
from energy_ingest.wire import (
    DEVICE_ID_RULE,
    TIMESTAMP_RULE,
    DeviceId,
    Timestamp,
    capped,
    is_device_id,
    parse_timestamp_text,
    problems_from,
    shown_name,
)

_STRICT = ConfigDict(extra="forbid", strict=True, allow_inf_nan=False, frozen=True)


class MeterReading(BaseModel):
    """A smart meter's one-minute reading (grid side, AC)."""

    model_config = _STRICT

    meter_id: DeviceId = Field(alias="meterId", description="Meter id. " + DEVICE_ID_RULE)
    kwh_consumed_ac: float | None = Field(
        default=None,
        alias="kwhConsumedAc",
        description="kWh drawn from the grid since the meter's previous reading. This, "
        "kwhRegisterAc or both.",
    )
    voltage: float = Field(description="Supply voltage (V).")
    timestamp: Timestamp = Field(description="When the reading was taken. " + TIMESTAMP_RULE)
    kwh_register_ac: float | None = Field(
        default=None,
        alias="kwhRegisterAc",
        description="The meter's cumulative import register (kWh since installation). This, "
        "kwhConsumedAc or both.",
    )

    @property
    def device_id(self) -> str:
        return self.meter_id


class VehicleReading(BaseModel):
    """An electric vehicle's one-minute reading (battery side, DC)."""

    model_config = _STRICT

    vehicle_id: DeviceId = Field(alias="vehicleId", description="Vehicle id. " + DEVICE_ID_RULE)
    soc: float = Field(description="State of charge (%).")
    kwh_delivered_dc: float | None = Field(
        default=None,
        alias="kwhDeliveredDc",
        description="kWh stored in the battery since the vehicle's previous reading. This, "
        "kwhRegisterDc or both.",
    )
    battery_temp: float = Field(alias="batteryTemp", description="Battery temperature (°C).")
    timestamp: Timestamp = Field(description="When the reading was taken. " + TIMESTAMP_RULE)
    kwh_register_dc: float | None = Field(
        default=None,
        alias="kwhRegisterDc",
        description="The battery side's cumulative register (kWh delivered since "
        "installation). This, kwhDeliveredDc or both.",
    )

    @property
    def device_id(self) -> str:
        return self.vehicle_id


# --- validation -----------------------------------------------------------------------------

_NAMED_UNKNOWN_FIELDS = 9  # an item with too many fields names this many of the unknown ones


@dataclass(frozen=True, slots=True)
class Limits:
    """The bounds a reading must respect, taken from the settings once."""

    max_kwh: float
    max_register_kwh: float
    voltage: tuple[float, float]
    soc: tuple[float, float]
    battery_temp: tuple[float, float]
    max_clock_skew: timedelta
    max_backfill: timedelta

    @classmethod
    def from_settings(cls, settings: Settings) -> Limits:
        return cls(
            max_kwh=settings.max_kwh_per_reading,
            max_register_kwh=settings.max_register_kwh,
            voltage=(settings.min_voltage, settings.max_voltage),
            soc=(settings.min_soc, settings.max_soc),
            battery_temp=(settings.min_battery_temp, settings.max_battery_temp),
            max_clock_skew=settings.max_clock_skew,
            max_backfill=settings.max_backfill,
        )


def _check_range(
    problems: list[FieldProblem], field: str, value: float | None, low: float, high: float
) -> None:
    if value is None:
        return
    if not (low <= value <= high):
        problems.append(
            FieldProblem(field=field, rule="range", message=f"must be between {low:g} and {high:g}")
        )


def _check_energy(
    problems: list[FieldProblem], field: str, interval: float | None, register: float | None
) -> None:
    if interval is None and register is None:
        problems.append(_energy_required(field))


def _energy_required(field: str) -> FieldProblem:
    """The interval energy is required unless the reading sends its register instead: named as
    the seed names a missing field, so its clients see what they always saw."""
    register_field = "kwhRegisterAc" if field == "kwhConsumedAc" else "kwhRegisterDc"
    return FieldProblem(
        field=field,
        rule="required",
        message=f"is required (or {register_field}, the cumulative register, instead)",
    )


def _missing_energy(
    item: dict[str, Any], model: type[MeterReading] | type[VehicleReading]
) -> list[FieldProblem]:
    """The energy problem of an item whose other fields pydantic refused (both energies absent
    or null), so one answer names every field to fix."""
    interval, register = (
        ("kwhConsumedAc", "kwhRegisterAc")
        if model is MeterReading
        else ("kwhDeliveredDc", "kwhRegisterDc")
    )
    if item.get(interval) is None and item.get(register) is None:
        return [_energy_required(interval)]
    return []


def _check_timestamp(
    problems: list[FieldProblem], moment: datetime, limits: Limits, now: datetime
) -> None:
    if moment > now + limits.max_clock_skew:
        problems.append(
            FieldProblem(
                field="timestamp",
                rule="not_in_future",
                message=f"is more than {limits.max_clock_skew} in the future",
            )
        )
    elif moment < now - limits.max_backfill:
        problems.append(
            FieldProblem(
                field="timestamp",
                rule="max_backfill",
                message=f"is older than the back-fill window of {limits.max_backfill}",
            )
        )


def _bounds_problems(reading: Reading, limits: Limits, now: datetime) -> list[FieldProblem]:
    problems: list[FieldProblem] = []
    if isinstance(reading, ValidMeterReading):
        _check_energy(problems, "kwhConsumedAc", reading.kwh_consumed_ac, reading.kwh_register_ac)
        _check_range(problems, "kwhConsumedAc", reading.kwh_consumed_ac, 0.0, limits.max_kwh)
        _check_range(problems, "voltage", reading.voltage, *limits.voltage)
        register = ("kwhRegisterAc", reading.kwh_register_ac)
    else:
        _check_range(problems, "soc", reading.soc, *limits.soc)
        _check_energy(problems, "kwhDeliveredDc", reading.kwh_delivered_dc, reading.kwh_register_dc)
        _check_range(problems, "kwhDeliveredDc", reading.kwh_delivered_dc, 0.0, limits.max_kwh)
        _check_range(problems, "batteryTemp", reading.battery_temp, *limits.battery_temp)
        register = ("kwhRegisterDc", reading.kwh_register_dc)
    _check_range(problems, *register, 0.0, limits.max_register_kwh)
    _check_timestamp(problems, reading.timestamp, limits, now)
    return problems


def _kind_of(item: Any) -> type[MeterReading] | type[VehicleReading] | list[FieldProblem]:
    if not isinstance(item, dict):
        return [FieldProblem(field="body", rule="type", message="must be a JSON object")]
    has_meter, has_vehicle = "meterId" in item, "vehicleId" in item
    if has_meter == has_vehicle:
        which = "both" if has_meter else "neither"
        return [
            FieldProblem(
                field="meterId|vehicleId",
                rule="one_kind",
                message=f"a reading has exactly one of meterId (meter) or vehicleId (vehicle); "
                f"this one has {which}",
            )
        ]
    return MeterReading if has_meter else VehicleReading


def validate_reading(
    item: Any,
    limits: Limits,
    model: type[MeterReading] | type[VehicleReading] | None = None,
    now: datetime | None = None,
) -> Reading | list[FieldProblem]:
    """One reading, or every rule it breaks. `model=None` recognises the kind from the fields.

    `now` is the clock the timestamp window is checked against; a batch passes one for all its
    items (reading the clock per item was a tenth of the validation cost).
    """
    if model is None:
        kind = _kind_of(item)
        if isinstance(kind, list):
            return kind
        model = kind
    if not isinstance(item, dict):
        return [FieldProblem(field="body", rule="type", message="must be a JSON object")]
    known = _FIELDS[model]
    if len(item) > len(known):
        # Refused before any model sees it: pydantic reports every unknown field, one error
        # each, so a body of a million names cost seconds and an answer ten times its size.
        return _too_many_fields(item, known, model)
    now = now or datetime.now(UTC)
    plain = _accept_plainly_valid(item, limits, model, now)
    if plain is not None:
        return plain
    try:
        parsed = model.model_validate(item)
    except ValidationError as error:
        return capped([*problems_from(error), *_missing_energy(item, model)])
    reading: Reading
    if isinstance(parsed, MeterReading):
        reading = ValidMeterReading(
            parsed.meter_id,
            parsed.kwh_consumed_ac,
            parsed.voltage,
            parsed.timestamp,
            parsed.kwh_register_ac,
        )
    else:
        reading = ValidVehicleReading(
            parsed.vehicle_id,
            parsed.soc,
            parsed.kwh_delivered_dc,
            parsed.battery_temp,
            parsed.timestamp,
            parsed.kwh_register_dc,
        )
    problems = _bounds_problems(reading, limits, now)
    return problems or reading


def _too_many_fields(
    item: dict[Any, Any], known: frozenset[str], model: type[MeterReading] | type[VehicleReading]
) -> list[FieldProblem]:
    """One problem per unknown field, for the first few; the last counts the others."""
    kind = "meter" if model is MeterReading else "vehicle"
    problems: list[FieldProblem] = []
    for name in item:  # stops after a few: the cost does not grow with the item
        if name not in known:
            problems.append(
                FieldProblem(
                    field=shown_name(name), rule="known_field", message="is not a known field"
                )
            )
            if len(problems) == _NAMED_UNKNOWN_FIELDS:
                break
    unknown_count = len(item) - sum(1 for name in known if name in item)
    if unknown_count > len(problems):
        problems.append(
            FieldProblem(
                field="body",
                rule="known_field",
                message=f"and {unknown_count - len(problems)} more unknown fields: a {kind}"
                f" reading has only {', '.join(sorted(known))}",
            )
        )
    return problems


_METER_FIELDS = frozenset({"meterId", "kwhConsumedAc", "voltage", "timestamp", "kwhRegisterAc"})
_VEHICLE_FIELDS = frozenset(
    {"vehicleId", "soc", "kwhDeliveredDc", "batteryTemp", "timestamp", "kwhRegisterDc"}
)
# What a plainly valid reading carries: the interval energy, the register, or both.
# (interval only, register only); with both, a reading has every field of its kind.
_PLAIN_METER_FIELDS = (
    frozenset({"meterId", "kwhConsumedAc", "voltage", "timestamp"}),
    frozenset({"meterId", "kwhRegisterAc", "voltage", "timestamp"}),
)
_PLAIN_VEHICLE_FIELDS = (
    frozenset({"vehicleId", "soc", "kwhDeliveredDc", "batteryTemp", "timestamp"}),
    frozenset({"vehicleId", "soc", "kwhRegisterDc", "batteryTemp", "timestamp"}),
)
_FIELDS: dict[type[MeterReading] | type[VehicleReading], frozenset[str]] = {
    MeterReading: _METER_FIELDS,
    VehicleReading: _VEHICLE_FIELDS,
}


def _number(value: Any, low: float, high: float) -> float | None:
    # type() is, not isinstance: a bool is an int here too, and no number. NaN fails the range.
    if (type(value) is float or type(value) is int) and low <= value <= high:
        return float(value)
    return None


def _accept_plainly_valid(
    item: dict[str, Any],
    limits: Limits,
    model: type[MeterReading] | type[VehicleReading],
    now: datetime,
) -> Reading | None:
    """The reading when it keeps every rule in the plainest form (exactly the expected fields,
    JSON numbers in range, a well-formed id and timestamp); None sends it to the full
    validation, which names whatever is wrong.

    Nearly every reading of a healthy fleet is plainly valid, and pydantic's general
    validation was the largest single cost of batch ingest (profile of `make bench`).
    """
    # Per kind by hand, not through readings.ReadingKind: a descriptor-driven loop over the
    # fields (getattr, a range table) costs more per reading than this whole check.
    timestamp = item.get("timestamp")
    if type(timestamp) is not str:
        return None
    try:
        moment = parse_timestamp_text(timestamp)
    except ValueError:
        return None
    if not now - limits.max_backfill <= moment <= now + limits.max_clock_skew:
        return None
    if model is MeterReading:
        meter_id = item.get("meterId")
        kwh = _number(item.get("kwhConsumedAc"), 0.0, limits.max_kwh)
        voltage = _number(item.get("voltage"), *limits.voltage)
        if kwh is None:
            if voltage is None or type(meter_id) is not str:
                return None
            register = _number(item.get("kwhRegisterAc"), 0.0, limits.max_register_kwh)
            plain = item.keys() == _PLAIN_METER_FIELDS[1] and is_device_id(meter_id)
            if register is None or not plain:
                return None
            return ValidMeterReading(meter_id, None, voltage, moment, register)
        if voltage is None or type(meter_id) is not str:
            return None
        if item.keys() != _PLAIN_METER_FIELDS[0] or not is_device_id(meter_id):
            return _plain_meter_with_register(item, limits, meter_id, kwh, voltage, moment)
        return ValidMeterReading(meter_id, kwh, voltage, moment)
    vehicle_id = item.get("vehicleId")
    soc = _number(item.get("soc"), *limits.soc)
    kwh = _number(item.get("kwhDeliveredDc"), 0.0, limits.max_kwh)
    temperature = _number(item.get("batteryTemp"), *limits.battery_temp)
    if soc is None or temperature is None or type(vehicle_id) is not str:
        return None
    if kwh is None or item.keys() != _PLAIN_VEHICLE_FIELDS[0] or not is_device_id(vehicle_id):
        return _plain_vehicle_with_register(item, limits, vehicle_id, soc, kwh, temperature, moment)
    return ValidVehicleReading(vehicle_id, soc, kwh, temperature, moment)


def _plain_meter_with_register(
    item: dict[str, Any],
    limits: Limits,
    meter_id: str,
    kwh: float,
    voltage: float,
    moment: datetime,
) -> Reading | None:
    """A plainly valid meter reading that sends its register as well as its interval."""
    register = _number(item.get("kwhRegisterAc"), 0.0, limits.max_register_kwh)
    if register is None or item.keys() != _METER_FIELDS or not is_device_id(meter_id):
        return None
    return ValidMeterReading(meter_id, kwh, voltage, moment, register)


def _plain_vehicle_with_register(
    item: dict[str, Any],
    limits: Limits,
    vehicle_id: str,
    soc: float,
    kwh: float | None,
    temperature: float,
    moment: datetime,
) -> Reading | None:
    """A plainly valid vehicle reading that sends its register (and maybe its interval)."""
    register = _number(item.get("kwhRegisterDc"), 0.0, limits.max_register_kwh)
    if register is None or not is_device_id(vehicle_id):
        return None
    if item.keys() != (_PLAIN_VEHICLE_FIELDS[1] if kwh is None else _VEHICLE_FIELDS):
        return None
    return ValidVehicleReading(vehicle_id, soc, kwh, temperature, moment, register)


# --- answers ----------------------------------------------------------------------------------


class MeterIngested(BaseModel):
    """Answer to one meter reading: 201 stored, 200 an exact re-send of a stored one."""

    success: Literal[True]
    meter_id: str = Field(alias="meterId")
    status: Literal["stored", "duplicate"]


class VehicleIngested(BaseModel):
    """Answer to one vehicle reading: 201 stored, 200 an exact re-send of a stored one."""

    success: Literal[True]
    vehicle_id: str = Field(alias="vehicleId")
    status: Literal["stored", "duplicate"]


class BatchError(BaseModel):
    """One failed item of a batch."""

    index: int = Field(description="Position of the item in the submitted array (0-based).")
    reason: Literal["invalid", "conflict"]
    message: str
    fields: list[dict[str, str]] = Field(default_factory=list)


class BatchResult(BaseModel):
    """Answer to a batch: successful = stored + duplicates; every failure listed by index."""

    total: int
    successful: int
    failed: int
    stored: int
    duplicates: int
    errors: list[BatchError] = Field(
        description="The first failed items by index: at most 1,000 items and 1,000 problems."
    )
    errors_omitted: int = Field(
        default=0,
        alias="errorsOmitted",
        description="Failed items not listed in errors: an answer stays small however many "
        "items fail.",
    )
