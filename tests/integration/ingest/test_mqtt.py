"""MQTT ingest against a real Mosquitto (the test's own, on a free port) and a real PostgreSQL."""

from __future__ import annotations

import asyncio
import itertools
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import AsyncExitStack
from pathlib import Path

import asyncpg
import pytest

from bench.broker import Mosquitto, running_mosquitto
from energy_ingest.config import Settings
from tests.factories import meter_reading, minute, vehicle_reading
from tests.figures import RecordFigures
from tests.mqtt_devices import MqttDevice, mqtt_device
from tests.support import Engine, start_engine

_groups = itertools.count()


@pytest.fixture(scope="module")
def broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Mosquitto]:
    with running_mosquitto(tmp_path_factory.mktemp("mosquitto")) as running:
        yield running


def mqtt_settings(settings: Settings, broker: Mosquitto, group: str, client: str) -> Settings:
    return settings.model_copy(
        update={"mqtt_url": broker.url, "mqtt_group": group, "mqtt_client_id": client}
    )


async def wait_subscribed(engine: Engine, *, within: float = 20.0) -> None:
    deadline = time.monotonic() + within
    while not (engine.state.mqtt is not None and engine.state.mqtt.connected):
        assert time.monotonic() < deadline, "the engine never subscribed"
        await asyncio.sleep(0.02)


@pytest.fixture
def group() -> str:
    # A group of its own per test: sessions of earlier tests stay in theirs on the shared broker.
    return f"test-{next(_groups)}"


@pytest.fixture
async def mqtt_engine(settings: Settings, broker: Mosquitto, group: str) -> AsyncIterator[Engine]:
    async with start_engine(mqtt_settings(settings, broker, group, f"{group}-engine")) as engine:
        await wait_subscribed(engine)
        yield engine


@pytest.fixture
def device(broker: Mosquitto) -> Iterator[MqttDevice]:
    with mqtt_device(broker.url) as connected:
        yield connected


async def meter_rows(db: asyncpg.Connection) -> list[tuple[str, float]]:
    rows = await db.fetch(
        "SELECT meter_id, kwh_consumed_ac FROM meter_reading_history ORDER BY meter_id, ts"
    )
    return [(row[0], float(row[1])) for row in rows]


async def test_a_reading_is_stored_and_live_and_acknowledged(
    mqtt_engine: Engine, device: MqttDevice, db: asyncpg.Connection
) -> None:
    device.publish("meters/M-1/readings", meter_reading(meter_id="M-1", kwh=1.5), tag=1)
    device.publish("vehicles/V-1/readings", vehicle_reading(vehicle_id="V-1", soc=40.0), tag=2)
    await device.wait_acknowledged()
    # The broker acknowledges the device at once; the engine's PUBACK follows the commit.
    await _until(lambda: mqtt_engine.state.metrics.mqtt_acknowledged._value.get() == 2)
    assert await meter_rows(db) == [("M-1", 1.5)]
    live = await mqtt_engine.client.get("/v1/analytics/vehicle/V-1/live")
    assert live.status_code == 200
    assert live.json()["soc"] == 40.0
    ready = await mqtt_engine.client.get("/readyz")
    assert ready.json()["checks"]["mqtt"] is True
    metrics = (await mqtt_engine.client.get("/metrics")).text
    assert "eie_mqtt_messages_received_total 2.0" in metrics
    assert "eie_mqtt_messages_acknowledged_total 2.0" in metrics
    assert "eie_mqtt_ack_delay_seconds_count 2.0" in metrics


async def test_a_reading_of_another_device_than_the_topics_is_rejected_and_not_stored(
    mqtt_engine: Engine, device: MqttDevice, db: asyncpg.Connection
) -> None:
    device.publish("meters/M-1/readings", meter_reading(meter_id="M-2"), tag=1)
    # In an array, one foreign reading refuses the whole message: a forgery, not a bad reading.
    device.publish(
        "meters/M-1/readings",
        [meter_reading(meter_id="M-1"), meter_reading(meter_id="M-3", at=minute(-2))],
        tag=2,
    )
    await device.wait_rejections(2)
    single, array = sorted(device.rejections, key=lambda r: len(r[1]["errors"]))
    assert single[0] == "meters/M-1/readings/rejected"
    assert single[1]["error"] == "validation_failed"
    assert single[1]["errors"] == [
        {
            "field": "meterId",
            "rule": "topic_mismatch",
            "message": "must equal the device id of the topic (M-1)",
        }
    ]
    assert [error["field"] for error in array[1]["errors"]] == ["1.meterId"]
    assert await meter_rows(db) == []
    metrics = (await mqtt_engine.client.get("/metrics")).text
    assert 'eie_mqtt_readings_rejected_total{reason="topic_mismatch"} 2.0' in metrics
    assert "eie_mqtt_messages_acknowledged_total 2.0" in metrics


async def test_invalid_json_and_broken_rules_get_the_http_problem_json(
    mqtt_engine: Engine, device: MqttDevice, db: asyncpg.Connection
) -> None:
    bad = meter_reading(meter_id="M-1", kwhConsumedAc=-1)
    device.publish("meters/M-1/readings", b"{not json", tag=1)
    await device.wait_rejections(1)
    device.publish("meters/M-1/readings", bad, tag=2)
    await device.wait_rejections(2)
    assert device.rejections[0][1]["error"] == "malformed_json"
    over_http = await mqtt_engine.client.post("/v1/ingest/meter", json=bad)
    assert over_http.status_code == 422
    assert device.rejections[1] == ("meters/M-1/readings/rejected", over_http.json())
    assert await meter_rows(db) == []
    metrics = (await mqtt_engine.client.get("/metrics")).text
    assert 'eie_mqtt_readings_rejected_total{reason="malformed_json"} 1.0' in metrics
    assert 'eie_mqtt_readings_rejected_total{reason="range"} 1.0' in metrics


