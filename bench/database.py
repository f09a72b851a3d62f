"""Throw-away databases for each measured path, the engine's schema in them, and what they hold."""

from __future__ import annotations

import sys
from collections.abc import AsyncIterator, Iterable, Sequence
from contextlib import ExitStack, asynccontextmanager
from datetime import date, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import asyncpg

from bench.http_load import BENCH_KEY
from bench.sql import bench_sql
from energy_ingest.auth.repository import insert_key
from energy_ingest.db.embedded import embedded_postgres
from energy_ingest.db.migrations import migrate
from energy_ingest.db.partitions import HISTORY_TABLES, PartitionManager
from energy_ingest.db.sql import quote_identifier


def with_database(url: str, database: str) -> str:
    """The same server URL, pointing at another database."""
    parts = urlsplit(url)
    return urlunsplit(parts._replace(path="/" + database))


def redact(url: str) -> str:
    """The URL without its password, for output."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.replace(":" + parts.password + "@", ":***@", 1)
    return urlunsplit(parts._replace(netloc=netloc))


def admin_server(stack: ExitStack, scratch: Path, url: str | None) -> tuple[str, str]:
    """The server a bench run works on, and how its report names it: `url`, or a throw-away
    embedded PostgreSQL (fsync on) in `scratch`, stopped and deleted with `stack`."""
    if url:
        return url, f"server at {redact(url)}"
    print("starting a throw-away embedded PostgreSQL (fsync on) …", file=sys.stderr)
    engine_url = stack.enter_context(
        embedded_postgres(scratch / "data", delete_on_exit=True, durable=True)
    )
    return with_database(engine_url, "postgres"), "embedded, throw-away"


async def _execute(url: str, statement: str) -> None:
    connection = await asyncpg.connect(url)
    try:
        await connection.execute(statement)
    finally:
        await connection.close()


@asynccontextmanager
async def scratch_database(admin_url: str, name: str) -> AsyncIterator[str]:
    """A new, empty database on the server of `admin_url`; dropped on exit."""
    create = bench_sql("create_database").format(database=quote_identifier(name))
    drop = bench_sql("drop_database").format(database=quote_identifier(name))
    await _execute(admin_url, drop)
    await _execute(admin_url, create)
    try:
        yield with_database(admin_url, name)
    finally:
        await _execute(admin_url, drop)


async def install_key(url: str) -> None:
    """The bench's admin key in the database of `url` (migrated), through the engine's own SQL.

    With a key present the engine mints no first admin key, so none is printed in the log.
    """
    connection = await asyncpg.connect(url)
    try:
        await insert_key(
            connection,
            prefix=BENCH_KEY.prefix,
            secret_hash=BENCH_KEY.secret_hash,
            name="bench",
            scopes=["admin"],
            device_id=None,
            device_kind=None,
        )
    finally:
        await connection.close()


async def prepare_schema(url: str, days: Iterable[date]) -> None:
    """The engine's own migrations and daily partitions (so the bench follows schema changes)."""
    connection = await asyncpg.connect(url)
    try:
        await migrate(connection)
    finally:
        await connection.close()
    pool = await asyncpg.create_pool(url, min_size=1, max_size=1)
    try:
        partitions = PartitionManager(pool)
        await partitions.refresh()
        await partitions.ensure(days)
    finally:
        await pool.close()


async def checkpoint(url: str) -> bool:
    """Flush dirty buffers before a measured path; False when the role may not checkpoint."""
    connection = await asyncpg.connect(url)
    try:
        await connection.execute(bench_sql("checkpoint"))
    except asyncpg.InsufficientPrivilegeError:
        return False
    finally:
        await connection.close()
    return True


async def _fetch_one(url: str, name: str, *arguments: Any) -> dict[str, Any]:
    connection = await asyncpg.connect(url)
    try:
        row = await connection.fetchrow(bench_sql(name), *arguments)
    finally:
        await connection.close()
    assert row is not None
    return dict(row.items())


async def server_settings(url: str) -> dict[str, str]:
    """Version and durability settings of the server the benchmark runs on."""
    return {key: str(value) for key, value in (await _fetch_one(url, "show_server")).items()}


async def count_stored_rows(url: str) -> dict[str, int]:
    """Rows in the history and live tables of the database at `url`."""
    return {key: int(value) for key, value in (await _fetch_one(url, "count_stored_rows")).items()}


async def history_storage(
    url: str, *, partitions: Sequence[str] | None = None, before: datetime | None = None
) -> dict[str, dict[str, float]]:
    """Per history table: rows, bytes of its partitions (heap, index, maps) and per reading.

    `partitions` and `before` narrow it to some partitions and the rows they hold (the closed
    days a compaction rebuilt); by default every partition and every row count.
    """
    connection = await asyncpg.connect(url)
    try:
        counts = await connection.fetchrow(bench_sql("count_history_rows"), before)
        rows = await connection.fetch(
            bench_sql("measure_history_storage"),
            list(HISTORY_TABLES),
            list(partitions) if partitions is not None else None,
        )
    finally:
        await connection.close()
    assert counts is not None
    storage: dict[str, dict[str, float]] = {}
    for row in rows:
        table = row["history_table"]
        readings = int(counts[table])
        total = int(row["total_bytes"])
        storage[table] = {
            "readings": readings,
            "partitions": int(row["partitions"]),
            "total_bytes": total,
            "heap_bytes": int(row["heap_bytes"]),
            "index_bytes": int(row["index_bytes"]),
            "bytes_per_reading": round(total / readings, 1) if readings else 0.0,
            # Where the bytes go: the rows (heap) and the (device, ts) primary key.
            "heap_bytes_per_reading": round(int(row["heap_bytes"]) / readings, 1)
            if readings
            else 0.0,
            "index_bytes_per_reading": round(int(row["index_bytes"]) / readings, 1)
            if readings
            else 0.0,
        }
    return storage
