"""Three engine processes on one database, as behind a load balancer: one truth whichever
engine a request reaches, and nothing acknowledged lost when one of them is killed."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import asyncpg
import httpx

from energy_ingest.wire import format_timestamp
from tests.factories import meter_reading
from tests.faults.audit import audit, live_over_http
from tests.faults.load import Fleet, Ledger, Load
from tests.faults.processes import EngineProcess, engine_process
from tests.figures import RecordFigures

ENGINES = 3
# A fold every second instead of every 5 s, so the rollups (not only their inbox) are what the
# fleet answers are checked on within the test's time.
_ENVIRONMENT = {"EIE_ROLLUP_FOLD_SECONDS": "1"}


@asynccontextmanager
async def _engines(database_url: str) -> AsyncIterator[list[EngineProcess]]:
    async with AsyncExitStack() as stack:
        engines = [
            await stack.enter_async_context(engine_process(database_url, environment=_ENVIRONMENT))
            for _ in range(ENGINES)
        ]
        await engines[0].start()  # migrates and mints the admin key
        await asyncio.gather(*(engine.start() for engine in engines[1:]))
        yield engines


async def _same_reading_through_two_engines(
    first: httpx.AsyncClient, second: httpx.AsyncClient, db: asyncpg.Connection
) -> dict[str, int]:
    """Each reading sent through two engines at the same moment: one stores it, the other
    answers duplicate (same values) or conflict (other values); never two rows."""
    start = datetime.now(UTC).replace(microsecond=0) - timedelta(hours=1)
    outcomes: dict[str, int] = {}
    for n in range(60):
        at = start + timedelta(seconds=n)
        meter_id = f"twice-{n % 6}"
        body = meter_reading(meter_id=meter_id, kwh=1.5, voltage=230.0, at=at)
        other = meter_reading(meter_id=meter_id, kwh=2.5, voltage=230.0, at=at) if n % 2 else body
        answers = await asyncio.gather(
            first.post("/v1/ingest/meter", json=body), second.post("/v1/ingest/meter", json=other)
        )
        statuses = sorted(answer.status_code for answer in answers)
        expected = [200, 201] if other is body else [201, 409]
        assert statuses == expected, [(a.status_code, a.text) for a in answers]
        winner = body if answers[0].status_code == 201 else other
        rows = await db.fetch(
            "SELECT kwh_consumed_ac FROM meter_reading_history WHERE meter_id = $1 AND ts = $2",
            meter_id,
            at,
        )
        assert [row["kwh_consumed_ac"] for row in rows] == [winner["kwhConsumedAc"]]
        key = "duplicate" if other is body else "conflict"
        outcomes[key] = outcomes.get(key, 0) + 1
    return outcomes


async def _revoked_through_one_refused_by_the_others(
    engines: list[EngineProcess], admin: dict[str, str]
) -> float:
    """A key revoked through engine 0 is refused by engines 1 and 2 on their very next request;
    the slowest of those refusals, in seconds after the revocation's answer."""
    clients = [httpx.AsyncClient(base_url=e.base_url, timeout=30) for e in engines]
    try:
        created = await clients[0].post(
            "/v1/keys", headers=admin, json={"scopes": ["read"], "name": "revoked across"}
        )
        assert created.status_code == 201, created.text
        key = {"Authorization": f"Bearer {created.json()['key']}"}
        probe = "/v1/analytics/fleet/devices?kind=meter"
        for client in clients[1:]:  # cached by the others: they have served it
            assert (await client.get(probe, headers=key)).status_code == 200
        revoked = await clients[0].delete(f"/v1/keys/{created.json()['id']}", headers=admin)
        assert revoked.status_code == 200, revoked.text
        answered = time.monotonic()
        refusals = await asyncio.gather(*(c.get(probe, headers=key) for c in clients[1:]))
        slowest = time.monotonic() - answered
        for refusal in refusals:
            assert refusal.status_code == 401, refusal.text
            assert refusal.json()["message"] == "this API key was revoked"
        return slowest
    finally:
        for client in clients:
            await client.aclose()


async def _assign_each_vehicle_its_meter(
    client: httpx.AsyncClient, fleet: Fleet, admin: dict[str, str]
) -> None:
    meters = [d.device_id for d in fleet.devices if d.kind == "meter"]
    vehicles = [d.device_id for d in fleet.devices if d.kind == "vehicle"]
    since = format_timestamp(fleet.start - timedelta(hours=1))
    for vehicle_id, meter_id in zip(vehicles, meters, strict=True):
        answer = await client.put(
            f"/v1/vehicles/{vehicle_id}/meter",
            headers=admin,
            json={"meterId": meter_id, "from": since},
        )
        assert answer.status_code in (200, 201), answer.text