async def test_an_array_stores_its_valid_readings_and_answers_for_the_rest(
    mqtt_engine: Engine, device: MqttDevice, db: asyncpg.Connection
) -> None:
    readings = [
        meter_reading(meter_id="M-1", kwh=1.0, at=minute(-3)),
        meter_reading(meter_id="M-1", kwh=2.0, at=minute(-2), voltage=-5),
        meter_reading(meter_id="M-1", kwh=3.0, at=minute(-1)),
    ]
    device.publish("meters/M-1/readings", readings, tag=1)
    device.publish("meters/M-1/readings", [], tag=2)  # stores nothing, breaks no rule
    await device.wait_rejections(1)
    await _until(lambda: mqtt_engine.state.metrics.mqtt_acknowledged._value.get() == 2)
    answer = device.rejections[0][1]
    assert answer["total"] == 3
    assert answer["stored"] == 2
    assert answer["failed"] == 1
    assert [(e["index"], e["reason"]) for e in answer["errors"]] == [(1, "invalid")]
    assert await meter_rows(db) == [("M-1", 1.0), ("M-1", 3.0)]


async def test_a_conflict_is_rejected_and_a_redelivery_is_a_duplicate(
    mqtt_engine: Engine, device: MqttDevice, db: asyncpg.Connection
) -> None:
    at = minute(-1)
    device.publish("meters/M-1/readings", meter_reading(meter_id="M-1", kwh=1.0, at=at), tag=1)
    await _until(lambda: mqtt_engine.state.metrics.mqtt_acknowledged._value.get() == 1)
    # The same message again, as the broker re-sends one whose PUBACK a crash lost.
    device.publish("meters/M-1/readings", meter_reading(meter_id="M-1", kwh=1.0, at=at), tag=2)
    device.publish("meters/M-1/readings", meter_reading(meter_id="M-1", kwh=9.0, at=at), tag=3)
    await device.wait_rejections(1)
    await _until(lambda: mqtt_engine.state.metrics.mqtt_acknowledged._value.get() == 3)
    topic, answer = device.rejections[0]
    assert topic == "meters/M-1/readings/rejected"
    assert answer["error"] == "conflict"
    assert "meterId M-1 already has a different reading" in answer["message"]
    assert await meter_rows(db) == [("M-1", 1.0)]
    metrics = (await mqtt_engine.client.get("/metrics")).text
    assert 'eie_readings_total{kind="meter",outcome="duplicate"} 1.0' in metrics
    assert 'eie_mqtt_readings_rejected_total{reason="conflict"} 1.0' in metrics


async def test_mqtt_and_http_readings_share_the_writers_batches(
    mqtt_engine: Engine, device: MqttDevice, db: asyncpg.Connection
) -> None:
    for n in range(200):
        device.publish(f"meters/M-{n}/readings", meter_reading(meter_id=f"M-{n}"), tag=n)
    answers = await asyncio.gather(
        *(
            mqtt_engine.client.post("/v1/ingest/vehicle", json=vehicle_reading(vehicle_id=f"V-{n}"))
            for n in range(50)
        )
    )
    assert {answer.status_code for answer in answers} == {201}
    await _until(lambda: mqtt_engine.state.metrics.mqtt_acknowledged._value.get() == 200)
    stats = mqtt_engine.writer.stats
    assert stats.readings_committed == 250
    assert stats.batches_committed < 250  # readings of both paths were committed together
    assert await db.fetchval("SELECT count(*) FROM meter_reading_history") == 200


async def test_two_engines_sharing_the_subscription_store_each_reading_once(
    settings: Settings,
    broker: Mosquitto,
    group: str,
    device: MqttDevice,
    db: asyncpg.Connection,
    record_figures: RecordFigures,
) -> None:
    async with AsyncExitStack() as stack:
        engines = [
            await stack.enter_async_context(
                start_engine(mqtt_settings(settings, broker, group, f"{group}-engine-{n}"))
            )
            for n in range(2)
        ]
        for engine in engines:
            await wait_subscribed(engine)
        count = 400
        for n in range(count):
            device.publish(
                f"vehicles/V-{n % 40}/readings",
                vehicle_reading(vehicle_id=f"V-{n % 40}", at=minute(-1 - n // 40)),
                tag=n,
            )

        def acknowledged() -> list[int]:
            return [int(e.state.metrics.mqtt_acknowledged._value.get()) for e in engines]

        await _until(lambda: sum(acknowledged()) == count)
        split = acknowledged()
    record_figures({"engine_1_acknowledged": split[0], "engine_2_acknowledged": split[1]})
    assert all(split), f"one engine got nothing: {split}"
    assert await db.fetchval("SELECT count(*) FROM vehicle_reading_history") == count
    duplicates = await db.fetchval(
        "SELECT count(*) FROM (SELECT vehicle_id, ts FROM vehicle_reading_history"
        " GROUP BY 1, 2 HAVING count(*) > 1) AS twice"
    )
    assert duplicates == 0


async def _until(condition: object, *, within: float = 30.0) -> None:
    """Poll `condition` (a callable) until true; a liveness bound, never a measured threshold."""
    assert callable(condition)
    deadline = time.monotonic() + within
    while not condition():
        assert time.monotonic() < deadline, "condition never became true"
        await asyncio.sleep(0.02)


def test_the_broker_limits_file_ships_with_the_repository() -> None:
    from bench.broker import LIMITS

    text = LIMITS.read_text()
    assert "max_queued_messages 1000000" in text
    assert Path(LIMITS).parent.parent.joinpath("acl").exists()
