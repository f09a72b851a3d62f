"""Made-up key ids are refused without a query, beyond a small per-address budget."""

from __future__ import annotations

import asyncio
import secrets
import time

import asyncpg
import httpx
import pytest

from energy_ingest.auth import repository
from energy_ingest.auth.guard import KeyGuard
from energy_ingest.auth.keys import Scope, StoredKey
from energy_ingest.config import Settings
from energy_ingest.db.pool import AnyConnection
from energy_ingest.keys.service import create_key
from tests.support import Engine, MakeKey, start_engine


@pytest.fixture
def lookups(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Every key id the guard looks up in the database, in order."""
    seen: list[str] = []
    original = repository.get_key

    async def counted(connection: AnyConnection, prefix: str) -> StoredKey | None:
        seen.append(prefix)
        return await original(connection, prefix)

    monkeypatch.setattr(repository, "get_key", counted)
    return seen


async def _until_listening(engine: Engine) -> None:
    guard: KeyGuard = engine.app.state.engine.keys
    deadline = time.monotonic() + 10  # for liveness only
    while not guard.listening:
        assert time.monotonic() < deadline, "the key listener never connected"
        await asyncio.sleep(0.02)


def _client(guard_app: object, address: str) -> httpx.AsyncClient:
    transport = httpx.ASGITransport(app=guard_app, client=(address, 40000))  # type: ignore[arg-type]
    return httpx.AsyncClient(transport=transport, base_url="http://engine")


def _made_up() -> dict[str, str]:
    return {"Authorization": f"Bearer eie_{secrets.token_hex(6)}_{secrets.token_urlsafe(32)}"}


async def test_distinct_made_up_ids_cost_at_most_the_budget_in_lookups(
    secured_settings: Settings, make_key: MakeKey, lookups: list[str]
) -> None:
    admin = await make_key("admin")  # before the start: known from the listener's first load
    burst, per_second = 50, 5.0
    settings = secured_settings.model_copy(
        update={"unknown_key_lookup_burst": burst, "unknown_key_lookups_per_second": per_second}
    )
    async with start_engine(settings) as engine:
        await _until_listening(engine)
        async with _client(engine.app, "203.0.113.7") as client:
            assert (await client.get("/v1/keys", headers=admin)).status_code == 200
            lookups.clear()
            started = time.monotonic()
            for _ in range(2_000):
                answer = await client.get("/v1/keys", headers=_made_up())
                assert answer.status_code == 401
                assert answer.json()["message"] == "the API key is not valid"
            elapsed = time.monotonic() - started
            # The bound comes from the budget and the time the flood took, not a threshold.
            allowed = burst + per_second * elapsed + 1
            assert len(lookups) <= allowed, (len(lookups), elapsed)
            # A real key from the flooding address is still served (from the cache).
            assert (await client.get("/v1/keys", headers=admin)).status_code == 200


async def test_a_key_created_a_moment_ago_elsewhere_is_accepted_at_once(
    secured_settings: Settings,
    make_key: MakeKey,
    database_url: str,
    lookups: list[str],
) -> None:
    await make_key("admin")
    async with start_engine(secured_settings) as engine:
        await _until_listening(engine)
        other = await asyncpg.connect(database_url)
        try:
            # Created on "another engine" whose notification has not arrived (triggers off
            # for this session, so it never will): the id is new to this process.
            await other.execute("SET session_replication_role = replica")
            fresh = await make_key_on(other)
        finally:
            await other.close()
        async with _client(engine.app, "198.51.100.4") as client:
            answer = await client.get("/v1/keys", headers=fresh)
            assert answer.status_code == 200, answer.text
        assert len(lookups) == 1


async def make_key_on(connection: asyncpg.Connection) -> dict[str, str]:
    _, token = await create_key(connection, {Scope.ADMIN})
    return {"Authorization": f"Bearer {token}"}


async def test_the_key_cache_evicts_the_least_recently_used(
    secured_settings: Settings, make_key: MakeKey, lookups: list[str]
) -> None:
    first, second, third = [await make_key("admin") for _ in range(3)]
    settings = secured_settings.model_copy(update={"key_cache_entries": 2})
    async with start_engine(settings) as engine:
        await _until_listening(engine)
        for headers in (first, second, first, third, first):
            assert (await engine.client.get("/v1/keys", headers=headers)).status_code == 200
    # `second` was the least recently used when `third` came: `first` stayed cached.
    prefixes = [headers["Authorization"][11:23] for headers in (first, second, third)]
    assert lookups == prefixes


async def test_while_the_listener_is_down_refusals_are_cached_and_lookups_budgeted(
    secured_settings: Settings, make_key: MakeKey, lookups: list[str]
) -> None:
    admin = await make_key("admin")
    burst = 20
    settings = secured_settings.model_copy(
        update={"unknown_key_lookup_burst": burst, "unknown_key_lookups_per_second": 0.001}
    )
    async with start_engine(settings) as engine:
        await _until_listening(engine)
        guard: KeyGuard = engine.app.state.engine.keys
        listener = guard._listener
        assert listener is not None
        listener.cancel()  # as if the database dropped it and it has not reconnected yet
        await asyncio.gather(listener, return_exceptions=True)
        assert not guard.listening
        async with _client(engine.app, "192.0.2.9") as client:
            lookups.clear()
            same = _made_up()
            for _ in range(100):
                assert (await client.get("/v1/keys", headers=same)).status_code == 401
            assert len(lookups) == 1  # the refusal is cached for a few seconds
            for _ in range(200):
                assert (await client.get("/v1/keys", headers=_made_up())).status_code == 401
            assert len(lookups) <= burst + 1
            # Known keys are still looked up every time (nothing but a refusal is cached).
            lookups.clear()
            for _ in range(3):
                assert (await client.get("/v1/keys", headers=admin)).status_code == 200
            assert len(lookups) == 3