async def _wait_until_folded(db: asyncpg.Connection) -> None:
    deadline = time.monotonic() + 60  # liveness only: folds run every second
    while await db.fetchval(
        "SELECT (SELECT count(*) FROM meter_rollup_inbox) + (SELECT count(*) FROM"
        " vehicle_rollup_inbox)"
    ):
        assert time.monotonic() < deadline, "the rollup inbox was never folded"
        await asyncio.sleep(0.2)


async def _fleet_matches_history(
    engine: EngineProcess, admin: dict[str, str], db: asyncpg.Connection
) -> int:
    """The engine's fleet answer, from the rollups, equals sums over the raw history for every
    vehicle (each vehicle's meter assigned for the whole window); vehicles compared."""
    async with httpx.AsyncClient(base_url=engine.base_url, timeout=60, headers=admin) as client:
        answer = await client.get("/v1/analytics/fleet/performance", params={"limit": "1000"})
    assert answer.status_code == 200, answer.text
    body = answer.json()
    start = datetime.fromisoformat(body["period"]["start"])
    end = datetime.fromisoformat(body["period"]["end"])
    dc = {
        row["vehicle_id"]: (row["kwh"], row["readings"])
        for row in await db.fetch(
            "SELECT vehicle_id, sum(kwh_delivered_dc::numeric) AS kwh, count(*) AS readings"
            " FROM vehicle_reading_history WHERE ts >= $1 AND ts < $2 GROUP BY vehicle_id",
            start,
            end,
        )
    }
    ac = {
        row["meter_id"]: (row["kwh"], row["readings"])
        for row in await db.fetch(
            "SELECT meter_id, sum(kwh_consumed_ac::numeric) AS kwh, count(*) AS readings"
            " FROM meter_reading_history WHERE ts >= $1 AND ts < $2 GROUP BY meter_id",
            start,
            end,
        )
    }
    compared = 0
    for vehicle in body["vehicles"]:
        if not vehicle["vehicleId"].startswith("fault-vehicle-"):
            continue
        (meter_id,) = vehicle["meterIds"]
        vehicle_kwh, vehicle_points = dc.get(vehicle["vehicleId"], (Decimal(0), 0))
        meter_kwh, meter_points = ac.get(meter_id, (Decimal(0), 0))
        assert vehicle["energyDeliveredDc"] == float(vehicle_kwh), vehicle
        assert vehicle["energyConsumedAc"] == float(meter_kwh), vehicle
        assert vehicle["dataPoints"] == {"vehicle": vehicle_points, "meter": meter_points}
        compared += 1
    return compared


async def test_three_engines_one_database(
    database_url: str, db: asyncpg.Connection, record_figures: RecordFigures
) -> None:
    fleet = Fleet(meters=36, vehicles=36)
    ledger = Ledger()
    async with _engines(database_url) as engines:
        admin = engines[0].headers
        async with (
            httpx.AsyncClient(base_url=engines[0].base_url, headers=admin, timeout=30) as first,
            httpx.AsyncClient(base_url=engines[1].base_url, headers=admin, timeout=30) as second,
        ):
            outcomes = await _same_reading_through_two_engines(first, second, db)
            await _assign_each_vehicle_its_meter(first, fleet, admin)
        refused_after = await _revoked_through_one_refused_by_the_others(engines, admin)

        # Load through all three at once, the same devices through each (so one device's
        # readings commit through different engines out of timestamp order); then kill -9 of
        # one engine mid-load while the other two keep taking readings.
        loads = [
            Load(e.base_url, fleet, ledger, headers=admin, clients=6, seed=n)
            for n, e in enumerate(engines)
        ]
        async with AsyncExitStack() as stack:
            for load in loads:
                await stack.enter_async_context(load)
            await loads[2].wait_for_acknowledgements(1_500)
            engines[2].kill_hard()
            await loads[0].wait_for_acknowledgements(1_500)
            await loads[1].wait_for_acknowledgements(1_500)
        for load in loads:
            assert not load.figures.unexpected, load.summary()
        result = await audit(database_url, ledger)
        result.assert_nothing_lost()  # and live = the newest stored reading of every device
        for engine in engines[:2]:
            assert not await live_over_http(engine.base_url, ledger, admin)

        await _wait_until_folded(db)
        compared = [await _fleet_matches_history(engine, admin, db) for engine in engines[:2]]
        assert compared == [36, 36]

    record_figures(
        {
            "engines on one database": ENGINES,
            "same reading through two engines: stored once, other answered duplicate": outcomes[
                "duplicate"
            ],
            "same instant, other values through two engines: stored once, other 409": outcomes[
                "conflict"
            ],
            "key revoked through one engine → refused by the other two (ms, slowest)": (
                refused_after * 1000
            ),
            "readings acknowledged by 3 engines (one killed -9 mid-load)": len(ledger),
            "acknowledged readings lost": len(result.lost),
            "requests cut by the kill": loads[2].figures.connection_errors,
            "fleet rows equal to raw-history sums (2 engines × 36 vehicles)": sum(compared),
        }
    )
