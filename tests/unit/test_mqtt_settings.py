"""EIE_MQTT_* settings, the broker URL, topics and the simulator's --protocol option."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner
from pydantic import ValidationError

from energy_ingest.cli.simulate import simulate
from energy_ingest.config import Settings, parse_mqtt_url
from energy_ingest.ingest.mqtt import topic_device


def test_mqtt_is_off_unless_a_broker_is_given(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path)
    assert settings.mqtt_url is None
    assert settings.mqtt_group == "energy-ingest"


def test_a_broker_url_is_taken_apart() -> None:
    plain = parse_mqtt_url("mqtt://broker.example:1884")
    assert (plain.host, plain.port, plain.tls, plain.username) == (
        "broker.example",
        1884,
        False,
        None,
    )
    secure = parse_mqtt_url("mqtts://engine:p%40ss@broker.example")
    assert (secure.port, secure.tls, secure.username, secure.password) == (
        8883, True, "engine", "p@ss"
    )  # fmt: skip
    assert parse_mqtt_url("mqtt://127.0.0.1").port == 1883


@pytest.mark.parametrize(
    "url", ["http://broker:1883", "mqtt://", "mqtt://broker:99999", "mqtt://broker:1883/topic"]
)
def test_a_url_that_is_no_broker_is_refused(url: str, tmp_path: Path) -> None:
    with pytest.raises(ValidationError, match="mqtt_url"):
        Settings(data_dir=tmp_path, mqtt_url=url)


def test_mqtt_ingest_needs_one_worker(tmp_path: Path) -> None:
    with pytest.raises(ValidationError, match="workers=1"):
        Settings(data_dir=tmp_path, mqtt_url="mqtt://127.0.0.1:1883", workers=2)


def test_a_group_name_cannot_hold_topic_wildcards(tmp_path: Path) -> None:
    with pytest.raises(ValidationError, match="mqtt_group"):
        Settings(data_dir=tmp_path, mqtt_group="a/b")


def test_topics_name_the_kind_and_the_device() -> None:
    meter = topic_device("meters/M-1/readings")
    assert meter is not None
    assert meter[1:] == ("meterId", "M-1")
    vehicle = topic_device("vehicles/V-9/readings")
    assert vehicle is not None
    assert vehicle[1:] == ("vehicleId", "V-9")
    assert topic_device("meters/M-1/readings/rejected") is None
    assert topic_device("chargers/C-1/readings") is None


def test_simulate_over_mqtt_needs_a_broker_url() -> None:
    result = CliRunner().invoke(simulate, ["--backfill", "1h", "--protocol", "mqtt"])
    assert result.exit_code == 2
    assert "--mqtt-url" in result.output
