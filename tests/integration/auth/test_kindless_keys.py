"""Device keys name their kind; keys made before that are bound to their first write's kind."""

from __future__ import annotations

import asyncio

import asyncpg
import pytest

from energy_ingest.auth import repository
from energy_ingest.auth.keys import Scope, generate_key, ordered
from tests.factories import meter_reading, minute, vehicle_reading
from tests.support import Engine, MakeKey


async def _kindless_key(db: asyncpg.Connection, device: str) -> dict[str, str]:
    """A device key as older engines made them: no kind (the repository checks nothing)."""
    new = generate_key()
    await repository.insert_key(
        db,
        prefix=new.prefix,
        secret_hash=new.secret_hash,
        name="made before kinds were required",
        scopes=ordered({Scope.INGEST, Scope.READ}),
        device_id=device,
        device_kind=None,
    )
    return {"Authorization": f"Bearer {new.token}"}


async def _stored(db: asyncpg.Connection) -> tuple[int, int]:
    meters = await db.fetchval("SELECT count(*) FROM meter_reading_history")
    vehicles = await db.fetchval("SELECT count(*) FROM vehicle_reading_history")
    return meters, vehicles


async def test_a_device_key_must_name_its_kind(secured: Engine, make_key: MakeKey) -> None:
    admin = await make_key("admin")
    answer = await secured.client.post(
        "/v1/keys", json={"scopes": ["ingest"], "deviceId": "X-1"}, headers=admin
    )
    assert answer.status_code == 422, answer.text
    (problem,) = answer.json()["errors"]
    assert (problem["field"], problem["rule"]) == ("deviceKind", "required")
    created = await secured.client.post(
        "/v1/keys",
        json={"scopes": ["ingest"], "deviceId": "X-1", "deviceKind": "vehicle"},
        headers=admin,
    )
    assert created.status_code == 201, created.text


async def test_a_kindless_key_cannot_forge_both_sides_of_a_vehicle(
    secured: Engine, db: asyncpg.Connection
) -> None:
    # The probe's M1: one request writing the vehicle X-1 and the meter X-1.
    key = await _kindless_key(db, "X-1")
    client = secured.client
    both = [vehicle_reading(vehicle_id="X-1"), meter_reading(meter_id="X-1")]
    answer = await client.post("/v1/ingest", json=both, headers=key)
    assert answer.status_code == 403, answer.text
    assert "never both" in answer.json()["message"]
    assert await _stored(db) == (0, 0)
    # Its first write binds it: the vehicle is stored, and from then on the meter is refused.
    first = await client.post("/v1/ingest/vehicle", json=both[0], headers=key)
    assert first.status_code == 201, first.text
    assert await db.fetchval("SELECT device_kind FROM api_keys WHERE device_id = 'X-1'") == (
        "vehicle"
    )
    for path, body in (("/v1/ingest/meter", both[1]), ("/v1/ingest", [both[1]])):
        refused = await client.post(path, json=body, headers=key)
        assert refused.status_code == 403, refused.text
        assert "vehicle X-1" in refused.json()["message"]
    assert await _stored(db) == (0, 1)


@pytest.mark.parametrize("attempt", range(3))
async def test_concurrent_first_writes_of_both_kinds_bind_exactly_one(
    secured: Engine, db: asyncpg.Connection, attempt: int
) -> None:
    key = await _kindless_key(db, "X-2")
    answers = await asyncio.gather(
        *(
            secured.client.post(path, json=body, headers=key)
            for offset in range(3)
            for path, body in (
                ("/v1/ingest/meter", meter_reading(meter_id="X-2", at=minute(-offset))),
                (
                    "/v1/ingest/vehicle/batch",
                    [vehicle_reading(vehicle_id="X-2", at=minute(-offset))],
                ),
            )
        )
    )
    kind = await db.fetchval("SELECT device_kind FROM api_keys WHERE device_id = 'X-2'")
    winners = [
        answer
        for answer in answers
        if answer.status_code == 201 and ("/meter" in str(answer.url)) == (kind == "meter")
    ]
    assert len(winners) == 3
    assert sorted(answer.status_code for answer in answers) == [201, 201, 201, 403, 403, 403]
    meters, vehicles = await _stored(db)
    assert sorted((meters, vehicles)) == [0, 3]
