"""Load for the fault tests: many HTTP clients, every acknowledged (2xx) reading written down.

A reading counts as acknowledged only when its request got a 2xx answer: 201/200 for a single
reading, and for a batch every item its answer does not list among the errors. A 503 or a
broken connection acknowledges nothing, which is fine; what was acknowledged must be stored.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from types import TracebackType
from typing import Any, Literal

import httpx
import orjson

from tests.factories import meter_reading, vehicle_reading

Kind = Literal["meter", "vehicle"]
Key = tuple[Kind, str, datetime]  # one reading: kind, device id, timestamp

# Each reading of a device is this much later than its previous one; the fleet's clock starts
# far enough in the past for 400,000 readings a device before one would be in the future.
_STEP = timedelta(milliseconds=100)
_HISTORY_START = timedelta(hours=12)
_READINGS_PER_DEVICE = 400_000


@dataclass(frozen=True, slots=True)
class Reading:
    """One reading as sent; `values` in the order of the history view's columns."""

    kind: Kind
    device_id: str
    at: datetime
    values: tuple[float, ...]

    @property
    def key(self) -> Key:
        return (self.kind, self.device_id, self.at)

    def body(self) -> dict[str, Any]:
        if self.kind == "meter":
            kwh, voltage = self.values
            return meter_reading(meter_id=self.device_id, kwh=kwh, voltage=voltage, at=self.at)
        soc, kwh, temperature = self.values
        return vehicle_reading(
            vehicle_id=self.device_id, soc=soc, kwh=kwh, temp=temperature, at=self.at
        )


@dataclass(slots=True)
class Device:
    kind: Kind
    device_id: str
    sent: int = 0


class Fleet:
    """The devices of one test; each has its own clock, so no two readings ever share a key."""

    def __init__(self, *, meters: int, vehicles: int, start: datetime | None = None) -> None:
        self.start = start or datetime.now(UTC).replace(microsecond=0) - _HISTORY_START
        self.devices = [Device("meter", f"fault-meter-{n:03d}") for n in range(meters)] + [
            Device("vehicle", f"fault-vehicle-{n:03d}") for n in range(vehicles)
        ]

    def next_reading(self, device: Device) -> Reading:
        n = device.sent
        assert n < _READINGS_PER_DEVICE, "the fleet's clock ran into the future"
        device.sent += 1
        at = self.start + n * _STEP
        # One decimal and few digits: exact in history's real columns too.
        if device.kind == "meter":
            values: tuple[float, ...] = ((n % 997) / 10, 200 + (n % 400) / 10)
        else:
            values = ((n % 1001) / 10, (n % 991) / 10, -20 + (n % 600) / 10)
        return Reading(device.kind, device.device_id, at, values)


class Ledger:
    """Every acknowledged reading, across all the rounds of a test."""

    def __init__(self) -> None:
        self.acknowledged: dict[Key, tuple[float, ...]] = {}

    def acknowledge(self, readings: Sequence[Reading]) -> None:
        for reading in readings:
            self.acknowledged[reading.key] = reading.values

    def newest(self) -> dict[tuple[Kind, str], tuple[datetime, tuple[float, ...]]]:
        """The newest acknowledged reading of each device: (timestamp, values)."""
        newest: dict[tuple[Kind, str], tuple[datetime, tuple[float, ...]]] = {}
        for (kind, device_id, at), values in self.acknowledged.items():
            known = newest.get((kind, device_id))
            if known is None or known[0] < at:
                newest[(kind, device_id)] = (at, values)
        return newest

    def __len__(self) -> int:
        return len(self.acknowledged)


@dataclass(slots=True)
class LoadFigures:
    """What the clients saw; `unexpected` should stay empty (any answer outside the contract)."""

    requests: int = 0
    readings_sent: int = 0
    readings_acknowledged: int = 0
    answers_503: int = 0
    answers_503_without_retry_after: int = 0
    connection_errors: int = 0
    unexpected: list[str] = field(default_factory=list)
    acknowledged_at: list[float] = field(default_factory=list)  # time.monotonic() of each 2xx

    def first_acknowledgement_after(self, moment: float) -> float | None:
        return min((t for t in self.acknowledged_at if t >= moment), default=None)


Shape = Literal["meter", "vehicle", "either", "meter-batch", "vehicle-batch", "mixed-batch"]
_PATHS: dict[Shape, str] = {
    "meter": "/v1/ingest/meter",
    "vehicle": "/v1/ingest/vehicle",
    "either": "/v1/ingest",
    "meter-batch": "/v1/ingest/meter/batch",
    "vehicle-batch": "/v1/ingest/vehicle/batch",
    "mixed-batch": "/v1/ingest",
}
EVERY_SHAPE: tuple[Shape, ...] = tuple(_PATHS)
BATCH_SHAPES: tuple[Shape, ...] = ("meter-batch", "vehicle-batch", "mixed-batch")


