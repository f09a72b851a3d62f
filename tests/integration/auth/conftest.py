"""An engine with authentication on, and keys made straight in its database."""

from __future__ import annotations

from collections.abc import AsyncIterator

import asyncpg
import pytest

from energy_ingest.auth.keys import Scope
from energy_ingest.config import Settings
from energy_ingest.keys.service import create_key
from energy_ingest.readings import DeviceKind
from tests.support import Engine, MakeKey, start_engine


@pytest.fixture
def secured_settings(settings: Settings) -> Settings:
    return settings.model_copy(update={"auth_enabled": True})


@pytest.fixture
async def secured(secured_settings: Settings) -> AsyncIterator[Engine]:
    async with start_engine(secured_settings) as running:
        yield running


@pytest.fixture
def make_key(db: asyncpg.Connection) -> MakeKey:
    """`await make_key("ingest", device="M1")` → the Authorization header of a new key."""

    async def make(
        *scopes: str, device: str | None = None, kind: str | None = None, name: str = ""
    ) -> dict[str, str]:
        _, token = await create_key(
            db,
            {Scope(scope) for scope in scopes},
            device_id=device,
            device_kind=DeviceKind(kind) if kind else None,
            name=name,
        )
        return {"Authorization": f"Bearer {token}"}

    return make
