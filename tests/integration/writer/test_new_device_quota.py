"""A key may register only so many new devices a minute; known devices are never held back."""

from __future__ import annotations

import asyncpg

from energy_ingest.auth.keys import Scope
from energy_ingest.config import Settings
from energy_ingest.keys.service import create_key
from tests.factories import iso, meter_reading, minute, vehicle_reading
from tests.integration.telemetry.test_metrics import sample
from tests.support import start_engine


async def _bearer(db: asyncpg.Connection) -> dict[str, str]:
    _, token = await create_key(db, {Scope("ingest")})
    return {"Authorization": f"Bearer {token}"}


async def _devices(db: asyncpg.Connection) -> set[str]:
    rows = await db.fetch(
        "SELECT meter_id AS id FROM meters UNION ALL SELECT vehicle_id FROM vehicles"
    )
    return {row["id"] for row in rows}


async def test_past_its_quota_a_key_gets_429_and_nothing_of_the_request_is_stored(
    settings: Settings, db: asyncpg.Connection
) -> None:
    quota = settings.model_copy(update={"auth_enabled": True, "max_new_devices_per_minute": 3})
    fleet, other = await _bearer(db), await _bearer(db)
    async with start_engine(quota) as engine:
        client = engine.client
        first = [meter_reading(meter_id=f"M{i}", at=minute(-3)) for i in range(3)]
        answer = await client.post("/v1/ingest/meter/batch", json=first, headers=fleet)
        assert answer.status_code == 201
        # One known device and one new one: the whole request is refused.
        mixed = [meter_reading(meter_id="M0", at=minute(-2)), meter_reading(meter_id="M3")]
        refused = await client.post("/v1/ingest/meter/batch", json=mixed, headers=fleet)
        assert refused.status_code == 429
        assert refused.json()["error"] == "too_many_new_devices"
        assert int(refused.headers["retry-after"]) >= 1
        single = await client.post(
            "/v1/ingest/vehicle", json=vehicle_reading(vehicle_id="V1"), headers=fleet
        )
        assert single.status_code == 429
        assert "retry-after" in single.headers
        # Known devices still get through, and another key has a quota of its own.
        known = [meter_reading(meter_id=f"M{i}", at=minute(-1)) for i in range(3)]
        answer = await client.post("/v1/ingest/meter/batch", json=known, headers=fleet)
        assert answer.status_code == 201
        answer = await client.post(
            "/v1/ingest/vehicle", json=vehicle_reading(vehicle_id="V2"), headers=other
        )
        assert answer.status_code == 201
        text = (await client.get("/metrics")).text
    assert sample(text, "eie_readings_rejected_total", reason="too_many_new_devices") == 3
    assert await _devices(db) == {"M0", "M1", "M2", "V2"}
    assert await db.fetchval("SELECT count(*) FROM meter_readings") == 6
    assert await db.fetchval("SELECT count(*) FROM meter_live WHERE meter_id = 'M0'") == 1
    assert await db.fetchval("SELECT count(*) FROM vehicle_readings") == 1


async def test_with_authentication_off_all_requests_share_one_quota(settings: Settings) -> None:
    async with start_engine(
        settings.model_copy(update={"max_new_devices_per_minute": 2})
    ) as engine:
        client = engine.client
        for meter_id in ("A", "B"):
            answer = await client.post("/v1/ingest/meter", json=meter_reading(meter_id=meter_id))
            assert answer.status_code == 201
        answer = await client.post("/v1/ingest/meter", json=meter_reading(meter_id="C"))
        assert answer.status_code == 429


async def test_known_devices_cost_no_quota_after_a_restart_and_no_lookup_once_cached(
    settings: Settings,
) -> None:
    devices = [meter_reading(meter_id=f"M{i}", at=minute(-3)) for i in range(5)]
    async with start_engine(settings) as engine:
        answer = await engine.client.post("/v1/ingest/meter/batch", json=devices)
        assert answer.json()["stored"] == 5
    # A new process knows none of them, yet they are not new: a quota of one does not bite.
    async with start_engine(
        settings.model_copy(update={"max_new_devices_per_minute": 1})
    ) as engine:
        for offset in (-2, -1):
            batch = [{**reading, "timestamp": iso(minute(offset))} for reading in devices]
            answer = await engine.client.post("/v1/ingest/meter/batch", json=batch)
            assert answer.json()["stored"] == 5
        # The first batch looked them up once; the second found them all in the cache.
        assert engine.writer.stats.device_lookups == 1


async def test_the_default_quota_lets_a_whole_new_fleet_in_at_once(settings: Settings) -> None:
    # 20,000 chargers and their 20,000 vehicles, all new, in the same minute, from one key.
    assert settings.max_new_devices_per_minute >= 40_000
    async with start_engine(settings) as engine:
        for start in (0, 10_000):
            ids = range(start, start + 10_000)
            meters = [meter_reading(meter_id=f"M{i}") for i in ids]
            vehicles = [vehicle_reading(vehicle_id=f"V{i}") for i in ids]
            for path, batch in (("meter", meters), ("vehicle", vehicles)):
                answer = await engine.client.post(f"/v1/ingest/{path}/batch", json=batch)
                assert answer.status_code == 201
                assert answer.json()["stored"] == 10_000
        assert engine.writer.stats.rejected_new_devices == 0