class Load:
    """`clients` concurrent HTTP clients, each with its own devices, until stopped.

    Bounded by itself too: it stops after `max_seconds` or `max_requests`, whichever first.
    """

    def __init__(
        self,
        base_url: str,
        fleet: Fleet,
        ledger: Ledger,
        *,
        clients: int = 8,
        shapes: Sequence[Shape] = EVERY_SHAPE,
        batch_size: tuple[int, int] = (2, 50),
        pause_after_refusal: float = 0.05,
        max_seconds: float = 60.0,
        max_requests: int = 200_000,
        timeout: float = 60.0,
        seed: int = 0,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        self.base_url = base_url
        self.headers = dict(headers or {})
        self.fleet = fleet
        self.ledger = ledger
        self.clients = clients
        self.shapes = shapes
        self.batch_size = batch_size
        self.pause_after_refusal = pause_after_refusal
        self.max_seconds = max_seconds
        self.max_requests = max_requests
        self.timeout = timeout
        self.seed = seed
        self.figures = LoadFigures()
        self._stopping = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []
        self._deadline = 0.0

    async def __aenter__(self) -> Load:
        self._deadline = time.monotonic() + self.max_seconds
        self._tasks = [
            asyncio.create_task(self._client(index), name=f"load-client-{index}")
            for index in range(self.clients)
        ]
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.stop()

    async def stop(self) -> None:
        """Let every client finish the request it is in (so each answer is recorded), then end."""
        self._stopping.set()
        if self._tasks:
            await asyncio.gather(*self._tasks)
            self._tasks = []

    async def wait_for_acknowledgements(self, count: int, *, within: float = 60.0) -> None:
        """Until `count` readings more than now were acknowledged (bounded, for liveness only)."""
        target = self.figures.readings_acknowledged + count
        deadline = time.monotonic() + within
        while self.figures.readings_acknowledged < target:
            assert time.monotonic() < deadline, f"load made no progress: {self.summary()}"
            assert not any(task.done() for task in self._tasks), "a load client ended early"
            await asyncio.sleep(0.02)

    def summary(self) -> str:
        f = self.figures
        return (
            f"{f.requests} requests, {f.readings_acknowledged} readings acknowledged, "
            f"{f.answers_503} × 503, {f.connection_errors} connection errors, "
            f"unexpected: {f.unexpected[:3]}"
        )

    def _running(self) -> bool:
        return (
            not self._stopping.is_set()
            and time.monotonic() < self._deadline
            and self.figures.requests < self.max_requests
        )

    def _request(self, shape: Shape, devices: list[Device], rng: random.Random) -> list[Reading]:
        if shape in ("meter", "meter-batch"):
            devices = [device for device in devices if device.kind == "meter"]
        elif shape in ("vehicle", "vehicle-batch"):
            devices = [device for device in devices if device.kind == "vehicle"]
        count = rng.randint(*self.batch_size) if shape in BATCH_SHAPES else 1
        return [self.fleet.next_reading(rng.choice(devices)) for _ in range(count)]

    async def _client(self, index: int) -> None:
        rng = random.Random(self.seed * 1000 + index)
        devices = self.fleet.devices[index :: self.clients]
        assert {d.kind for d in devices} == {"meter", "vehicle"}, "too few devices per client"
        figures = self.figures
        limits = httpx.Limits(max_connections=1)
        async with httpx.AsyncClient(
            base_url=self.base_url, timeout=self.timeout, limits=limits, headers=self.headers
        ) as client:
            refused: tuple[Shape, list[Reading], bytes] | None = None
            while self._running():
                if refused is not None:
                    # As a real client does after a 503: the same request again (nothing of it
                    # was stored); it also keeps this client cheap enough to flood the engine.
                    shape, readings, content = refused
                else:
                    shape = rng.choice(self.shapes)
                    readings = self._request(shape, devices, rng)
                    bodies = [reading.body() for reading in readings]
                    content = orjson.dumps(bodies if shape in BATCH_SHAPES else bodies[0])
                refused = None
                figures.requests += 1
                figures.readings_sent += len(readings)
                try:
                    answer = await client.post(_PATHS[shape], content=content, headers=_JSON)
                except httpx.TransportError:
                    figures.connection_errors += 1
                    await asyncio.sleep(self.pause_after_refusal)
                    continue
                self._record(shape, readings, answer)
                if answer.status_code == 503:
                    refused = (shape, readings, content)
                    await asyncio.sleep(self.pause_after_refusal)

    def _record(self, shape: Shape, readings: list[Reading], answer: httpx.Response) -> None:
        figures = self.figures
        status = answer.status_code
        if status == 503:
            figures.answers_503 += 1
            if not answer.headers.get("retry-after", "").isdigit():
                figures.answers_503_without_retry_after += 1
            return
        if shape in BATCH_SHAPES and status == 201:
            body = answer.json()
            failed = {error["index"] for error in body["errors"]}
            if failed:  # every item sent is valid and new: any error breaks the contract
                figures.unexpected.append(f"201 with errors: {body['errors'][:2]}")
            acknowledged = [r for i, r in enumerate(readings) if i not in failed]
        elif shape not in BATCH_SHAPES and status in (200, 201):
            acknowledged = readings
        else:
            figures.unexpected.append(f"{status}: {answer.text[:300]}")
            return
        self.ledger.acknowledge(acknowledged)
        figures.readings_acknowledged += len(acknowledged)
        figures.acknowledged_at.append(time.monotonic())


_JSON = {"content-type": "application/json"}


async def send_one(
    base_url: str, fleet: Fleet, ledger: Ledger, headers: Mapping[str, str]
) -> httpx.Response:
    """POST the next reading of the fleet's first device; written down if acknowledged."""
    reading = fleet.next_reading(fleet.devices[0])
    async with httpx.AsyncClient(base_url=base_url, timeout=60, headers=headers) as client:
        answer = await client.post(_PATHS[reading.kind], json=reading.body())
    if answer.status_code in (200, 201):
        ledger.acknowledge([reading])
    return answer
