"""Keys: managed over HTTP, stored hashed, revoked at once, and the first one made by itself."""

from __future__ import annotations

import asyncio
import hashlib
import stat
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import asyncpg
import httpx
import pytest

from energy_ingest.auth.guard import KeyGuard
from energy_ingest.config import Settings
from energy_ingest.keys.service import create_first_admin_key, revoke_key
from tests.factories import meter_reading
from tests.figures import RecordFigures
from tests.support import Engine, MakeKey, start_engine

_REFUSAL_WAIT_SECONDS = 5.0  # far below the cache's 60 s: only a notification can explain it


def _bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def _ingest(client: httpx.AsyncClient, headers: dict[str, str], meter_id: str) -> int:
    answer = await client.post(
        "/v1/ingest/meter", json=meter_reading(meter_id=meter_id), headers=headers
    )
    return answer.status_code


async def _refused_within(client: httpx.AsyncClient, headers: dict[str, str]) -> float | None:
    """Seconds until the key is refused; None if it still works after the wait."""
    started = time.monotonic()
    while time.monotonic() < started + _REFUSAL_WAIT_SECONDS:
        if (await client.get("/v1/keys", headers=headers)).status_code == 401:
            return time.monotonic() - started
        await asyncio.sleep(0.002)
    return None


async def test_an_admin_creates_lists_and_revokes_keys(secured: Engine, make_key: MakeKey) -> None:
    client, admin = secured.client, await make_key("admin")
    created = await client.post(
        "/v1/keys",
        json={"scopes": ["ingest"], "deviceId": "M7", "deviceKind": "meter", "name": "meter 7"},
        headers=admin,
    )
    assert created.status_code == 201, created.text
    body = created.json()
    assert body["key"].startswith(f"eie_{body['id']}_")
    assert {k: body[k] for k in ("scopes", "deviceId", "deviceKind", "name", "revokedAt")} == {
        "scopes": ["ingest"],
        "deviceId": "M7",
        "deviceKind": "meter",
        "name": "meter 7",
        "revokedAt": None,
    }
    new_key = _bearer(body["key"])
    assert await _ingest(client, new_key, "M7") == 201

    listed = (await client.get("/v1/keys", headers=admin)).json()
    mine = next(item for item in listed if item["id"] == body["id"])
    assert "key" not in mine
    assert all("hash" not in field for field in mine)
    assert body["key"] not in str(listed)

    revoked = await client.delete(f"/v1/keys/{body['id']}", headers=admin)
    assert revoked.status_code == 200
    assert revoked.json()["revokedAt"] is not None
    # Refused at once by the process that revoked it; the answer names the reason.
    answer = await client.post(
        "/v1/ingest/meter", json=meter_reading(meter_id="M7"), headers=new_key
    )
    assert answer.status_code == 401
    assert answer.json()["message"] == "this API key was revoked"
    again = await client.delete(f"/v1/keys/{body['id']}", headers=admin)
    assert again.json()["revokedAt"] == revoked.json()["revokedAt"]  # revoking twice is harmless

    assert (await client.delete("/v1/keys/0123456789ab", headers=admin)).status_code == 404
    whole = await client.delete(f"/v1/keys/{body['key']}", headers=admin)  # never in a URL
    assert whole.status_code == 422
    assert whole.json()["errors"][0]["field"] == "keyId"


