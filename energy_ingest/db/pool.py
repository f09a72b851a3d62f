"""Connection pools: read-only for queries, one for the writer, a small one for admin changes,
and, when configured, a read-only one on a streaming replica for the read endpoints."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, NewType

import asyncpg
from asyncpg.pool import PoolConnectionProxy

from energy_ingest.config import Settings
from energy_ingest.db.replica import ReadSource, ReplicaWatch, watch_replica
from energy_ingest.db.sql import sql
from energy_ingest.errors import DatabaseUnavailable

logger = logging.getLogger(__name__)

if TYPE_CHECKING:
    PooledConnection = PoolConnectionProxy[asyncpg.Record]
else:  # the stubs make the proxy generic; at run time it is a plain class
    PooledConnection = PoolConnectionProxy

AnyConnection = asyncpg.Connection | PooledConnection
"""A connection of a pool or one opened alone (the CLI's, the lifespan's first one)."""

ReadConnection = NewType("ReadConnection", PooledConnection)
"""A connection whose transactions are read-only (enforced by the server, not only by type)."""

WriteConnection = NewType("WriteConnection", PooledConnection)
"""A connection that may write: the writer's batches (write pool) or admin changes (admin pool)."""


async def _prepare_write_connection(connection: asyncpg.Connection) -> None:
    # Each write connection owns its staging tables for the whole of its life.
    await connection.execute(sql("create_staging_tables"))


def is_outage(error: BaseException) -> bool:
    """Whether `error` means the database is unavailable: unreachable, went away, or out of
    resources, as opposed to a statement that fails (a bug, a bad value), which would fail the
    same way again. The engine's one rule: the writer (503 vs 500), partition upkeep and the
    bench all ask it."""
    if isinstance(
        error,
        DatabaseUnavailable
        | OSError
        | TimeoutError
        | asyncpg.InterfaceError
        # A connection whose backend was killed mid-statement can also fail with asyncpg's
        # internal protocol-state error.
        | asyncpg.exceptions.InternalClientError,
    ):
        return True
    if isinstance(error, asyncpg.PostgresError):
        # Class 08: connection exception; 57: operator intervention (shutdown, terminated
        # backend); 53: insufficient resources (too many connections, out of disk).
        return str(getattr(error, "sqlstate", "") or "")[:2] in {"08", "57", "53"}
    return False


@asynccontextmanager
async def _borrow(pool: asyncpg.Pool, retry_after: int) -> AsyncIterator[PooledConnection]:
    try:
        connection = await pool.acquire()
    except Exception as exc:
        # Any failure to obtain a connection (refused, starting up, database gone) is an outage.
        raise DatabaseUnavailable("the database is unreachable; retry later", retry_after) from exc
    try:
        yield connection
    except Exception as exc:
        if is_outage(exc):
            raise DatabaseUnavailable(
                "the database connection was lost; retry later", retry_after
            ) from exc
        raise
    finally:
        await pool.release(connection)


@dataclass(slots=True)
class Database:
    """The engine's three pools. Created by `open_database`, closed when its context exits.

    The writer's pool serves the group-commit writer (and partition upkeep) only: admin
    requests (keys, assignments) borrow from `admin_pool`, so however many of them run, or
    however slowly, they never take a connection the writer needs.

    Failing to reach the database surfaces as DatabaseUnavailable (a 503), never as a raw
    driver error.
    """

    url: str
    read_pool: asyncpg.Pool
    write_pool: asyncpg.Pool
    admin_pool: asyncpg.Pool
    retry_after_seconds: int = 1
    replica_pool: asyncpg.Pool | None = None
    replica: ReplicaWatch | None = None
    max_staleness_seconds: float = 5.0

    @asynccontextmanager
    async def read(self) -> AsyncIterator[ReadConnection]:
        """A read-only connection of the primary (key checks, probes, the CLI's reports)."""
        async with _borrow(self.read_pool, self.retry_after_seconds) as connection:
            yield ReadConnection(connection)

    @asynccontextmanager
    async def read_answer(self) -> AsyncIterator[tuple[ReadConnection, ReadSource | None]]:
        """A read-only connection for one read endpoint's answer: the replica's when one is
        configured and no further behind than the bound, else the primary's; with where it
        came from (None: no replica configured)."""
        if self.replica_pool is None or self.replica is None:
            async with self.read() as connection:
                yield connection, None
            return
        staleness = self.replica.staleness()
        if staleness is None or staleness > self.max_staleness_seconds:
            async with self.read() as connection:
                yield connection, ReadSource(False, staleness, "replica-behind")
            return
        try:
            borrowed = await self.replica_pool.acquire(timeout=_REPLICA_ACQUIRE_SECONDS)
        except Exception as exc:
            logger.warning("read replica unavailable, reading the primary: %r", exc)
            async with self.read() as connection:
                yield connection, ReadSource(False, None, "replica-unavailable")
            return
        try:
            yield ReadConnection(borrowed), ReadSource(True, staleness)
        except Exception as exc:
            if is_outage(exc):
                raise DatabaseUnavailable(
                    "the read replica's connection was lost; retry later", self.retry_after_seconds
                ) from exc
            raise
        finally:
            await self.replica_pool.release(borrowed)

    @asynccontextmanager
    async def write(self) -> AsyncIterator[WriteConnection]:
        """A connection of the writer's pool for one batch."""
        async with _borrow(self.write_pool, self.retry_after_seconds) as connection:
            yield WriteConnection(connection)

    @asynccontextmanager
    async def admin(self) -> AsyncIterator[WriteConnection]:
        """A connection of the admin pool for one admin change. Borrow it only once the
        request's body is read and valid: nothing may hold a connection while a client sends."""
        async with _borrow(self.admin_pool, self.retry_after_seconds) as connection:
            yield WriteConnection(connection)


