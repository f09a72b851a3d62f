"""The key guard: who is calling (401) and whether they may (403), in microseconds per request.

Keys are cached per process. A dedicated connection LISTENs for key changes (a trigger on the
table notifies on every insert, update, delete or truncate), so a revoked key stops working
everywhere within milliseconds. Whenever that connection is down, the cache is bypassed and
every request looks its key up: a missed notification can never keep a revoked key alive.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from types import TracebackType

import asyncpg

from energy_ingest.auth import repository
from energy_ingest.auth.keys import DeviceKind, Scope, StoredKey, split_token
from energy_ingest.db.pool import Database
from energy_ingest.errors import Forbidden, Unauthorized
from energy_ingest.telemetry.logs import key_id

logger = logging.getLogger(__name__)

CHANNEL = "energy_ingest_api_keys"
_CACHE_SECONDS = 60.0  # a safety net only: notifications are what keep the cache true
_CACHE_LIMIT = 10_000  # unknown ids are cached too; a flood of made-up keys cannot grow memory
_RECONNECT_SECONDS = 1.0
_PROBE_EVERY_SECONDS = 15.0  # a connection that died silently (no FIN) is noticed this fast
_PROBE_TIMEOUT_SECONDS = 5.0

_MISSING = "send an API key as `Authorization: Bearer <key>`"
_INVALID = "the API key is not valid"


@dataclass(frozen=True, slots=True)
class Principal:
    """Who is calling and what they may do."""

    key_id: str | None  # None when authentication is off
    scopes: frozenset[Scope]
    device_id: str | None = None
    device_kind: DeviceKind | None = None

    def has(self, scope: Scope) -> bool:
        return scope in self.scopes or Scope.ADMIN in self.scopes

    def may_access(self, kind: DeviceKind, device_id: str) -> bool:
        """Whether this key may write or read `device_id` as a meter or vehicle."""
        if self.device_id is None:
            return True
        return device_id == self.device_id and self.device_kind in (None, kind)

    def require_device(self, kind: DeviceKind, device_id: str) -> None:
        """403 unless `may_access`; decided before any lookup, so it says nothing of existence."""
        if not self.may_access(kind, device_id):
            raise Forbidden(f"this key may only access {self.bound_to()}")

    def bound_to(self) -> str:
        kind = self.device_kind.value if self.device_kind else "device"
        return f"{kind} {self.device_id}"


OPEN = Principal(key_id=None, scopes=frozenset(Scope))
"""Everyone, when authentication is switched off (loopback only)."""


class KeyGuard:
    """Checks `Authorization` headers against the api_keys table; owns its listener task."""

    def __init__(self, database: Database, *, enabled: bool) -> None:
        self.enabled = enabled
        self._database = database
        self._cache: dict[str, tuple[StoredKey | None, float]] = {}
        self._generation = 0
        self._listening = False
        self._listened = False  # the current (or last) connection got as far as listening
        self._listener: asyncio.Task[None] | None = None

    async def __aenter__(self) -> KeyGuard:
        if self.enabled:
            self._listener = asyncio.create_task(self._listen(), name="api-key-listener")
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        if self._listener is not None:
            self._listener.cancel()
            await asyncio.gather(self._listener, return_exceptions=True)

    @property
    def listening(self) -> bool:
        """Key changes reach this process as they happen (else every request looks up)."""
        return self._listening

    async def authorize(self, authorization: str | None, scope: Scope) -> Principal:
        """The caller behind `authorization`, if it may use `scope`; 401 or 403 otherwise."""
        if not self.enabled:
            return OPEN
        token = _bearer_token(authorization)
        if token is None:
            raise Unauthorized(_MISSING, token_given=False)
        split = split_token(token)
        if split is None:
            raise Unauthorized(_INVALID, token_given=True)
        prefix, secret = split
        key_id.set(prefix)  # the access log names the key tried, accepted or not
        stored = await self._lookup(prefix)
        if stored is None or not stored.matches(secret):
            raise Unauthorized(_INVALID, token_given=True)
        key = stored.key
        if key.revoked_at is not None:
            raise Unauthorized("this API key was revoked", token_given=True)
        if key.expires_at is not None and key.expires_at <= datetime.now(UTC):
            raise Unauthorized("this API key expired", token_given=True)
        principal = Principal(
            key_id=key.prefix,
            scopes=key.scopes,
            device_id=key.device_id,
            device_kind=key.device_kind,
        )
        if not principal.has(scope):
            raise Forbidden(f"this key lacks the {scope.value} scope")
        return principal

    def forget(self, prefix: str = "") -> None:
        """Drop one cached key (or all, for ""): called on notifications and local changes."""
        self._generation += 1
        if prefix:
            self._cache.pop(prefix, None)
        else:
            self._cache.clear()

    async def _lookup(self, prefix: str) -> StoredKey | None:
        cached = self._cache.get(prefix)
        now = time.monotonic()
        if cached is not None and self._listening and now - cached[1] < _CACHE_SECONDS:
            return cached[0]
        generation = self._generation
        async with self._database.read() as connection:
            stored = await repository.get_key(connection, prefix)
        # Cache only what no notification overtook while the query ran.
        if self._listening and generation == self._generation:
            if len(self._cache) >= _CACHE_LIMIT:
                self._cache.clear()
            self._cache[prefix] = (stored, now)
        return stored

    def _on_notification(self, connection: object, pid: int, channel: str, payload: object) -> None:
        self.forget(str(payload))

    async def _listen(self) -> None:
        """Keep one LISTEN connection; while it is down, nothing is served from the cache."""
        outage_logged = False
        while True:
            try:
                await self._listen_on_one_connection()
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                if self._listened or not outage_logged:  # once per outage, not once a second
                    logger.warning("API key listener disconnected, keys are looked up: %r", exc)
                outage_logged = True
            await asyncio.sleep(_RECONNECT_SECONDS)

    async def _listen_on_one_connection(self) -> None:
        connection = await asyncpg.connect(
            self._database.url,
            timeout=_PROBE_TIMEOUT_SECONDS,
            server_settings={"application_name": "energy-ingest key listener"},
        )
        lost = asyncio.Event()
        self._listened = False
        try:
            connection.add_termination_listener(lambda _: lost.set())
            await connection.add_listener(CHANNEL, self._on_notification)
            self.forget()  # whatever changed while nobody listened
            self._listening = self._listened = True
            while not lost.is_set():
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(lost.wait(), _PROBE_EVERY_SECONDS)
                if not lost.is_set():
                    async with asyncio.timeout(_PROBE_TIMEOUT_SECONDS):
                        await repository.check_connection(connection)
            raise ConnectionError("the listening connection closed")
        finally:
            self._listening = False
            self.forget()
            if not connection.is_closed():
                connection.terminate()


def _bearer_token(authorization: str | None) -> str | None:
    if not authorization:
        return None
    scheme, _, token = authorization.strip().partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token:
        return None
    return token
