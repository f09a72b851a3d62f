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
from contextlib import ExitStack
from pathlib import Path

import asyncpg
import httpx
import pytest

from energy_ingest.config import Settings
from energy_ingest.db.embedded import embedded_postgres
from tests.figures import print_figures, record_figures
from tests.support import (
    DatabaseServer,
    Engine,
    create_database,
    create_template,
    drop_database,
    start_engine,
    with_database,
)

__all__ = ["record_figures"]  # a fixture for every test: figures printed at the end


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
        asyncio.run(create_template(admin_url, template))
        yield DatabaseServer(admin_url=admin_url, template=template, prefix=prefix)
        asyncio.run(drop_database(admin_url, template))


_database_numbers = itertools.count()


@pytest.fixture
async def database_url(test_server: DatabaseServer) -> AsyncIterator[str]:
    """A freshly migrated database of its own for this test."""
    name = f"{test_server.prefix}_{next(_database_numbers)}"
    await create_database(test_server.admin_url, name, template=test_server.template)
    yield with_database(test_server.admin_url, name)
    await drop_database(test_server.admin_url, name)


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


@pytest.fixture
async def engine(settings: Settings) -> AsyncIterator[Engine]:
    async with start_engine(settings) as running:
        yield running


@pytest.fixture
def client(engine: Engine) -> httpx.AsyncClient:
    return engine.client


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    print_figures(terminalreporter)
