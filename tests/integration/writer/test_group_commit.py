"""The group-commit writer: shared batches, bounded queue, outages without false success."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from urllib.parse import urlsplit

import asyncpg
import httpx
import pytest

from energy_ingest.config import Settings
from tests.factories import meter_reading, minute, vehicle_reading
from tests.integration.telemetry.test_metrics import sample
from tests.support import DatabaseServer, Engine, start_engine


@asynccontextmanager
async def live_tables_locked(database_url: str) -> AsyncIterator[None]:
    """Hold the live tables so every batch waits at its upsert until the block ends."""
    blocker = await asyncpg.connect(database_url)
    try:
        transaction = blocker.transaction()
        await transaction.start()
        await blocker.execute("LOCK TABLE meter_live, vehicle_live IN EXCLUSIVE MODE")
        yield
        await transaction.rollback()
    finally:
        await blocker.close()


@asynccontextmanager
async def admin_connection(test_server: DatabaseServer) -> AsyncIterator[asyncpg.Connection]:
    connection = await asyncpg.connect(test_server.admin_url)
    try:
        yield connection
    finally:
        await connection.close()


async def wait_until(condition: object, *, attempts: int = 500) -> None:
    for _ in range(attempts):
        if callable(condition) and condition():
            return
        await asyncio.sleep(0.01)
    raise AssertionError("condition never became true")


@asynccontextmanager
async def queue_filled(
    engine: Engine, database_url: str, readings: int, *, prefix: str = ""
) -> AsyncIterator[None]:
    """One batch stalled at its commit and `readings` more waiting in the queue behind it;
    both are answered 201 once the block ends."""
    writer = engine.writer
    async with live_tables_locked(database_url):
        stalled = asyncio.create_task(
            engine.client.post("/v1/ingest/meter", json=meter_reading(meter_id=f"{prefix}stalled"))
        )
        await wait_until(lambda: writer.batches_in_flight == 1)
        batch = [meter_reading(meter_id=f"{prefix}Q{i}") for i in range(readings)]
        queued = asyncio.create_task(engine.client.post("/v1/ingest/meter/batch", json=batch))
        await wait_until(lambda: writer.queued_readings == readings)
        yield
    assert (await stalled).status_code == 201
    assert (await queued).status_code == 201


async def test_concurrent_requests_share_one_batch(
    settings: Settings, database_url: str, db: asyncpg.Connection
) -> None:
    one_slot = settings.model_copy(update={"writer_concurrency": 1})
    async with start_engine(one_slot) as engine, live_tables_locked(database_url):
        writer = engine.writer
        # The first request's batch stalls on the lock; the next 50 queue up behind it.
        first = asyncio.create_task(
            engine.client.post("/v1/ingest/meter", json=meter_reading(meter_id="first"))
        )
        await wait_until(lambda: writer.batches_in_flight == 1)
        others = [
            asyncio.create_task(
                engine.client.post("/v1/ingest/meter", json=meter_reading(meter_id=f"M{i}"))
            )
            for i in range(50)
        ]
        await wait_until(lambda: writer.queued_readings == 50)
    responses = await asyncio.gather(first, *others)
    assert all(response.status_code == 201 for response in responses)
    # 51 requests, two transactions: the stalled one, then all fifty together.
    assert writer.stats.batches_committed == 2
    assert writer.stats.largest_batch == 50
    assert await db.fetchval("SELECT count(*) FROM meter_readings") == 51


async def test_a_full_queue_answers_503_with_retry_after(
    settings: Settings, database_url: str, db: asyncpg.Connection
) -> None:
    tight = settings.model_copy(
        update={"writer_queue_limit": 5, "writer_concurrency": 1, "retry_after_seconds": 2}
    )
    async with start_engine(tight) as engine:
        async with queue_filled(engine, database_url, 5):
            refused = await engine.client.post("/v1/ingest/vehicle", json=vehicle_reading())
            assert refused.status_code == 503
            assert refused.headers["retry-after"] == "2"
            assert refused.json()["error"] == "overloaded"
            # Refused before the body is even read: shedding load costs next to nothing.
            unread = await engine.client.post(
                "/v1/ingest/meter", content=b"{not json", headers={"content-type": "text/plain"}
            )
            assert unread.status_code == 503
        assert (
            await engine.client.post("/v1/ingest/vehicle", json=vehicle_reading())
        ).status_code == 201
    assert await db.fetchval("SELECT count(*) FROM meter_readings") == 6
    assert await db.fetchval("SELECT count(*) FROM vehicle_readings") == 1


async def test_a_batch_that_cannot_fit_is_refused_before_its_items_are_validated(
    settings: Settings, database_url: str
) -> None:
    tight = settings.model_copy(update={"writer_queue_limit": 6, "writer_concurrency": 1})
    async with start_engine(tight) as engine, queue_filled(engine, database_url, 4):
        # Three items, two places left: 503 for the whole batch, not a 422 for the
        # invalid items, because none of them was looked at.
        doomed = [meter_reading(voltage=-1), meter_reading(voltage=-2), meter_reading()]
        answer = await engine.client.post("/v1/ingest/meter/batch", json=doomed)
        assert answer.status_code == 503
        assert answer.json()["error"] == "overloaded"
        # Two fit: validated, both invalid, nothing queued (so no wait for the stalled batch).
        fits = await engine.client.post("/v1/ingest/meter/batch", json=doomed[:2])
        assert fits.status_code == 422


async def test_the_database_going_away_gives_503_never_a_false_success(
    engine: Engine, database_url: str, test_server: DatabaseServer
) -> None:
    client = engine.client
    database = urlsplit(database_url).path.lstrip("/")
    acknowledged: list[str] = []

    async def send(meter_id: str) -> httpx.Response:
        response = await client.post("/v1/ingest/meter", json=meter_reading(meter_id=meter_id))
        if response.status_code in (200, 201):
            acknowledged.append(meter_id)
        return response

    assert (await send("before")).status_code == 201
    # The outage: new connections refused, every open one killed, mid-run.
    async with admin_connection(test_server) as admin:
        await admin.execute(f'ALTER DATABASE "{database}" WITH ALLOW_CONNECTIONS false')
        await admin.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1", database
        )
    try:
        during = await asyncio.gather(*(send(f"during-{i}") for i in range(20)))
        ready = await client.get("/readyz")
        live = await client.get("/v1/analytics/meter/before/live")
    finally:
        async with admin_connection(test_server) as admin:
            await admin.execute(f'ALTER DATABASE "{database}" WITH ALLOW_CONNECTIONS true')
    assert {response.status_code for response in during} == {503}
    assert all("retry-after" in response.headers for response in during)
    assert ready.status_code == 503
    assert ready.json()["checks"]["database"] is False
    assert live.status_code == 503
    # It reconnects by itself: no restart, the next requests simply work.
    assert (await send("after")).status_code == 201
    assert (await client.get("/readyz")).status_code == 200
    check = await asyncpg.connect(database_url)
    try:
        rows = await check.fetch("SELECT meter_id FROM meter_reading_history")
    finally:
        await check.close()
    assert {row["meter_id"] for row in rows} == set(acknowledged) == {"before", "after"}


async def test_leaving_the_engine_commits_everything_already_accepted(
    settings: Settings, database_url: str, db: asyncpg.Connection
) -> None:
    async with start_engine(settings) as engine:
        async with live_tables_locked(database_url):
            pending = [
                asyncio.create_task(
                    engine.client.post(
                        "/v1/ingest/vehicle", json=vehicle_reading(vehicle_id=f"V{i}")
                    )
                )
                for i in range(10)
            ]
            await wait_until(lambda: engine.writer.batches_in_flight > 0)
        results = await asyncio.gather(*pending)
    assert all(result.status_code == 201 for result in results)
    assert await db.fetchval("SELECT count(*) FROM vehicle_readings") == 10


async def test_mixed_kinds_share_one_transaction(engine: Engine, db: asyncpg.Connection) -> None:
    response = await engine.client.post(
        "/v1/ingest", json=[meter_reading(meter_id="M1"), vehicle_reading(vehicle_id="V1")]
    )
    assert response.json()["stored"] == 2
    assert engine.writer.stats.batches_committed == 1
    assert await db.fetchval("SELECT count(*) FROM meter_readings") == 1
    assert await db.fetchval("SELECT count(*) FROM vehicle_readings") == 1


async def test_readings_of_many_minutes_flow_through(
    engine: Engine, db: asyncpg.Connection
) -> None:
    now = datetime.now(UTC)
    for offset in range(1, 6):
        items = [
            vehicle_reading(vehicle_id=f"V{i}", at=minute(-offset, base=now)) for i in range(100)
        ]
        assert (await engine.client.post("/v1/ingest/vehicle/batch", json=items)).status_code == 201
    assert await db.fetchval("SELECT count(*) FROM vehicle_readings") == 500
    newest = minute(-1, base=now)
    assert await db.fetchval("SELECT count(*) FROM vehicle_live WHERE ts = $1", newest) == 100


async def test_every_overload_refusal_is_counted_once(
    settings: Settings, database_url: str
) -> None:
    # Full queue: a single reading is refused before its body is read, counted as one.
    full = settings.model_copy(update={"writer_queue_limit": 5, "writer_concurrency": 1})
    async with start_engine(full) as engine:
        async with queue_filled(engine, database_url, 5):
            refused = await engine.client.post("/v1/ingest/meter", json=meter_reading())
            assert refused.status_code == 503
        text = (await engine.client.get("/metrics")).text
    assert sample(text, "eie_readings_rejected_total", reason="overloaded") == 1
    assert engine.writer.stats.rejected_overload == 1
    # Two places left: a batch of three is refused before its items are validated.
    tight = settings.model_copy(update={"writer_queue_limit": 6, "writer_concurrency": 1})
    async with start_engine(tight) as engine:
        async with queue_filled(engine, database_url, 4, prefix="second-"):
            batch = [meter_reading(meter_id=f"B{i}") for i in range(3)]
            refused = await engine.client.post("/v1/ingest/meter/batch", json=batch)
            assert refused.status_code == 503
        text = (await engine.client.get("/metrics")).text
    assert sample(text, "eie_readings_rejected_total", reason="overloaded") == 3
    assert engine.writer.stats.rejected_overload == 1


async def test_a_statement_that_always_fails_is_a_500_logged_once_not_an_outage(
    settings: Settings, caplog: pytest.LogCaptureFixture
) -> None:
    # A bound the schema cannot hold: real overflows, the same way on every retry.
    loose = settings.model_copy(update={"max_battery_temp": 1e39})
    async with start_engine(loose) as engine:
        answer = await engine.client.post(
            "/v1/ingest/vehicle/batch",
            json=[vehicle_reading(vehicle_id="V-secret", temp=1e39), vehicle_reading()],
        )
        assert answer.status_code == 500
        assert "retry-after" not in answer.headers
        assert "V-secret" not in answer.text
        failures = [r for r in caplog.records if r.name == "energy_ingest.writer.group_commit"]
        assert [r.levelname for r in failures] == ["ERROR"]
        # The engine is not in an outage: the next batch is written.
        assert (
            await engine.client.post("/v1/ingest/vehicle", json=vehicle_reading())
        ).status_code == 201
