"""The key guard: who is calling (401) and whether they may (403), in microseconds per request.

Keys are cached per process. A dedicated connection LISTENs for key changes (a trigger on the
table notifies on every insert, update, delete or truncate), so a revoked key stops working
everywhere within milliseconds. Whenever that connection is down, the cache is bypassed and
every request looks its key up: a missed notification can never keep a revoked key alive.

The same connection keeps the set of every issued key id, so a made-up id is refused without a
query. Only a small per-address budget of such ids is looked up anyway: a key created on another
engine a moment ago works at once, even before its notification arrives.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import logging
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from types import TracebackType

import asyncpg

from energy_ingest.auth import repository
from energy_ingest.auth.keys import Scope, StoredKey, split_token
from energy_ingest.config import Settings
from energy_ingest.db.pool import Database
from energy_ingest.errors import Forbidden, Unauthorized
from energy_ingest.readings import DeviceKind
from energy_ingest.telemetry.logs import client_address, presented_key_id

logger = logging.getLogger(__name__)

CHANNEL = "energy_ingest_api_keys"
_CACHE_SECONDS = 60.0  # a safety net only: notifications are what keep the cache true
_BUDGET_ADDRESSES = 10_000  # client addresses whose lookup budgets are remembered (LRU)
_RECONNECT_SECONDS = 1.0
_PROBE_EVERY_SECONDS = 15.0  # a connection that died silently (no FIN) is noticed this fast
_PROBE_TIMEOUT_SECONDS = 5.0

_MISSING = "send an API key as `Authorization: Bearer <key>`"
_INVALID = "the API key is not valid"


KindBinder = Callable[[str, DeviceKind], Awaitable[DeviceKind]]
"""Fixes a kind-less device key's kind in the database; returns the kind it has now."""


@dataclass(frozen=True, slots=True)
class Principal:
    """Who is calling and what they may do."""

    key_id: str | None  # None when authentication is off
    scopes: frozenset[Scope]
    device_id: str | None = None
    device_kind: DeviceKind | None = None
    binder: KindBinder | None = field(default=None, repr=False, compare=False)

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

    async def bind_kind(self, kinds: Iterable[DeviceKind]) -> Principal:
        """The principal to write `kinds` with (403 if it may not); call once `may_access`
        allowed every reading, before storing any.

        Device keys must name their kind now, but keys created before that have none: such a
        key is bound, for good, to the kind of its first write (the first of concurrent writes
        wins in the database), so it keeps working for its device in the field but can never
        write both sides of a vehicle's efficiency. One request writing both kinds is refused.
        """
        if self.device_id is None or self.device_kind is not None:
            return self
        wanted = set(kinds)
        if not wanted:
            return self
        if len(wanted) > 1:
            raise Forbidden(
                f"this key is bound to device {self.device_id} but names no kind: it writes "
                "either its meter or its vehicle readings (the kind of its first write), never "
                "both; nothing was stored"
            )
        (kind,) = wanted
        if self.binder is None or self.key_id is None:
            return replace(self, device_kind=kind)
        bound = replace(self, device_kind=await self.binder(self.key_id, kind))
        bound.require_device(kind, self.device_id)  # another request bound the other kind
        return bound


OPEN = Principal(key_id=None, scopes=frozenset(Scope))
"""Everyone, when authentication is switched off (loopback only)."""


