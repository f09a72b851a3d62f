"""A real PostgreSQL for every test: embedded by default, TEST_DATABASE_URL's server when set.

One template database is migrated per session; each test that asks for `database_url` gets a
fresh clone of it, dropped afterwards.
"""

from __future__ import annotations

import asyncio
import itertools
import os
import tempfile
from collections.abc import AsyncIterator, Iterator
from contextlib import ExitStack, asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import httpx
import pytest
from fastapi import FastAPI

from energy_ingest.app import create_app
from energy_ingest.config import Settings
from energy_ingest.db.embedded import embedded_postgres
from energy_ingest.db.migrations import migrate
from energy_ingest.db.sql import quote_identifier
from energy_ingest.web.state import EngineState
from energy_ingest.writer.group_commit import GroupCommitWriter
from tests.figures import print_figures, record_figures

__all__ = ["record_figures"]  # a fixture for every test: figures printed at the end


def with_database(url: str, database: str) -> str:
    """The same server URL, pointing at another database."""
    parts = urlsplit(url)
    return urlunsplit(parts._replace(path="/" + database))


@dataclass(frozen=True)
class DatabaseServer:
    admin_url: str
    template: str
    prefix: str


async def _create_template(admin_url: str, template: str) -> None:
    admin = await asyncpg.connect(admin_url)
    try:
        await admin.execute(f"DROP DATABASE IF EXISTS {quote_identifier(template)} WITH (FORCE)")
        await admin.execute(f"CREATE DATABASE {quote_identifier(template)}")
    finally:
        await admin.close()
    connection = await asyncpg.connect(with_database(admin_url, template))
    try:
        await migrate(connection)
    finally:
        await connection.close()


async def _drop_database(admin_url: str, name: str) -> None:
    admin = await asyncpg.connect(admin_url)
    try:
        await admin.execute(f"DROP DATABASE IF EXISTS {quote_identifier(name)} WITH (FORCE)")
    finally:
        await admin.close()


@pytest.fixture(scope="session")
def test_server() -> Iterator[DatabaseServer]:
    prefix = f"eie_test_{os.getpid()}"
    template = f"{prefix}_template"
    with ExitStack() as stack:
        admin_url = os.environ.get("TEST_DATABASE_URL")
        if not admin_url:
            # Not under pytest's basetemp: another pytest run on the machine prunes old
            # basetemp folders, which would pull the data folder from under a running server.
            folder = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="eie-test-pg-")))
            engine_url = stack.enter_context(
                embedded_postgres(folder / "data", delete_on_exit=True, durable=False)
            )
            admin_url = with_database(engine_url, "postgres")
        asyncio.run(_create_template(admin_url, template))
        yield DatabaseServer(admin_url=admin_url, template=template, prefix=prefix)
        asyncio.run(_drop_database(admin_url, template))


_database_numbers = itertools.count()


@pytest.fixture
async def database_url(test_server: DatabaseServer) -> AsyncIterator[str]:
    """A freshly migrated database of its own for this test."""
    name = f"{test_server.prefix}_{next(_database_numbers)}"
    admin = await asyncpg.connect(test_server.admin_url)
    try:
        template = quote_identifier(test_server.template)
        await admin.execute(f"CREATE DATABASE {quote_identifier(name)} TEMPLATE {template}")
    finally:
        await admin.close()
    yield with_database(test_server.admin_url, name)
    await _drop_database(test_server.admin_url, name)


@pytest.fixture
async def db(database_url: str) -> AsyncIterator[asyncpg.Connection]:
    """A plain connection to the test's database, for arranging and checking rows."""
    connection = await asyncpg.connect(database_url)
    yield connection
    await connection.close()


@pytest.fixture
def settings(database_url: str, tmp_path: Path) -> Settings:
    # Authentication has its own tests (tests/integration/auth); elsewhere it is off, as for
    # local use on loopback, so each test shows the feature it is about.
    return Settings(database_url=database_url, data_dir=tmp_path / "unused", auth_enabled=False)


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


@pytest.fixture
async def engine(settings: Settings) -> AsyncIterator[Engine]:
    async with start_engine(settings) as running:
        yield running


@pytest.fixture
def client(engine: Engine) -> httpx.AsyncClient:
    return engine.client


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    print_figures(terminalreporter)
