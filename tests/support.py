"""What the tests share besides fixtures: a running engine, databases, ports, readiness.

Tests import these from here; the conftest files hold fixtures only (an import-linter contract
keeps it so), because pytest loads a conftest itself and importing one again is fragile.
"""

from __future__ import annotations

import asyncio
import socket
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from importlib import resources
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import httpx
from fastapi import FastAPI

from energy_ingest.app import create_app
from energy_ingest.config import Settings
from energy_ingest.db.migrations import migrate
from energy_ingest.db.sql import quote_identifier
from energy_ingest.web.state import EngineState
from energy_ingest.writer.group_commit import GroupCommitWriter

MakeKey = Callable[..., Awaitable[dict[str, str]]]
"""The `make_key` fixture: `await make_key("ingest", device="M1")` → an Authorization header."""


# --- databases -------------------------------------------------------------------------------


async def back_fill_rollups(db: asyncpg.Connection) -> None:
    """Rollups for history a test wrote with SQL (not through the writer), as the migrations
    build them: partitions for history's days, hourly rows from history, day rows from those.
    Replaces whatever rollups there were."""
    await db.execute(
        "TRUNCATE meter_rollups, vehicle_rollups, meter_rollup_days, vehicle_rollup_days,"
        " meter_rollup_inbox, vehicle_rollup_inbox"
    )
    folder = resources.files("energy_ingest.db").joinpath("migrations")
    for name in ("202612051400_hourly_rollups.sql", "202612051600_rollup_inbox_and_days.sql"):
        migration = folder.joinpath(name).read_text(encoding="utf-8")
        await db.execute(migration[migration.index("DO $$") :])
    await db.execute("ANALYZE")


def with_database(url: str, database: str) -> str:
    """The same server URL, pointing at another database."""
    parts = urlsplit(url)
    return urlunsplit(parts._replace(path="/" + database))


@dataclass(frozen=True)
class DatabaseServer:
    admin_url: str
    template: str
    prefix: str


async def create_database(admin_url: str, name: str, *, template: str | None = None) -> None:
    """A new database `name` on the server of `admin_url`, a clone of `template` if given."""
    admin = await asyncpg.connect(admin_url)
    try:
        statement = f"CREATE DATABASE {quote_identifier(name)}"
        if template is not None:
            statement += f" TEMPLATE {quote_identifier(template)}"
        await admin.execute(statement)
    finally:
        await admin.close()


async def drop_database(admin_url: str, name: str) -> None:
    admin = await asyncpg.connect(admin_url)
    try:
        await admin.execute(f"DROP DATABASE IF EXISTS {quote_identifier(name)} WITH (FORCE)")
    finally:
        await admin.close()


async def create_template(admin_url: str, template: str) -> None:
    """`template` made afresh and migrated: what every test's database is cloned from."""
    await drop_database(admin_url, template)
    await create_database(admin_url, template)
    connection = await asyncpg.connect(with_database(admin_url, template))
    try:
        await migrate(connection)
    finally:
        await connection.close()


# --- the engine in the test's process ----------------------------------------------------------


@dataclass
class Engine:
    """A running engine (lifespan entered) and an HTTP client talking to it over ASGI."""

    app: FastAPI
    client: httpx.AsyncClient

    @property
    def state(self) -> EngineState:
        state: EngineState = self.app.state.engine
        return state

    @property
    def writer(self) -> GroupCommitWriter:
        writer = self.state.writer
        assert isinstance(writer, GroupCommitWriter)
        return writer


@asynccontextmanager
async def start_engine(settings: Settings) -> AsyncIterator[Engine]:
    """Run the real app (pools, writer, partitions) for the length of the block."""
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        # A loopback Host: with authentication off the engine refuses any other (DNS rebinding).
        async with httpx.AsyncClient(transport=transport, base_url="http://localhost") as client:
            yield Engine(app=app, client=client)


# --- engine processes ----------------------------------------------------------------------


def free_port() -> int:
    """A loopback TCP port nobody listens on right now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def _nothing() -> str:
    return ""


async def wait_until_ready(
    base_url: str,
    *,
    within: float = 60.0,
    alive: Callable[[], bool] | None = None,
    output: Callable[[], str] = _nothing,
    interval: float = 0.1,
    request_timeout: float = 2.0,
) -> float:
    """Seconds until GET /readyz at `base_url` answers 200.

    Fails as soon as `alive` says the engine exited, or after `within` seconds (a bound for
    liveness only, never a measured threshold); `output` is shown with either failure.
    """
    started = time.monotonic()
    async with httpx.AsyncClient(base_url=base_url, timeout=request_timeout) as client:
        while True:
            if alive is not None:
                assert alive(), f"the engine exited before it was ready:\n{output()}"
            try:
                if (await client.get("/readyz")).status_code == 200:
                    return time.monotonic() - started
            except httpx.TransportError:
                pass  # not listening yet
            assert time.monotonic() - started < within, (
                f"the engine was not ready within {within:g} s:\n{output()}"
            )
            await asyncio.sleep(interval)