@pytest.mark.parametrize(
    ("body", "field", "rule"),
    [
        ({"scopes": []}, "scopes", "too_short"),
        ({"scopes": ["root"]}, "scopes.0", "literal_error"),
        ({}, "scopes", "required"),
        ({"scopes": ["admin"], "deviceId": "M1"}, "scopes", "combination"),
        ({"scopes": ["read"], "deviceKind": "meter"}, "deviceKind", "combination"),
        ({"scopes": ["read"], "deviceId": "no spaces"}, "deviceId", "pattern"),
        ({"scopes": ["read"], "deviceId": "M1"}, "deviceKind", "required"),
        ({"scopes": ["read"], "name": "\u0000nul"}, "name", "printable"),
        ({"scopes": ["read"], "name": "two\nlines"}, "name", "printable"),
        ({"scopes": ["read"], "name": "\u001b[2Jclear"}, "name", "printable"),
        ({"scopes": ["read"], "name": "gra\u202efana"}, "name", "printable"),
        ({"scopes": ["read"], "owner": "me"}, "owner", "known_field"),
        ({"scopes": ["read"], "name": "x" * 201}, "name", "string_too_long"),
        ({"scopes": ["read"], "expiresAt": "2020-01-01T00:00:00Z"}, "expiresAt", "future"),
        ({"scopes": ["read"], "expiresAt": "tomorrow"}, "expiresAt", "format"),
    ],
)
async def test_a_key_that_must_not_exist_is_422_naming_the_field(
    secured: Engine, db: asyncpg.Connection, make_key: MakeKey, body: object, field: str, rule: str
) -> None:
    admin = await make_key("admin")
    keys_before = await db.fetchval("SELECT count(*) FROM api_keys")
    answer = await secured.client.post("/v1/keys", json=body, headers=admin)
    assert answer.status_code == 422, answer.text
    problem = answer.json()["errors"][0]
    assert (problem["field"], problem["rule"]) == (field, rule), problem
    assert await db.fetchval("SELECT count(*) FROM api_keys") == keys_before


async def test_only_a_hash_of_the_secret_is_stored(
    secured: Engine, db: asyncpg.Connection, make_key: MakeKey
) -> None:
    admin = await make_key("admin")
    token = (
        await secured.client.post("/v1/keys", json={"scopes": ["read"]}, headers=admin)
    ).json()["key"]
    prefix, secret = token[4:16], token[17:]
    row = await db.fetchrow("SELECT * FROM api_keys WHERE prefix = $1", prefix)
    assert row is not None
    assert bytes(row["secret_hash"]) == hashlib.sha256(secret.encode()).digest()
    assert not any(secret in str(value) for value in row.values())


async def test_a_revocation_elsewhere_reaches_the_engine_at_once(
    secured: Engine, database_url: str, make_key: MakeKey, record_figures: RecordFigures
) -> None:
    headers = await make_key("admin")
    assert (await secured.client.get("/v1/keys", headers=headers)).status_code == 200  # cached
    # Another process (the CLI, another replica, psql) revokes it.
    other = await asyncpg.connect(database_url)
    try:
        await revoke_key(other, headers["Authorization"][11:23])
        refused_after = await _refused_within(secured.client, headers)
    finally:
        await other.close()
    assert refused_after is not None
    record_figures({"revoked by another connection → refused here (ms)": refused_after * 1000})


async def test_while_the_listener_is_down_no_key_is_served_from_the_cache(
    secured_settings: Settings, database_url: str, make_key: MakeKey
) -> None:
    # The key exists before the engine starts: no notification of its creation is in flight.
    headers = await make_key("admin")
    async with start_engine(secured_settings) as secured:
        await _cache_survives_until_the_listener_drops(secured, database_url, headers)


async def _cache_survives_until_the_listener_drops(
    secured: Engine, database_url: str, headers: dict[str, str]
) -> None:
    guard: KeyGuard = secured.state.keys
    await _until_listening(guard)
    assert (await secured.client.get("/v1/keys", headers=headers)).status_code == 200  # cached
    other = await asyncpg.connect(database_url)
    try:
        # A revocation whose notification is lost (triggers off for this session): the cache
        # still holds the key, as it would for up to 60 s …
        await other.execute("SET session_replication_role = replica")
        await revoke_key(other, headers["Authorization"][11:23])
        assert (await secured.client.get("/v1/keys", headers=headers)).status_code == 200
        # … until the listening connection drops: then the cache is gone and unused.
        await other.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname ="
            " current_database() AND application_name = 'energy-ingest key listener'"
        )
    finally:
        await other.close()
    assert await _refused_within(secured.client, headers) is not None
    await _until_listening(guard)  # it reconnects by itself
    ready = (await secured.client.get("/readyz")).json()
    assert ready["status"] == "ready"
    assert ready["checks"]["keyNotifications"] is True


