"""How many new device ids each API key may still register: a token bucket per key."""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass

_SECONDS_PER_MINUTE = 60.0
# Full buckets are the same as no bucket; past this many keys they are dropped.
_PRUNE_AT = 10_000


@dataclass(slots=True)
class _Bucket:
    tokens: float
    updated: float


class NewDeviceQuota:
    """At most `per_minute` new devices per key and minute in this process.

    A bucket holds up to `per_minute` tokens and refills at `per_minute` a minute, so a whole
    minute's quota may arrive at once (a fleet coming up for the first time) but no more is
    sustained. `None` is the key of every request when authentication is off: one bucket.
    """

    def __init__(self, per_minute: int, clock: Callable[[], float] = time.monotonic) -> None:
        self.per_minute = per_minute
        self._rate = per_minute / _SECONDS_PER_MINUTE
        self._clock = clock
        self._buckets: dict[str | None, _Bucket] = {}

    def take(self, key: str | None, count: int) -> int | None:
        """Spend `count` of `key`'s quota: None if it had them, else the whole seconds until it
        will (nothing spent then)."""
        now = self._clock()
        bucket = self._buckets.get(key)
        if bucket is None:
            if len(self._buckets) >= _PRUNE_AT:
                self._prune(now)
            bucket = self._buckets[key] = _Bucket(float(self.per_minute), now)
        else:
            elapsed = max(0.0, now - bucket.updated)
            bucket.tokens = min(float(self.per_minute), bucket.tokens + elapsed * self._rate)
            bucket.updated = now
        if count <= bucket.tokens:
            bucket.tokens -= count
            return None
        if count > self.per_minute:
            # Can never pass at once (the caller says to split it); a minute is the honest wait.
            return int(_SECONDS_PER_MINUTE)
        return max(1, math.ceil((count - bucket.tokens) / self._rate))

    def _prune(self, now: float) -> None:
        for key, bucket in list(self._buckets.items()):
            if bucket.tokens + (now - bucket.updated) * self._rate >= self.per_minute:
                del self._buckets[key]
