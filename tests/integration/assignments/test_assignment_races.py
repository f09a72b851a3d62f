"""Concurrent assignment changes answer 200, 201 or 409, never 500: no deadlock reaches a client."""

from __future__ import annotations

import asyncio
import random
from collections import Counter
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import asyncpg
import pytest

from energy_ingest.assignments import service
from energy_ingest.config import Settings
from energy_ingest.db.pool import WriteConnection
from energy_ingest.db.sql import sql
from energy_ingest.errors import Conflict
from tests.factories import iso, minute
from tests.support import start_engine

ROUNDS = 300
VEHICLES = [f"race-ev-{number}" for number in range(6)]
METERS = [f"race-meter-{number}" for number in range(4)]
RELEASE = "release"  # instead of a meter: end the vehicle's current assignment

_STORED = """
SELECT count(*) AS assignments,
       count(*) FILTER (WHERE upper_inf(during)) AS open_assignments,
       count(DISTINCT vehicle_id) FILTER (WHERE upper_inf(during)) AS vehicles_with_open,
       count(DISTINCT meter_id) FILTER (WHERE upper_inf(during)) AS meters_with_open
FROM vehicle_meter_assignments
"""


async def test_racing_assignments_of_shared_and_swapped_meters_answer_200_201_or_409(
    settings: Settings, db: asyncpg.Connection
) -> None:
    # As many admin connections as racing requests, so every round really runs concurrently.
    racing = settings.model_copy(update={"admin_pool_size": len(VEHICLES)})
    choose = random.Random(8)
    base = minute(-ROUNDS - 10)
    statuses: Counter[int] = Counter()
    async with start_engine(racing) as engine:

        async def put(vehicle_id: str, meter_id: str, start: datetime) -> int:
            if meter_id == RELEASE:
                response = await engine.client.delete(
                    f"/v1/vehicles/{vehicle_id}/meter", params={"at": iso(start)}
                )
                assert response.status_code in {200, 404, 409}, response.text
                return -response.status_code  # not an assignment started
            response = await engine.client.put(
                f"/v1/vehicles/{vehicle_id}/meter", json={"meterId": meter_id, "from": iso(start)}
            )
            assert response.status_code in {200, 201, 409}, response.text
            return response.status_code

        for number in range(ROUNDS):
            start = base + timedelta(minutes=number)
            if number % 2:
                # Every vehicle reaches for one of a few meters: the same meter from several
                # vehicles at once, and pairs that swap their meters.
                # Now and then one ends its assignment instead.
                changes = [(vehicle, choose.choice([*METERS, RELEASE])) for vehicle in VEHICLES]
            else:
                current = {
                    row["vehicle_id"]: row["meter_id"]
                    for row in await db.fetch(
                        "SELECT vehicle_id, meter_id FROM vehicle_meter_assignments"
                        " WHERE upper_inf(during)"
                    )
                }
                order = VEHICLES[:]
                choose.shuffle(order)
                changes = [
                    (order[index], current.get(order[index + 1], choose.choice(METERS)))
                    for index in range(len(order) - 1)
                ] + [(order[-1], current.get(order[0], choose.choice(METERS)))]
            answered = await asyncio.gather(
                *(put(vehicle, meter, start) for vehicle, meter in changes)
            )
            statuses.update(answered)

    stored = await db.fetchrow(_STORED)
    assert stored is not None
    assert set(statuses) <= {200, 201, 409, -200, -404, -409}
    assert statuses[-200] > 0
    assert statuses[201] > 0
    assert statuses[409] > 0
    # Every 201 stored exactly one assignment, every 200 and 409 none.
    assert stored["assignments"] == statuses[201]
    # A vehicle has at most one open assignment and a meter feeds at most one vehicle.
    assert stored["open_assignments"] == stored["vehicles_with_open"]
    assert stored["open_assignments"] == stored["meters_with_open"]


@pytest.fixture
async def engine_connection(database_url: str) -> AsyncIterator[WriteConnection]:
    pool = await asyncpg.create_pool(database_url, min_size=1, max_size=1)
    try:
        async with pool.acquire() as connection:
            yield WriteConnection(connection)
    finally:
        await pool.close()


async def _advisory_waiters(db: asyncpg.Connection) -> int:
    count: int = await db.fetchval(
        "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted"
    )
    return count


@pytest.mark.parametrize("single_try", [False, True])
async def test_a_deadlock_victim_is_retried_then_answered_409(
    engine_connection: WriteConnection,
    db: asyncpg.Connection,
    database_url: str,
    monkeypatch: pytest.MonkeyPatch,
    single_try: bool,
) -> None:
    if single_try:
        monkeypatch.setattr(service, "ATTEMPTS", 1)
    # Another session holds the meter's lock, then asks for the vehicle's, which the change
    # holds while it waits for the meter: a deadlock. Only the change's session looks for
    # deadlocks in time, so it is the victim.
    other = await asyncpg.connect(database_url)
    try:
        await other.execute("SET deadlock_timeout = '10min'")
        transaction = other.transaction()
        await transaction.start()
        await other.execute(sql("lock_meter_assignments"), "meter-1")
        change = asyncio.create_task(
            service.assign_meter(
                engine_connection, "ev-1", "meter-1", datetime.now(UTC) - timedelta(hours=1)
            )
        )
        for _ in range(10_000):
            if await _advisory_waiters(db) == 1 or change.done():
                break
            await asyncio.sleep(0.005)
        assert not change.done(), "the change did not wait for the meter's lock"
        await other.execute(sql("lock_vehicle_assignments"), "ev-1")  # granted once it lost
        await transaction.commit()
    finally:
        await other.close()

    if single_try:
        with pytest.raises(Conflict, match="concurrently; retry"):
            await change
        assert await db.fetchval("SELECT count(*) FROM vehicle_meter_assignments") == 0
    else:
        created, assignment = await change
        assert created
        assert assignment["meterId"] == "meter-1"
