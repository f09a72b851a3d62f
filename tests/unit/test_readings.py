"""The reading descriptors and a reading's wire body."""

from datetime import UTC, datetime

from energy_ingest.readings import (
    METER,
    VEHICLE,
    DeviceKind,
    ValidMeterReading,
    ValidVehicleReading,
    kind_of,
)
from energy_ingest.wire import reading_body

AT = datetime(2026, 2, 9, 13, 30, tzinfo=UTC)


def test_each_reading_type_has_its_descriptor() -> None:
    meter = ValidMeterReading("M1", 1.5, 230.0, AT)
    vehicle = ValidVehicleReading("V1", 80.0, 1.2, 25.0, AT)
    assert kind_of(meter) is METER
    assert kind_of(vehicle) is VEHICLE
    assert METER.kind is DeviceKind.METER
    assert METER.values(meter) == (1.5, 230.0)
    assert VEHICLE.values(vehicle) == (80.0, 1.2, 25.0)
    assert tuple(getattr(vehicle, name) for name in VEHICLE.value_attributes) == (80.0, 1.2, 25.0)


def test_reading_body_is_what_a_device_sends() -> None:
    assert reading_body(ValidMeterReading("M1", 1.5, 230.0, AT)) == {
        "meterId": "M1",
        "kwhConsumedAc": 1.5,
        "voltage": 230.0,
        "timestamp": "2026-02-09T13:30:00.000Z",
    }
    assert reading_body(ValidVehicleReading("V1", 80.0, 1.2, 25.0, AT)) == {
        "vehicleId": "V1",
        "soc": 80.0,
        "kwhDeliveredDc": 1.2,
        "batteryTemp": 25.0,
        "timestamp": "2026-02-09T13:30:00.000Z",
    }
