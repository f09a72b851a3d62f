"""The simulator's meters as OCPP charge points against `energy-ingest serve --ocpp` on a real
port: every meter reading goes over its charge point's WebSocket, answered after its commit,
and the engine still flags exactly the faulty chargers."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import asyncpg
import httpx
import pytest

from energy_ingest.simulator.client import EngineClient
from energy_ingest.simulator.detection import evaluate
from energy_ingest.simulator.fleet import FleetSpec, build_fleet
from energy_ingest.simulator.mess import MessRates
from energy_ingest.simulator.ocpp import OcppEngineClient
from energy_ingest.simulator.runner import backfill, realtime, realtime_start
from energy_ingest.simulator.simulation import FleetSimulation, minute_floor
from tests.faults.processes import ocpp_engine
from tests.ocpp_chargers import metric

pytestmark = pytest.mark.timeout(120)


@pytest.mark.parametrize("fields", ["interval", "register"])
async def test_a_fleet_of_ocpp_chargers_back_fills_and_is_judged_exactly(
    database_url: str, fields: str
) -> None:
    spec = FleetSpec(
        vehicles=12, faulty_share=0.25, change_share=0.25, seed=7, energy_fields=fields,  # type: ignore[arg-type]
        connector_meters=True,
    )  # fmt: skip
    start = minute_floor(datetime.now(UTC)) - timedelta(minutes=150)
    simulation = FleetSimulation(build_fleet(spec, 150), MessRates(silence=0.0), start)
    async with ocpp_engine(database_url) as engine:
        key = engine.key_file.read_text().strip()
        async with httpx.AsyncClient(base_url=engine.base_url, headers=engine.headers) as http:
            chargers = OcppEngineClient(http, engine.base_url, key)
            try:
                tally = await backfill(chargers, simulation, batch_size=1_000, concurrency=3)
            finally:
                await chargers.close()
            assert tally.rejected == 0, tally.messages
            assert tally.sent == simulation.counts.deliveries
            # One charge point per meter (spares included), each booted once.
            assert chargers.connections == len(simulation.fleet.chargers)
            detection = await evaluate(EngineClient(http), simulation)
        assert await metric(engine, "eie_ocpp_messages", action="BootNotification") == len(
            simulation.fleet.chargers
        )
        assert await metric(engine, "eie_ocpp_violations") == 0
    assert all(verdict.judged for verdict in detection.verdicts)
    assert {v.vehicle_id for v in detection.verdicts if v.flagged} == (
        simulation.fleet.faulty_vehicle_ids
    )
    assert detection.exact


async def test_real_time_meter_values_one_a_minute(database_url: str) -> None:
    spec = FleetSpec(vehicles=6, faulty_share=0.0, change_share=0.0, seed=2, connector_meters=True)
    minutes = 20
    start = realtime_start(datetime.now(UTC), minutes, speedup=240)
    simulation = FleetSimulation(build_fleet(spec, minutes), MessRates(silence=0.0), start)
    async with ocpp_engine(database_url) as engine:
        key = engine.key_file.read_text().strip()
        async with httpx.AsyncClient(base_url=engine.base_url, headers=engine.headers) as http:
            chargers = OcppEngineClient(http, engine.base_url, key)
            try:
                tally = await realtime(chargers, simulation, speedup=240, concurrency=8)
            finally:
                await chargers.close()
        assert tally.rejected == 0, tally.messages
        assert await metric(engine, "eie_ocpp_readings", outcome="invalid") == 0
        stored = await metric(engine, "eie_ocpp_readings", outcome="stored")
    connection = await asyncpg.connect(database_url)
    try:
        meters = await connection.fetchval(
            "SELECT count(DISTINCT meter_id) FROM meter_reading_history WHERE meter_id LIKE '%:1'"
        )
        rows = await connection.fetchval("SELECT count(*) FROM meter_reading_history")
    finally:
        await connection.close()
    assert meters == len(simulation.fleet.chargers)
    assert rows == stored
