"""`simulate --protocol mqtt`: the fleet publishes to a broker, the engine stores and judges."""

from __future__ import annotations

import asyncio
import io
import time
from datetime import timedelta
from pathlib import Path

import asyncpg
from rich.console import Console

from bench.broker import running_mosquitto
from energy_ingest.config import Settings
from energy_ingest.simulator.command import RunOptions, run
from energy_ingest.simulator.fleet import FleetSpec
from energy_ingest.simulator.mess import MessRates
from tests.support import start_engine


async def test_a_fleet_over_mqtt_is_stored_and_judged(
    settings: Settings, tmp_path: Path, db: asyncpg.Connection
) -> None:
    with running_mosquitto(tmp_path / "mosquitto") as broker:
        mqtt = settings.model_copy(
            update={"mqtt_url": broker.url, "mqtt_client_id": "simulator-test"}
        )
        async with start_engine(mqtt) as engine:
            deadline = time.monotonic() + 20
            while not (engine.state.mqtt is not None and engine.state.mqtt.connected):
                assert time.monotonic() < deadline, "the engine never subscribed"
                await asyncio.sleep(0.02)
            options = RunOptions(
                duration=timedelta(hours=1),
                spec=FleetSpec(vehicles=10, faulty_share=0.2, seed=5),
                mess=MessRates(silence=0.0, retry=0.0),
                mqtt_url=broker.url,
            )
            output = io.StringIO()
            result = await run(options, Console(file=output, width=160), http=engine.client)
            received = engine.state.metrics.mqtt_received._value.get()
    assert result.detection is not None
    assert result.detection.exact
    assert received > 0  # the readings came over MQTT, not HTTP
    stored = await db.fetchval(
        "SELECT (SELECT count(*) FROM vehicle_reading_history)"
        " + (SELECT count(*) FROM meter_reading_history)"
    )
    assert stored == result.simulation.counts.unique_delivered
    assert "over MQTT" in output.getvalue()
