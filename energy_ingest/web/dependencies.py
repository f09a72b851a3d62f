"""FastAPI dependencies as Annotated aliases; read paths can only ever get a ReadConnection.

No dependency borrows a connection that could wait on the client: a read connection is given
back as soon as the handler returns (before the answer is sent), and admin handlers get only
the means to borrow one, which they use after the request's body is read and validated.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AbstractAsyncContextManager
from typing import Annotated

from fastapi import Depends, Request

from energy_ingest.auth.guard import Principal
from energy_ingest.auth.keys import Scope
from energy_ingest.config import Settings
from energy_ingest.db.pool import ReadConnection, WriteConnection
from energy_ingest.web.read_source import STATE_KEY
from energy_ingest.web.state import EngineState

# Dependencies are `async def` even when they do not await: FastAPI runs a plain `def` one in
# a worker thread, two thread hand-offs per request for a dictionary lookup.


async def get_engine(request: Request) -> EngineState:
    engine: EngineState = request.app.state.engine
    return engine


EngineDep = Annotated[EngineState, Depends(get_engine)]


async def get_settings(engine: EngineDep) -> Settings:
    return engine.settings


async def read_connection(request: Request, engine: EngineDep) -> AsyncIterator[ReadConnection]:
    # The read replica's when one is configured and close enough behind; the answer's
    # Read-Source header says which (web/read_source.py).
    async with engine.database.read_answer() as (connection, source):
        if source is not None:
            request.scope.setdefault("state", {})[STATE_KEY] = source.header(
                engine.settings.read_max_staleness_seconds
            )
            engine.metrics.read_answers.labels(
                "replica" if source.replica else "primary", source.reason or ""
            ).inc()
        yield connection


AdminConnect = Callable[[], AbstractAsyncContextManager[WriteConnection]]
"""`async with connect() as connection:` borrows a connection of the admin pool."""


async def admin_connections(engine: EngineDep) -> AdminConnect:
    # Borrows nothing: a dependency is resolved before the handler reads the body, and a
    # client trickling that body must not hold a connection meanwhile.
    return engine.database.admin


SettingsDep = Annotated[Settings, Depends(get_settings)]
# scope="function": given back when the handler returns, not after a slow client has taken
# the whole answer.
ReadConn = Annotated[ReadConnection, Depends(read_connection, scope="function")]
AdminConnections = Annotated[AdminConnect, Depends(admin_connections)]


def _requires(scope: Scope) -> Callable[[Request], Awaitable[Principal]]:
    # Reads the engine off the request itself rather than through EngineDep or FastAPI's
    # HTTPBearer: each sub-dependency costs ~10 µs a request, on every request. The OpenAPI
    # document declares the bearer scheme in `app._openapi` instead.
    async def authorize(request: Request) -> Principal:
        engine: EngineState = request.app.state.engine
        return await engine.keys.authorize(request.headers.get("authorization"), scope)

    return authorize


ReadKey = Annotated[Principal, Depends(_requires(Scope.READ))]
AdminKey = Annotated[Principal, Depends(_requires(Scope.ADMIN))]
