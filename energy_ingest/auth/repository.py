"""SQL of API keys."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

import asyncpg

from energy_ingest.auth.keys import ApiKey, StoredKey
from energy_ingest.db.pool import AnyConnection
from energy_ingest.db.sql import sql


class ExpiryNotAfterCreation(Exception):
    """The key would expire before the database (whose clock counts) created it."""


async def lock_keys(connection: AnyConnection) -> None:
    """Hold the keys' advisory lock until the transaction ends."""
    await connection.execute(sql("lock_api_keys"))


async def count_keys(connection: AnyConnection) -> int:
    count: int = await connection.fetchval(sql("count_api_keys"))
    return count


async def insert_key(
    connection: AnyConnection,
    *,
    prefix: str,
    secret_hash: bytes,
    name: str,
    scopes: Sequence[str],
    device_id: str | None,
    device_kind: str | None,
    expires_at: datetime | None = None,
) -> ApiKey:
    """Store a key; ExpiryNotAfterCreation if the database's clock is past `expires_at`."""
    try:
        row = await connection.fetchrow(
            sql("insert_api_key"),
            prefix,
            secret_hash,
            name,
            list(scopes),
            device_id,
            device_kind,
            expires_at,
        )
    except asyncpg.CheckViolationError as error:
        if error.constraint_name == "api_keys_expire_after_creation":
            raise ExpiryNotAfterCreation from None
        raise
    assert row is not None
    return ApiKey.from_row(row)


async def get_key(connection: AnyConnection, prefix: str) -> StoredKey | None:
    row: asyncpg.Record | None = await connection.fetchrow(sql("get_api_key"), prefix)
    if row is None:
        return None
    return StoredKey(key=ApiKey.from_row(row), secret_hash=bytes(row["secret_hash"]))


async def list_key_ids(connection: AnyConnection) -> list[str]:
    """The public id of every key there is (revoked and expired ones too)."""
    return [row["prefix"] for row in await connection.fetch(sql("list_api_key_ids"))]


async def bind_key_kind(
    connection: AnyConnection, prefix: str, kind: str
) -> tuple[str | None, bool]:
    """Give a kind-less device key `kind` unless it has one: (its kind now, whether this call
    bound it); the kind is None when there is no such key."""
    bound: str | None = await connection.fetchval(sql("bind_api_key_kind"), prefix, kind)
    if bound is not None:
        return bound, True
    # Another request bound it first (or it has no device): read what it has now, in a
    # statement of its own so that it sees the other transaction's commit.
    current: str | None = await connection.fetchval(sql("get_api_key_kind"), prefix)
    return current, False


async def list_keys(connection: AnyConnection) -> list[ApiKey]:
    return [ApiKey.from_row(row) for row in await connection.fetch(sql("list_api_keys"))]


async def revoke_key(connection: AnyConnection, prefix: str) -> ApiKey | None:
    row = await connection.fetchrow(sql("revoke_api_key"), prefix)
    return ApiKey.from_row(row) if row is not None else None


async def check_connection(connection: AnyConnection) -> None:
    """Raise if `connection` no longer answers."""
    await connection.fetchval(sql("check_database"))
