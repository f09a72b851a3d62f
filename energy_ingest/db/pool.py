"""Connection pools: a read-only pool for queries and a write pool for the writer and admin."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, NewType

import asyncpg
from asyncpg.pool import PoolConnectionProxy

from energy_ingest.config import Settings
from energy_ingest.db.sql import sql

if TYPE_CHECKING:
    PooledConnection = PoolConnectionProxy[asyncpg.Record]
else:  # the stubs make the proxy generic; at run time it is a plain class
    PooledConnection = PoolConnectionProxy

ReadConnection = NewType("ReadConnection", PooledConnection)
"""A connection whose transactions are read-only (enforced by the server, not only by type)."""

WriteConnection = NewType("WriteConnection", PooledConnection)
"""A connection of the write pool: assignments and the writer's batches."""


async def _prepare_write_connection(connection: asyncpg.Connection) -> None:
    # Each write connection owns its staging tables for the whole of its life.
    await connection.execute(sql("create_staging_tables"))


@dataclass(slots=True)
class Database:
    """The engine's two pools. Created by `open_database`, closed when its context exits."""

    url: str
    read_pool: asyncpg.Pool
    write_pool: asyncpg.Pool

    @asynccontextmanager
    async def read(self) -> AsyncIterator[ReadConnection]:
        """A read-only connection for one request."""
        async with self.read_pool.acquire() as connection:
            yield ReadConnection(connection)

    @asynccontextmanager
    async def write(self) -> AsyncIterator[WriteConnection]:
        """A write connection for one unit of work."""
        async with self.write_pool.acquire() as connection:
            yield WriteConnection(connection)


@asynccontextmanager
async def open_database(url: str, settings: Settings) -> AsyncIterator[Database]:
    """Open both pools against `url`; they reconnect by themselves after the server comes back."""
    write_pool = await asyncpg.create_pool(
        url,
        min_size=1,
        max_size=settings.writer_concurrency + 2,
        init=_prepare_write_connection,
        server_settings={"application_name": "energy-ingest writer"},
    )
    try:
        read_pool = await asyncpg.create_pool(
            url,
            min_size=1,
            max_size=settings.read_pool_size,
            server_settings={
                "application_name": "energy-ingest reader",
                "default_transaction_read_only": "on",
            },
        )
        try:
            yield Database(url=url, read_pool=read_pool, write_pool=write_pool)
        finally:
            await read_pool.close()
    finally:
        await write_pool.close()
