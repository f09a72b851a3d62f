"""The schema is built from the migrations alone, once, even with several engines starting."""

from __future__ import annotations

import asyncio
import re

import asyncpg

from energy_ingest.db.migrations import available_migrations, migrate, pending_versions
from energy_ingest.db.sql import quote_identifier
from tests.support import DatabaseServer, with_database

_NAME = re.compile(r"^\d{12}_[a-z0-9_]+$")


def test_migration_files_are_named_by_time_and_slug() -> None:
    versions = [migration.version for migration in available_migrations()]
    assert versions == sorted(versions)
    assert all(_NAME.match(version) for version in versions)


async def _empty_database(test_server: DatabaseServer, name: str) -> str:
    admin = await asyncpg.connect(test_server.admin_url)
    try:
        await admin.execute(f"DROP DATABASE IF EXISTS {quote_identifier(name)}")
        await admin.execute(f"CREATE DATABASE {quote_identifier(name)}")
    finally:
        await admin.close()
    return with_database(test_server.admin_url, name)


async def _drop(test_server: DatabaseServer, name: str) -> None:
    admin = await asyncpg.connect(test_server.admin_url)
    try:
        await admin.execute(f"DROP DATABASE IF EXISTS {quote_identifier(name)} WITH (FORCE)")
    finally:
        await admin.close()


async def test_concurrent_migrations_apply_each_version_once(test_server: DatabaseServer) -> None:
    name = f"{test_server.prefix}_empty"
    url = await _empty_database(test_server, name)
    try:
        connections = [await asyncpg.connect(url) for _ in range(3)]
        try:
            results = await asyncio.gather(*(migrate(c) for c in connections))
            applied = [version for result in results for version in result]
            assert sorted(applied) == [m.version for m in available_migrations()]
            assert await pending_versions(connections[0]) == []
            assert await migrate(connections[0]) == []  # a second run finds nothing to do
            tables = {
                row["tablename"]
                for row in await connections[0].fetch(
                    "SELECT tablename FROM pg_tables WHERE schemaname = 'public'"
                )
            }
            assert {
                "meter_readings",
                "vehicle_readings",
                "meter_live",
                "vehicle_live",
                "vehicle_meter_assignments",
                "schema_migrations",
            } <= tables
        finally:
            for connection in connections:
                await connection.close()
    finally:
        await _drop(test_server, name)


async def test_history_is_partitioned_by_day_with_one_primary_key(db: asyncpg.Connection) -> None:
    for table, key in (
        ("meter_readings", "meter_key, ts"),
        ("vehicle_readings", "vehicle_key, ts"),
    ):
        strategy = await db.fetchval(
            "SELECT partstrat::text FROM pg_partitioned_table WHERE partrelid = $1::regclass", table
        )
        assert strategy == "r"
        indexes = await db.fetch("SELECT indexdef FROM pg_indexes WHERE tablename = $1", table)
        assert len(indexes) == 1
        assert f"({key})" in indexes[0]["indexdef"]


async def test_live_tables_leave_room_for_hot_updates(db: asyncpg.Connection) -> None:
    for table in ("meter_live", "vehicle_live"):
        options = await db.fetchval("SELECT reloptions FROM pg_class WHERE relname = $1", table)
        assert "fillfactor=70" in options
