"""Forward-only SQL migrations, applied in name order under an advisory lock."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from importlib import resources

import asyncpg

from energy_ingest.db.pool import AnyConnection
from energy_ingest.db.sql import sql

logger = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Migration:
    """One `YYYYMMDDHHMM_slug.sql` file."""

    version: str
    script: str


def available_migrations() -> list[Migration]:
    """Every migration shipped with the package, oldest first."""
    folder = resources.files(__name__)  # the .sql files beside this module
    found = [
        Migration(version=entry.name.removesuffix(".sql"), script=entry.read_text("utf-8"))
        for entry in folder.iterdir()
        if entry.name.endswith(".sql")
    ]
    return sorted(found, key=lambda migration: migration.version)


async def applied_versions(connection: AnyConnection) -> list[str]:
    """Versions recorded in schema_migrations; empty when no migration ever ran."""
    try:
        rows = await connection.fetch(sql("list_applied_migrations"))
    except asyncpg.UndefinedTableError:
        return []
    return [row["version"] for row in rows]


async def pending_versions(connection: AnyConnection) -> list[str]:
    """Shipped migrations that this database has not applied yet."""
    applied = set(await applied_versions(connection))
    return [m.version for m in available_migrations() if m.version not in applied]


async def migrate(connection: AnyConnection) -> list[str]:
    """Apply every pending migration, each in its own transaction; return the versions applied.

    Safe to call from several processes at once: the advisory lock makes the others wait and
    then find nothing left to do.
    """
    await connection.execute(sql("lock_migrations"))
    try:
        await connection.execute(sql("create_migrations_table"))
        applied = set(await applied_versions(connection))
        done: list[str] = []
        for migration in available_migrations():
            if migration.version in applied:
                continue
            async with connection.transaction():
                await connection.execute(migration.script)
                await connection.execute(sql("record_migration"), migration.version)
            logger.info("applied migration %s", migration.version)
            done.append(migration.version)
        return done
    finally:
        await connection.execute(sql("unlock_migrations"))


Connect = Callable[[str], Awaitable[asyncpg.Connection]]


async def connect_when_reachable(
    url: str, *, attempts: int = 1, connect: Connect = asyncpg.connect
) -> asyncpg.Connection:
    """A connection to `url`; one that refuses connections (still starting) is retried once a
    second, `attempts` times in all.

    The last attempt goes through `connect`, whose failure is raised as it is: a caller that
    words failures itself (the CLI) passes its own.
    """
    for attempt in range(1, attempts):
        try:
            return await asyncpg.connect(url)
        except (OSError, asyncpg.CannotConnectNowError, asyncpg.PostgresConnectionError):
            logger.warning("database not reachable yet (attempt %d); retrying", attempt)
            await asyncio.sleep(1.0)
    return await connect(url)


async def migrate_url(
    url: str,
    *,
    attempts: int = 1,
    then: Callable[[asyncpg.Connection], Awaitable[object]] | None = None,
    connect: Connect = asyncpg.connect,
) -> list[str]:
    """Connect to `url`, apply pending migrations, run `then` on the same connection, close.

    The one "connect, migrate, close" of the engine; see `connect_when_reachable` for
    `attempts` and `connect`. Returns the versions applied.
    """
    connection = await connect_when_reachable(url, attempts=attempts, connect=connect)
    try:
        applied = await migrate(connection)
        if then is not None:
            await then(connection)
        return applied
    finally:
        await connection.close()
