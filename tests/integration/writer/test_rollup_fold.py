"""The rollup folder: answers never wait for it, folds are exact under load, one at a time."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import asyncpg
import httpx

from energy_ingest.config import Settings
from energy_ingest.db.partitions import PartitionManager
from energy_ingest.db.sql import sql
from energy_ingest.writer.rollups import fold_rollups
from tests.factories import iso, meter_reading, minute, vehicle_reading
from tests.integration.writer.test_rollups import assert_rollups_match_history, fold_everything
from tests.support import start_engine

_INBOX = (
    "SELECT (SELECT count(*) FROM meter_rollup_inbox) + (SELECT count(*) FROM vehicle_rollup_inbox)"
)


async def test_answers_count_readings_before_they_are_folded(
    settings: Settings, db: asyncpg.Connection
) -> None:
    # A folder that does not come back for a minute after its first round at start-up.
    quiet = settings.model_copy(update={"rollup_fold_seconds": 60})
    async with start_engine(quiet) as engine:
        await asyncio.sleep(0.2)  # the start-up round has run on an empty inbox
        moments = [minute(-offset) for offset in range(1, 150)]
        meters = [meter_reading(meter_id="M-9", kwh=0.25, at=at) for at in moments]
        vehicles = [vehicle_reading(vehicle_id="M-9", kwh=0.2, at=at) for at in moments]
        assert (await engine.client.post("/v1/ingest/meter/batch", json=meters)).status_code == 201
        assert (
            await engine.client.post("/v1/ingest/vehicle/batch", json=vehicles)
        ).status_code == 201
        assert await db.fetchval(_INBOX) == 2 * len(moments)

        end = minute(0).replace(minute=0) + timedelta(hours=1)
        window = {"from": iso(end - timedelta(hours=4)), "to": iso(end)}
        paths = (
            ("/v1/analytics/fleet/performance", window),
            ("/v1/analytics/vehicle/M-9/series", {**window, "step": "1h"}),
            ("/v1/analytics/performance/M-9", window),
        )
        before = [(await engine.client.get(path, params=query)).json() for path, query in paths]
        assert before[0]["vehicles"][0]["dataPoints"] == {"vehicle": 149, "meter": 149}
        assert before[0]["vehicles"][0]["energyConsumedAc"] == before[2]["energyConsumedAc"]
        await fold_everything(db)
        assert await db.fetchval(_INBOX) == 0
        after = [(await engine.client.get(path, params=query)).json() for path, query in paths]
        assert after == before


async def test_folds_during_concurrent_writes_stay_exact(
    client: httpx.AsyncClient, db: asyncpg.Connection
) -> None:
    stop = asyncio.Event()

    async def fold_until_stopped() -> int:
        rounds = 0
        while not stop.is_set():
            if await fold_rollups(db) is not None:
                rounds += 1
            await asyncio.sleep(0)
        return rounds

    folder = asyncio.create_task(fold_until_stopped())
    for batch in range(12):
        moments = [minute(-offset - 40 * batch) for offset in range(40)]
        meters = [
            meter_reading(meter_id=f"M-{n % 5}", kwh=0.1, at=at) for n, at in enumerate(moments)
        ]
        vehicles = [
            vehicle_reading(vehicle_id=f"V-{n % 5}", kwh=0.08, temp=20 + n % 9, at=at)
            for n, at in enumerate(moments)
        ]
        # Retries of earlier batches too: never counted twice, whenever the fold runs.
        sent = await asyncio.gather(
            client.post("/v1/ingest/meter/batch", json=meters),
            client.post("/v1/ingest/vehicle/batch", json=vehicles),
            client.post("/v1/ingest/meter/batch", json=meters[:10]),
        )
        assert all(response.status_code == 201 for response in sent)
    stop.set()
    assert await folder >= 1
    assert await assert_rollups_match_history(db) >= 5
    assert await db.fetchval("SELECT sum(readings) FROM meter_rollups") == 12 * 40


async def test_one_folder_at_a_time(database_url: str, db: asyncpg.Connection) -> None:
    other = await asyncpg.connect(database_url)
    try:
        async with other.transaction():
            assert await other.fetchval(sql("try_lock_rollup_fold"))
            assert await fold_rollups(db) is None  # skips the round; the holder folds
        assert await fold_rollups(db) is not None
    finally:
        await other.close()


async def test_the_inbox_of_a_day_retention_dropped_goes_with_it(
    client: httpx.AsyncClient, db: asyncpg.Connection, settings: Settings
) -> None:
    old = datetime.now(UTC) - timedelta(days=settings.max_backfill.days - 1)
    body = [meter_reading(meter_id="M-old", kwh=0.5, at=old.replace(second=0, microsecond=0))]
    assert (await client.post("/v1/ingest/meter/batch", json=body)).status_code == 201
    body = [meter_reading(meter_id="M-old", kwh=0.5, at=minute(-1))]
    assert (await client.post("/v1/ingest/meter/batch", json=body)).status_code == 201
    pool = await asyncpg.create_pool(settings.database_url, min_size=1, max_size=1)
    assert pool is not None
    try:
        await PartitionManager(pool).drop_before(old.date() + timedelta(days=1))
    finally:
        await pool.close()
    await fold_everything(db)
    assert await db.fetchval(_INBOX) == 0
    assert await db.fetchval("SELECT sum(readings) FROM meter_rollups") == 1
    assert await assert_rollups_match_history(db) == 1


async def test_the_engine_folds_by_itself(settings: Settings, db: asyncpg.Connection) -> None:
    eager = settings.model_copy(update={"rollup_fold_seconds": 0.05})
    async with start_engine(eager) as engine:
        body = [meter_reading(meter_id="M-1", kwh=0.3, at=minute(-offset)) for offset in range(5)]
        assert (await engine.client.post("/v1/ingest/meter/batch", json=body)).status_code == 201
        async with asyncio.timeout(30):
            while await db.fetchval(_INBOX):  # noqa: ASYNC110 - polling the database
                await asyncio.sleep(0.05)
        assert await db.fetchval("SELECT sum(readings) FROM meter_rollups") == 5
        ready = await engine.client.get("/readyz")
        assert ready.json()["checks"]["maintenance"] is True


async def test_a_fold_takes_a_bounded_share_and_says_more_is_left(
    client: httpx.AsyncClient, db: asyncpg.Connection
) -> None:
    body = [meter_reading(meter_id=f"M-{n}", kwh=0.2, at=minute(-n)) for n in range(10)]
    assert (await client.post("/v1/ingest/meter/batch", json=body)).status_code == 201
    await fold_everything(db)  # whatever the engine's own folder left
    body = [meter_reading(meter_id=f"M-{n}", kwh=0.2, at=minute(-n - 20)) for n in range(10)]
    assert (await client.post("/v1/ingest/meter/batch", json=body)).status_code == 201
    rounds = []
    while True:
        folded = await fold_rollups(db, limit=4)
        if folded is None:  # the engine's folder holds the fold: let it finish
            await asyncio.sleep(0.05)
            continue
        rounds.append(folded)
        if not folded.more:
            break
    assert sum(f.meters for f in rounds) <= 10
    assert all(f.meters <= 4 for f in rounds)
    assert await db.fetchval(_INBOX) == 0
    assert await assert_rollups_match_history(db) >= 10
    assert await db.fetchval("SELECT sum(readings) FROM meter_rollups") == 20


async def test_the_folder_is_counted_in_the_metrics(settings: Settings) -> None:
    eager = settings.model_copy(update={"rollup_fold_seconds": 0.05})
    async with start_engine(eager) as engine:
        body = [meter_reading(meter_id="M-1", kwh=0.3, at=minute(-1))]
        assert (await engine.client.post("/v1/ingest/meter/batch", json=body)).status_code == 201
        async with asyncio.timeout(30):
            while True:
                text = (await engine.client.get("/metrics")).text
                if 'eie_rollup_folded_readings_total{kind="meter"} 1.0' in text:
                    break
                await asyncio.sleep(0.05)
        assert 'eie_rollup_folds_total{outcome="folded"}' in text
        assert "eie_rollup_fold_seconds_bucket" in text