async def _until_listening(guard: KeyGuard) -> None:
    deadline = time.monotonic() + 10  # for liveness only
    while not guard.listening:
        assert time.monotonic() < deadline, "the key listener never connected"
        await asyncio.sleep(0.02)


async def test_the_first_start_creates_one_admin_key_and_shows_it_once(
    secured_settings: Settings,
    db: asyncpg.Connection,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    key_file = tmp_path / "secrets" / "admin.key"
    settings = secured_settings.model_copy(update={"admin_key_file": key_file})
    async with start_engine(settings) as engine:
        printed = capsys.readouterr().out
        token = key_file.read_text().strip()
        assert token in printed
        assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
        assert (await engine.client.get("/v1/keys", headers=_bearer(token))).status_code == 200
    rows = await db.fetch("SELECT scopes, device_id FROM api_keys")
    assert [(row["scopes"], row["device_id"]) for row in rows] == [(["admin"], None)]

    key_file.unlink()
    async with start_engine(settings):
        assert "eie_" not in capsys.readouterr().out
    assert not key_file.exists()
    assert await db.fetchval("SELECT count(*) FROM api_keys") == 1


async def test_no_admin_key_is_made_when_keys_exist_or_auth_is_off(
    settings: Settings, db: asyncpg.Connection, capsys: pytest.CaptureFixture[str]
) -> None:
    async with start_engine(settings):  # the suite's default: authentication off
        pass
    assert await db.fetchval("SELECT count(*) FROM api_keys") == 0
    await revoke_key(db, "0123456789ab")  # nothing to revoke, nothing created
    await db.execute(
        "INSERT INTO api_keys (prefix, secret_hash, scopes) VALUES ('00000000000a', $1, '{read}')",
        bytes(32),
    )
    await db.execute("UPDATE api_keys SET revoked_at = now()")
    # Only a revoked key exists: still no key is minted (that would undo a lock-down).
    async with start_engine(settings.model_copy(update={"auth_enabled": True})):
        pass
    assert "eie_" not in capsys.readouterr().out
    assert await db.fetchval("SELECT count(*) FROM api_keys") == 1


async def test_simultaneous_first_starts_mint_exactly_one_key(database_url: str) -> None:
    connections = [await asyncpg.connect(database_url) for _ in range(5)]
    try:
        tokens = await asyncio.gather(*(create_first_admin_key(c) for c in connections))
    finally:
        for connection in connections:
            await connection.close()
    assert len([token for token in tokens if token is not None]) == 1


async def test_a_key_stops_working_when_it_expires(
    secured: Engine, db: asyncpg.Connection, make_key: MakeKey
) -> None:
    client, admin = secured.client, await make_key("admin")
    expires = datetime.now(UTC) + timedelta(seconds=3)
    created = await client.post(
        "/v1/keys",
        json={"scopes": ["read"], "expiresAt": expires.isoformat()},
        headers=admin,
    )
    assert created.status_code == 201, created.text
    body = created.json()
    assert datetime.fromisoformat(body["expiresAt"]) == expires
    key = _bearer(body["key"])
    assert (await client.get("/v1/analytics/meter/M1/live", headers=key)).status_code == 404
    # Cached by now, and no notification comes at expiry: the guard checks the time itself.
    await asyncio.sleep(max(0.0, (expires - datetime.now(UTC)).total_seconds()) + 0.05)
    answer = await client.get("/v1/analytics/meter/M1/live", headers=key)
    assert answer.status_code == 401
    assert answer.json()["message"] == "this API key expired"

    # An expiry moved into the past by hand (SQL) applies at once too, through the trigger.
    other = await make_key("read")
    assert (await client.get("/v1/analytics/meter/M1/live", headers=other)).status_code == 404
    await db.execute(
        "UPDATE api_keys SET created_at = now() - interval '2 days',"
        " expires_at = now() - interval '1 day' WHERE prefix = $1",
        other["Authorization"][11:23],
    )
    assert await _refused_within(client, other) is not None, "an expired key still works"
