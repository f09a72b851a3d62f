"""The simulator's OCPP frames: a meter reading's values arrive as the engine reads them."""

from __future__ import annotations

from datetime import timedelta

import click
import pytest

from energy_ingest.ingest.ocpp.values import reading_body, sampled
from energy_ingest.simulator.fleet import FleetSpec, meter_id
from energy_ingest.simulator.ocpp import charge_point_of, meter_values, ocpp_base_url
from energy_ingest.simulator.options import FLEET_DEFAULTS, run_options


def test_connector_meters_are_connector_1_of_a_charge_point() -> None:
    spec = FleetSpec(prefix="sim", connector_meters=True)
    assert meter_id(spec, 7) == "sim-m0007:1"
    assert charge_point_of(meter_id(spec, 7)) == "sim-m0007"
    assert meter_id(FleetSpec(prefix="sim"), 7) == "sim-m0007"


def test_the_engine_reads_back_exactly_the_simulated_values() -> None:
    item = {
        "meterId": "sim-m0001:1",
        "kwhConsumedAc": 0.1 + 0.2,
        "kwhRegisterAc": 12345.678901234567,
        "voltage": 229.93333333333334,
        "timestamp": "2026-12-05T10:00:00.000Z",
    }
    (element,) = meter_values([item])["meterValue"]
    snake = {
        "timestamp": element["timestamp"],
        "sampled_value": element["sampledValue"],
    }
    found = sampled(snake)
    assert not found.violations
    assert not found.ignored
    assert found.voltage is not None
    body = reading_body("sim-m0001:1", found, found.voltage, found.timestamp)
    assert body == item


def test_the_ocpp_url_is_the_engines_own_port() -> None:
    assert ocpp_base_url("http://127.0.0.1:8000") == "ws://127.0.0.1:8000/ocpp"
    assert ocpp_base_url("https://engine.example/") == "wss://engine.example/ocpp"


def test_protocol_ocpp_makes_every_meter_a_charge_points_connector() -> None:
    options = {**FLEET_DEFAULTS, "prefix": "sim", "protocol": "ocpp"}
    run = run_options(options, duration=timedelta(hours=1), realtime=False, url="http://x/")
    assert run.ocpp
    assert run.spec.connector_meters
    plain = run_options(
        {**FLEET_DEFAULTS, "prefix": "sim"}, duration=timedelta(hours=1), realtime=False, url=""
    )
    assert not plain.ocpp
    assert not plain.spec.connector_meters


def test_a_charge_point_prefix_has_no_colon() -> None:
    options = {**FLEET_DEFAULTS, "prefix": "a:b", "protocol": "ocpp"}
    with pytest.raises(click.BadParameter, match="no ':'"):
        run_options(options, duration=timedelta(hours=1), realtime=False, url="")
