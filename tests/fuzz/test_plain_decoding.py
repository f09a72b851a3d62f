"""The one-step decoding of plainly valid bodies accepts only what the general validation
accepts, and builds the very same readings; everything else is left to the general path."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
from hypothesis import event, given
from hypothesis import strategies as st

from energy_ingest.config import Settings
from energy_ingest.ingest.decoding import PlainDecoder
from energy_ingest.ingest.schemas import Limits, MeterReading, VehicleReading, validate_reading
from energy_ingest.readings import Reading, ValidMeterReading, ValidVehicleReading
from tests.factories import iso, meter_reading, minute, vehicle_reading
from tests.fuzz.contract import fuzz_settings
from tests.fuzz.strategies import (
    encode,
    hostile_ids,
    hostile_numbers,
    hostile_timestamps,
    ingest_bodies,
    json_keys,
    json_values,
    readings,
    valid_ids,
    valid_recent_timestamps,
)

LIMITS = Limits.from_settings(Settings())
DECODER = PlainDecoder(LIMITS)
MODELS: dict[str, type[MeterReading] | type[VehicleReading]] = {
    "meter": MeterReading,
    "vehicle": VehicleReading,
}
_FIELDS = {
    "meter": ("meterId", ("kwhConsumedAc", "voltage"), "kwhRegisterAc"),
    "vehicle": ("vehicleId", ("soc", "kwhDeliveredDc", "batteryTemp"), "kwhRegisterDc"),
}
_ENERGY = {"meter": "kwhConsumedAc", "vehicle": "kwhDeliveredDc"}
_RANGES = {
    "kwhConsumedAc": (0.0, 100.0),
    "voltage": (0.0, 2000.0),
    "soc": (0.0, 100.0),
    "kwhDeliveredDc": (0.0, 100.0),
    "batteryTemp": (-60.0, 100.0),
}


@st.composite
def register_readings(draw: st.DrawFn, kind: str) -> dict[str, Any]:
    """A reading with the interval energy, the register or both (or neither, or nulls), then
    perhaps broken in one place: the cases the register fields add to `readings`."""
    id_field, value_fields, register_field = _FIELDS[kind]
    reading: dict[str, Any] = {id_field: draw(valid_ids)}
    for name in value_fields:
        low, high = _RANGES[name]
        reading[name] = draw(st.floats(low, high) | st.integers(int(low), int(high)))
    reading["timestamp"] = draw(valid_recent_timestamps)
    register = st.floats(0.0, 1e9) | st.integers(0, 10**9) | st.none() | hostile_numbers
    shape = draw(st.sampled_from(["interval", "register", "both", "neither", "null-interval"]))
    if shape in ("register", "neither"):
        del reading[_ENERGY[kind]]
    if shape == "null-interval":
        reading[_ENERGY[kind]] = None
    if shape in ("register", "both", "null-interval"):
        reading[register_field] = draw(register)
    breakage = draw(st.sampled_from(["none", "none", "id", "time", "value", "add"]))
    if breakage == "id":
        reading[id_field] = draw(hostile_ids)
    elif breakage == "time":
        reading["timestamp"] = draw(hostile_timestamps)
    elif breakage == "value":
        reading[draw(st.sampled_from(sorted(reading)))] = draw(hostile_numbers | json_values)
    elif breakage == "add":
        reading[draw(json_keys)] = draw(json_values)
    return reading


def _same(decoded: Reading, validated: Any) -> bool:
    # repr, not ==: -0.0 == 0.0 and 1 == 1.0, but a reading must carry what validation built.
    return type(decoded) is type(validated) and repr(decoded) == repr(validated)


def _check(body: bytes, kind: str, now: datetime) -> bool:
    """The decoder's answer for `body` agrees with the general path's; whether it accepted."""
    model = MODELS[kind]
    batch = DECODER.batch(body, model, now)
    one = DECODER.one(body, model, now)
    for decoded in (batch, [one] if one is not None else None):
        if decoded is None:
            continue
        document = orjson.loads(body)  # what it accepted is JSON the general path parses
        items = document if isinstance(document, list) else [document]
        assert isinstance(document, list) == (decoded is batch)
        assert len(items) == len(decoded)
        for item, reading in zip(items, decoded, strict=True):
            validated = validate_reading(item, LIMITS, model, now)
            assert _same(reading, validated), (item, reading, validated)
    return batch is not None or one is not None


@fuzz_settings(max_examples=1500)
@given(st.sampled_from(["meter", "vehicle"]), st.data())
def test_what_the_one_step_decoding_accepts_the_general_validation_accepts_alike(
    kind: str, data: st.DataObject
) -> None:
    now = datetime.now(UTC)
    item = readings(kind) | register_readings(kind)
    body = data.draw(
        st.one_of(
            item.map(encode),
            st.lists(item, max_size=8).map(encode),
            ingest_bodies(kind, batch=True),
            ingest_bodies(kind, batch=False),
        )
    )
    event("one step" if _check(body, kind, now) else "left to the general path")


def test_plainly_valid_bodies_of_every_shape_take_the_one_step_path() -> None:
    now = datetime.now(UTC)
    at = minute(-3)
    meters = [
        meter_reading(at=at, meter_id="M-1"),
        {**meter_reading(at=at, meter_id="M-2"), "kwhRegisterAc": 1234.5},
        {"meterId": "M-3", "kwhRegisterAc": 0, "voltage": 230, "timestamp": iso(at)},
        {**meter_reading(at=at, meter_id="M-4"), "kwhConsumedAc": None, "kwhRegisterAc": 7},
    ]
    vehicles = [
        vehicle_reading(at=at, vehicle_id="V-1"),
        {**vehicle_reading(at=at, vehicle_id="V-2"), "kwhRegisterDc": 99.5},
    ]
    for kind, items in (("meter", meters), ("vehicle", vehicles)):
        assert _check(orjson.dumps(items), kind, now)
        for item in items:
            assert _check(orjson.dumps(item), kind, now)
    decoded = DECODER.batch(orjson.dumps(meters), MeterReading, now)
    assert decoded is not None
    assert decoded[2] == ValidMeterReading("M-3", None, 230.0, at.astimezone(UTC), 0.0)
    assert isinstance(
        DECODER.one(orjson.dumps(vehicles[0]), VehicleReading, now), ValidVehicleReading
    )
    assert DECODER.batch(b"[]", MeterReading, now) == []


def test_anything_else_is_left_to_the_general_validation() -> None:
    now = datetime.now(UTC)
    at = minute(-3)
    valid = meter_reading(at=at, meter_id="M-1")
    refused = [
        {**valid, "meterId": "M-1\n"},  # `$` would let this through
        {**valid, "meterId": "a" * 65},
        {**valid, "meterId": ""},
        {**valid, "kwhConsumedAc": None},  # neither energy
        {key: value for key, value in valid.items() if key != "kwhConsumedAc"},
        {**valid, "timestamp": iso(at).replace("Z", "")},  # naive
        {**valid, "timestamp": iso(now + timedelta(hours=1))},  # beyond the clock skew
        {**valid, "timestamp": iso(now - timedelta(days=40))},  # beyond the back-fill
        {**valid, "voltage": True},
        {**valid, "voltage": 2000.5},
        {**valid, "unknown": 1},
        {**valid, "vehicleId": "V-1"},
    ]
    for item in refused:
        assert DECODER.one(orjson.dumps(item), MeterReading, now) is None, item
        assert DECODER.batch(orjson.dumps([valid, item]), MeterReading, now) is None, item
    # An id holding the newline that joins the ids of a batch for their one check.
    assert DECODER.batch(orjson.dumps([{**valid, "meterId": "a\nb"}]), MeterReading, now) is None
    assert DECODER.one(orjson.dumps(valid), VehicleReading, now) is None
    assert DECODER.batch(orjson.dumps(valid), MeterReading, now) is None
    assert DECODER.one(orjson.dumps([valid]), MeterReading, now) is None
