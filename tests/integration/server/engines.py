"""A real `energy-ingest serve` process for the server tests, on a free port."""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager

from tests.faults.processes import EngineProcess, engine_process


@asynccontextmanager
async def running_engine(
    database_url: str, environment: Mapping[str, str] | None = None
) -> AsyncIterator[EngineProcess]:
    """Started and ready (authentication on unless `environment` says otherwise)."""
    async with engine_process(database_url, environment=environment) as engine:
        await engine.start()
        yield engine
