"""Every validation rule of a reading, each failure naming its field and rule."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from energy_ingest.config import Settings
from energy_ingest.errors import FieldProblem, ValidationFailed
from energy_ingest.ingest.schemas import Limits, MeterReading, VehicleReading, validate_reading
from energy_ingest.readings import ValidMeterReading, ValidVehicleReading
from energy_ingest.wire import capped, parse_timestamp
from tests.factories import iso, meter_reading, minute, vehicle_reading

LIMITS = Limits.from_settings(Settings())


def problems(
    item: Any, model: type[MeterReading] | type[VehicleReading] | None = None
) -> list[FieldProblem]:
    result = validate_reading(item, LIMITS, model)
    assert isinstance(result, list), f"expected a rejection, got {result!r}"
    return result


def rejected(
    item: Any, model: type[MeterReading] | type[VehicleReading] | None = None
) -> set[tuple[str, str]]:
    return {(problem.field, problem.rule) for problem in problems(item, model)}


def test_valid_readings_of_both_kinds_pass_and_are_normalised_to_utc() -> None:
    meter = validate_reading(
        meter_reading(at=minute(-2), meter_id="M-1.a_b:c"), LIMITS, MeterReading
    )
    assert isinstance(meter, ValidMeterReading)
    assert meter.meter_id == "M-1.a_b:c"
    assert meter.timestamp.tzinfo == UTC
    vehicle = validate_reading(vehicle_reading(), LIMITS, None)
    assert isinstance(vehicle, ValidVehicleReading)


def test_integers_are_numbers() -> None:
    item = meter_reading(kwh=2, voltage=230)
    assert isinstance(validate_reading(item, LIMITS, MeterReading), ValidMeterReading)


@pytest.mark.parametrize(
    "bad_id", ["", "x" * 65, "has space", "slash/", "ümlaut", "semi;colon", "quote'"]
)
def test_ids_must_be_1_to_64_safe_characters(bad_id: str) -> None:
    assert ("meterId", "pattern") in rejected(meter_reading(meter_id=bad_id), MeterReading)
    assert ("vehicleId", "pattern") in rejected(vehicle_reading(vehicle_id=bad_id), VehicleReading)


def test_an_id_of_64_characters_is_accepted() -> None:
    item = meter_reading(meter_id="x" * 64)
    assert isinstance(validate_reading(item, LIMITS, MeterReading), ValidMeterReading)


@pytest.mark.parametrize("value", [True, "12.5", None, [1], {"v": 1}])
def test_numbers_must_be_json_numbers(value: Any) -> None:
    assert ("voltage", "type") in rejected(meter_reading(voltage=value), MeterReading)


@pytest.mark.parametrize("value", [float("nan"), float("inf"), float("-inf")])
def test_numbers_must_be_finite(value: float) -> None:
    assert ("soc", "finite") in rejected(vehicle_reading(soc=value), VehicleReading)


@pytest.mark.parametrize(
    ("item", "field"),
    [
        (meter_reading(kwh=-0.001), "kwhConsumedAc"),
        (meter_reading(kwh=100.5), "kwhConsumedAc"),
        (meter_reading(voltage=-1), "voltage"),
        (meter_reading(voltage=2000.1), "voltage"),
        (vehicle_reading(soc=-0.1), "soc"),
        (vehicle_reading(soc=100.01), "soc"),
        (vehicle_reading(kwh=-1), "kwhDeliveredDc"),
        (vehicle_reading(temp=-60.5), "batteryTemp"),
        (vehicle_reading(temp=100.5), "batteryTemp"),
    ],
)
def test_values_outside_their_range_are_rejected(item: dict[str, Any], field: str) -> None:
    found = problems(item)
    assert [(p.field, p.rule) for p in found] == [(field, "range")]
    assert "between" in found[0].message


@pytest.mark.parametrize(
    "item",
    [
        meter_reading(kwh=0, voltage=0),
        meter_reading(kwh=100, voltage=2000),
        vehicle_reading(soc=0, kwh=0, temp=-60),
        vehicle_reading(soc=100, kwh=100, temp=100),
    ],
)
def test_range_bounds_are_inclusive(item: dict[str, Any]) -> None:
    assert not isinstance(validate_reading(item, LIMITS, None), list)


def test_bounds_are_settings() -> None:
    strict = Limits.from_settings(Settings(max_kwh_per_reading=5, max_voltage=250))
    result = validate_reading(meter_reading(kwh=6, voltage=260), strict, MeterReading)
    assert isinstance(result, list)
    assert {(p.field, p.rule) for p in result} == {("kwhConsumedAc", "range"), ("voltage", "range")}


@pytest.mark.parametrize(
    "text",
    [
        "2026-02-09T13:30:00",  # naive: ambiguous
        "2026-02-09",  # a date, not a date-time
        "13:30:00Z",
        "1770643800",  # epoch seconds as text
        "2026-02-09T13:30:00 UTC",
        "2026-02-30T13:30:00Z",  # no such day
        "yesterday",
    ],
)
def test_timestamps_need_iso_8601_with_an_offset(text: str) -> None:
    with pytest.raises(ValueError, match="ISO 8601"):
        parse_timestamp(text)


def test_a_numeric_timestamp_is_rejected() -> None:
    assert ("timestamp", "format") in rejected(meter_reading(timestamp=1770643800), MeterReading)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2026-02-09T13:30:00Z", datetime(2026, 2, 9, 13, 30, tzinfo=UTC)),
        ("2026-02-09T14:30:00+01:00", datetime(2026, 2, 9, 13, 30, tzinfo=UTC)),
        ("2026-02-09T13:30:00.123Z", datetime(2026, 2, 9, 13, 30, 0, 123000, tzinfo=UTC)),
        ("2026-02-09T13:30:00.123456789Z", datetime(2026, 2, 9, 13, 30, 0, 123456, tzinfo=UTC)),
        ("2026-02-09 08:30:00-0500", datetime(2026, 2, 9, 13, 30, tzinfo=UTC)),
    ],
)
def test_timestamps_with_offsets_are_read_as_utc(text: str, expected: datetime) -> None:
    assert parse_timestamp(text) == expected


def test_timestamps_beyond_the_clock_skew_are_rejected() -> None:
    future = datetime.now(UTC) + timedelta(minutes=6)
    assert ("timestamp", "not_in_future") in rejected(meter_reading(at=future), MeterReading)
    near = datetime.now(UTC) + timedelta(minutes=4)
    assert not isinstance(validate_reading(meter_reading(at=near), LIMITS, MeterReading), list)


def test_timestamps_older_than_the_backfill_window_are_rejected() -> None:
    old = datetime.now(UTC) - timedelta(days=30, minutes=1)
    assert ("timestamp", "max_backfill") in rejected(vehicle_reading(at=old), VehicleReading)


def test_unknown_fields_are_rejected() -> None:
    assert ("extra", "known_field") in rejected(meter_reading(extra=1), MeterReading)


def test_every_missing_field_is_named() -> None:
    assert rejected({"vehicleId": "v1"}, VehicleReading) == {
        ("soc", "required"),
        ("kwhDeliveredDc", "required"),
        ("batteryTemp", "required"),
        ("timestamp", "required"),
    }


def test_a_meter_field_on_the_vehicle_endpoint_is_unknown() -> None:
    item = vehicle_reading(voltage=230.0)
    assert ("voltage", "known_field") in rejected(item, VehicleReading)


@pytest.mark.parametrize("item", [[1], "text", 3, None])
def test_a_reading_must_be_an_object(item: Any) -> None:
    assert ("body", "type") in rejected(item, MeterReading)
    assert ("body", "type") in rejected(item, None)


def test_the_kind_is_recognised_from_the_id_field() -> None:
    assert isinstance(validate_reading(meter_reading(), LIMITS, None), ValidMeterReading)
    assert isinstance(validate_reading(vehicle_reading(), LIMITS, None), ValidVehicleReading)


def test_an_object_with_both_ids_or_neither_is_refused_with_a_reason() -> None:
    both = {**meter_reading(), **vehicle_reading()}
    [problem] = problems(both)
    assert (problem.field, problem.rule) == ("meterId|vehicleId", "one_kind")
    assert "both" in problem.message
    [problem] = problems({"timestamp": iso(minute(-1))})
    assert "neither" in problem.message


@pytest.mark.parametrize(
    "item",
    [
        meter_reading(kwh=0, voltage=2000),
        meter_reading(kwh=100, voltage=0.5, meter_id="x" * 64),
        vehicle_reading(soc=100, kwh=0, temp=-60),
        vehicle_reading(soc=0.1, kwh=99.9, temp=100, vehicle_id="a.b_c:d-e"),
    ],
)
def test_the_plain_fast_path_and_the_full_validation_agree(item: dict[str, Any]) -> None:
    from energy_ingest.ingest import schemas

    now = datetime.now(UTC)
    model = MeterReading if "meterId" in item else VehicleReading
    plain = schemas._accept_plainly_valid(item, LIMITS, model, now)
    assert plain is not None
    full = model.model_validate(item).model_dump()
    assert plain._asdict() == full


def test_an_item_with_more_fields_than_its_reading_names_nine_and_counts_the_rest() -> None:
    item = {**vehicle_reading(), **{f"extra{i}": i for i in range(100_000)}}
    found = problems(item)
    assert len(found) == 10
    assert [p.field for p in found[:9]] == [f"extra{i}" for i in range(9)]
    assert {p.rule for p in found} == {"known_field"}
    assert found[9].message.startswith("and 99991 more unknown fields")


def test_every_item_gets_at_most_ten_problems() -> None:
    # Five keys (no more than a reading has), every one of them wrong.
    assert len(problems({"a": 1, "b": 2, "c": 3, "d": 4, "e": 5}, VehicleReading)) <= 10
    many = [FieldProblem(field=f"f{i}", rule="r", message="m") for i in range(25)]
    kept = capped(many)
    assert len(kept) == 10
    assert kept[:9] == many[:9]
    assert kept[9].message == "and 16 more problems"
    assert capped(many[:10]) == many[:10]


def test_a_validation_failure_message_spells_out_ten_problems() -> None:
    many = [FieldProblem(field=f"f{i}", rule="r", message="m") for i in range(5_000)]
    failure = ValidationFailed(many)
    assert failure.message.count("f") == 10
    assert failure.message.endswith("and 4990 more (see errors)")