# Server settings of every read-only pool (the primary's and the replica's).
_READ_SETTINGS = {
    "default_transaction_read_only": "on",
    # Every read is a handful of index range scans. The planner cannot know which
    # partitions a span's scan will skip, so a many-span statement looks costly
    # enough to JIT-compile: half a second of compiling for milliseconds of work.
    "jit": "off",
}
# A replica that cannot hand out a connection this fast is passed over for the primary.
_REPLICA_ACQUIRE_SECONDS = 2.0


@asynccontextmanager
async def _replica_pool(url: str, settings: Settings) -> AsyncIterator[asyncpg.Pool]:
    # min_size=0: the engine starts (and writes) whether or not the replica is up; the watch
    # and the first reads connect when it is.
    pool = await asyncpg.create_pool(
        url,
        min_size=0,
        max_size=settings.read_pool_size,
        command_timeout=settings.statement_timeout_seconds,
        server_settings={"application_name": "energy-ingest replica reader", **_READ_SETTINGS},
    )
    try:
        yield pool
    finally:
        await pool.close()


@asynccontextmanager
async def open_database(url: str, settings: Settings) -> AsyncIterator[Database]:
    """Open the pools against `url`; they reconnect by themselves after the server comes back."""
    write_pool = await asyncpg.create_pool(
        url,
        min_size=1,
        max_size=settings.writer_concurrency + 2,
        init=_prepare_write_connection,
        command_timeout=settings.statement_timeout_seconds,
        server_settings={"application_name": "energy-ingest writer"},
    )
    try:
        read_pool = await asyncpg.create_pool(
            url,
            min_size=1,
            max_size=settings.read_pool_size,
            command_timeout=settings.statement_timeout_seconds,
            server_settings={"application_name": "energy-ingest reader", **_READ_SETTINGS},
        )
        try:
            # Admin changes are rare: no connection is kept open while none runs.
            admin_pool = await asyncpg.create_pool(
                url,
                min_size=0,
                max_size=settings.admin_pool_size,
                command_timeout=settings.statement_timeout_seconds,
                server_settings={"application_name": "energy-ingest admin"},
            )
            try:
                async with AsyncExitStack() as replica:
                    database = Database(
                        url=url,
                        read_pool=read_pool,
                        write_pool=write_pool,
                        admin_pool=admin_pool,
                        retry_after_seconds=settings.retry_after_seconds,
                        max_staleness_seconds=settings.read_max_staleness_seconds,
                    )
                    if settings.read_database_url is not None:
                        database.replica_pool = await replica.enter_async_context(
                            _replica_pool(settings.read_database_url, settings)
                        )
                        database.replica = await replica.enter_async_context(
                            watch_replica(
                                read_pool,
                                database.replica_pool,
                                check_seconds=settings.read_replica_check_seconds,
                                bound_seconds=settings.read_max_staleness_seconds,
                            )
                        )
                    yield database
            finally:
                await admin_pool.close()
        finally:
            await read_pool.close()
    finally:
        await write_pool.close()