class KeyGuard:
    """Checks `Authorization` headers against the api_keys table; owns its listener task."""

    def __init__(
        self, database: Database, *, enabled: bool, settings: Settings | None = None
    ) -> None:
        settings = settings or Settings.model_construct()  # the defaults
        self.enabled = enabled
        self._database = database
        self._cache: OrderedDict[str, tuple[StoredKey | None, float]] = OrderedDict()
        self._cache_entries = settings.key_cache_entries
        self._negative_seconds = settings.unknown_key_negative_seconds
        self._budget = _LookupBudget(
            settings.unknown_key_lookup_burst, settings.unknown_key_lookups_per_second
        )
        # Every issued key id, from the listening connection; None until it first listens.
        # Deleted ids may stay in it: it only decides whether an id is worth a lookup.
        self._known: set[str] | None = None
        self._arrived: set[str] | None = None  # notified while the set was being loaded
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
        presented_key_id.set(prefix)  # the access log names the key tried, accepted or not
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
            binder=self._bind_kind if key.device_id and key.device_kind is None else None,
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
        if cached is not None:
            stored, at = cached
            # Listening, notifications keep entries true; otherwise only a refusal is kept, and
            # briefly: a made-up id costs one lookup per few seconds, a revoked key none extra.
            if (self._listening and now - at < _CACHE_SECONDS) or (
                stored is None and now - at < self._negative_seconds
            ):
                self._cache.move_to_end(prefix)
                return stored
        if (
            self._known is not None
            and prefix not in self._known
            and not self._budget.take(_budget_holder(client_address.get()), now)
        ):
            return None  # never issued, as far as this process knows, and over budget
        generation = self._generation
        async with self._database.read() as connection:
            stored = await repository.get_key(connection, prefix)
        if stored is not None and self._known is not None:
            self._known.add(prefix)
        # Cache only what no notification overtook while the query ran.
        if generation == self._generation and (self._listening or stored is None):
            self._cache[prefix] = (stored, now)
            self._cache.move_to_end(prefix)
            while len(self._cache) > self._cache_entries:
                self._cache.popitem(last=False)
        return stored

    async def _bind_kind(self, prefix: str, kind: DeviceKind) -> DeviceKind:
        async with self._database.write() as connection:
            bound, now_bound = await repository.bind_key_kind(connection, prefix, kind.value)
        self.forget(prefix)  # this process at once; the others through the notification
        if bound is None:
            raise Unauthorized("the API key is not valid", token_given=True)
        if now_bound:
            logger.warning(
                "key %s named no device kind: bound to %s at its first write", prefix, kind.value
            )
        return DeviceKind(bound)

    def _on_notification(self, connection: object, pid: int, channel: str, payload: object) -> None:
        prefix = str(payload)
        if self._arrived is not None:
            self._arrived.add(prefix)
        if self._known is not None:
            if prefix:
                self._known.add(prefix)
            else:
                self._known.clear()  # TRUNCATE: no key is left
        self.forget(prefix)

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
            # Loaded after LISTEN: a key created from now on is notified, any before is here.
            self._arrived = set()
            loaded = set(await repository.list_key_ids(connection))
            self._known = loaded | self._arrived
            self._arrived = None
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
            self._arrived = None
            self.forget()
            if not connection.is_closed():
                connection.terminate()


class _LookupBudget:
    """A token bucket per client address: lookups of ids this process does not know."""

    def __init__(self, burst: int, per_second: float) -> None:
        self._burst = float(burst)
        self._per_second = per_second
        self._buckets: OrderedDict[str, tuple[float, float]] = OrderedDict()

    def take(self, address: str, now: float) -> bool:
        tokens, at = self._buckets.pop(address, (self._burst, now))
        tokens = min(self._burst, tokens + (now - at) * self._per_second)
        allowed = tokens >= 1.0
        self._buckets[address] = (tokens - 1.0 if allowed else tokens, now)
        if len(self._buckets) > _BUDGET_ADDRESSES:
            self._buckets.popitem(last=False)
        return allowed


def _budget_holder(address: str | None) -> str:
    """Whose lookup budget a request spends: its address, or its /64 for IPv6 (one host
    usually holds a whole /64, so per-address buckets would not bound it)."""
    if not address or ":" not in address:
        return address or ""
    try:
        return str(ipaddress.IPv6Network(f"{address}/64", strict=False))
    except ValueError:
        return address


def _bearer_token(authorization: str | None) -> str | None:
    if not authorization:
        return None
    scheme, _, token = authorization.strip().partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token:
        return None
    return token
