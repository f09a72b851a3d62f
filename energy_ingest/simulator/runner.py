"""Drive a simulation into the engine: back-fill as fast as it accepts, or in real time."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

import orjson

from energy_ingest.simulator.client import Delivered, EngineClient, Kind, UnexpectedAnswer
from energy_ingest.simulator.simulation import AssignmentChange, FleetSimulation, Payload

# The engine refuses readings older than its back-fill window (30 days by default): stay a
# day inside it, so a long run's first readings are not too old by the time they are sent.
MAX_HISTORY = timedelta(days=29)
MAX_BATCH_ITEMS = 10_000  # the engine's limit per batch request


@dataclass(slots=True)
class Tally:
    """What the engine answered, counted in readings (requests where it says so)."""

    sent: int = 0
    stored: int = 0
    duplicates: int = 0
    rejected: int = 0
    unavailable: int = 0
    transport_errors: int = 0
    requests: int = 0
    simulated_minutes: int = 0
    behind_seconds: float = 0.0
    interrupted: bool = False
    messages: list[str] = field(default_factory=list)
    started: float = field(default_factory=time.monotonic)
    finished: float | None = None

    def add(self, delivered: Delivered, readings: int) -> None:
        """Count one request's answer."""
        self.requests += 1
        self.sent += readings
        self.stored += delivered.stored
        self.duplicates += delivered.duplicates
        self.rejected += delivered.rejected
        self.unavailable += delivered.unavailable
        self.transport_errors += delivered.transport_errors
        if delivered.messages and len(self.messages) < 5:
            self.messages.extend(delivered.messages[: 5 - len(self.messages)])

    @property
    def errors(self) -> int:
        """Readings refused plus requests that had to be retried."""
        return self.rejected + self.unavailable + self.transport_errors

    @property
    def elapsed(self) -> float:
        """Seconds from the first reading to the last answer (or now, while running)."""
        return (self.finished or time.monotonic()) - self.started

    @property
    def rate(self) -> float:
        """Readings sent per second."""
        return self.sent / self.elapsed if self.elapsed > 0 else 0.0


Progress = Callable[[Tally], None]


def _ignore(tally: Tally) -> None:
    pass


def realtime_start(now: datetime, minutes: int, speedup: float) -> datetime:
    """Where the simulated clock starts so that it reaches `now` exactly when the run ends.

    Simulated time runs `speedup` times faster than the wall clock; starting it
    minutes × (1 − 1/speedup) in the past keeps every reading's timestamp at or before the
    real time it is sent, never in the future the engine refuses.
    """
    return now - timedelta(minutes=minutes) * (1.0 - 1.0 / speedup)


async def assign_all(
    client: EngineClient, changes: Iterable[AssignmentChange], concurrency: int
) -> None:
    """Make each assignment through the API, a few at a time."""
    slots = asyncio.Semaphore(concurrency)

    async def assign(change: AssignmentChange) -> None:
        async with slots:
            await client.assign_meter(change.vehicle_id, change.meter_id, change.at)

    try:
        async with asyncio.TaskGroup() as group:
            for change in changes:
                group.create_task(assign(change))
    except BaseExceptionGroup as failure:
        raise first_failure(failure) from None


def first_failure(group: BaseExceptionGroup[BaseException]) -> BaseException:
    """The first UnexpectedAnswer inside a task group's failure (or the group itself)."""
    for error in group.exceptions:
        if isinstance(error, BaseExceptionGroup):
            return first_failure(error)
        if isinstance(error, UnexpectedAnswer):
            return error
    return group


def _chunks(items: Sequence[Payload], size: int) -> Iterable[Sequence[Payload]]:
    for offset in range(0, len(items), size):
        yield items[offset : offset + size]


async def backfill(
    client: EngineClient,
    simulation: FleetSimulation,
    *,
    batch_size: int = 5_000,
    concurrency: int = 4,
    assign_concurrency: int = 8,
    on_progress: Progress = _ignore,
    stop: asyncio.Event | None = None,
) -> Tally:
    """Send every reading of the run through the batch endpoints, `concurrency` requests at once.

    Readings go out in the order devices deliver them (late ones after newer ones, retries
    again), meters and vehicles in separate batches of at most `batch_size`.
    """
    if not 1 <= batch_size <= MAX_BATCH_ITEMS:
        raise ValueError(f"a batch holds 1 to {MAX_BATCH_ITEMS} readings")
    tally = Tally()
    queue: asyncio.Queue[tuple[Kind, bytes, int] | None] = asyncio.Queue(maxsize=concurrency * 2)

    async def send() -> None:
        while (request := await queue.get()) is not None:
            kind, body, count = request
            tally.add(await client.send_batch(kind, body), count)
            on_progress(tally)

    async def produce(assigned: asyncio.Task[None]) -> None:
        buffers: dict[Kind, list[Payload]] = {"meter": [], "vehicle": []}
        for minute in simulation:
            if stop is not None and stop.is_set():
                tally.interrupted = True
                break
            if minute.changes:
                await assigned  # a change ends the initial assignment: that must exist first
            for change in minute.changes:
                await client.assign_meter(change.vehicle_id, change.meter_id, change.at)
            kinds: tuple[tuple[Kind, list[Payload]], ...] = (
                ("meter", minute.meters),
                ("vehicle", minute.vehicles),
            )
            for kind, items in kinds:
                buffer = buffers[kind]
                buffer.extend(items)
                if len(buffer) >= batch_size or minute.final:
                    full = len(buffer) if minute.final else len(buffer) // batch_size * batch_size
                    for chunk in _chunks(buffer[:full], batch_size):
                        await queue.put((kind, orjson.dumps(chunk), len(chunk)))
                    del buffer[:full]
            tally.simulated_minutes = min(minute.index + 1, simulation.minutes)
            # Let the senders run between minutes even while the queue has room.
            await asyncio.sleep(0)
        for _ in range(concurrency):
            await queue.put(None)

    try:
        async with asyncio.TaskGroup() as group:
            # The engine correlates when asked, not when it stores: readings may arrive before
            # their vehicle's assignment, so assigning overlaps with the first batches.
            assigned = group.create_task(
                assign_all(client, simulation.initial_assignments(), assign_concurrency)
            )
            for _ in range(concurrency):
                group.create_task(send())
            group.create_task(produce(assigned))
    except BaseExceptionGroup as failure:
        raise first_failure(failure) from None
    tally.finished = time.monotonic()
    return tally


async def realtime(
    client: EngineClient,
    simulation: FleetSimulation,
    *,
    speedup: float = 1.0,
    concurrency: int = 16,
    assign_concurrency: int = 8,
    on_progress: Progress = _ignore,
    stop: asyncio.Event | None = None,
    clock: Callable[[], float] = time.monotonic,
) -> Tally:
    """Every device posts its reading of each minute to the single-reading endpoints.

    Minute i is sent i × 60 / speedup seconds after the start. If the engine (or this
    machine) cannot keep up, the run falls behind instead of skipping readings; how far is
    reported in `behind_seconds`.
    """
    if speedup <= 0:
        raise ValueError("the speed-up must be positive")
    await assign_all(client, simulation.initial_assignments(), assign_concurrency)
    stop = stop or asyncio.Event()
    tally = Tally()
    slots = asyncio.Semaphore(concurrency)

    async def post(kind: Kind, payload: Payload) -> None:
        async with slots:
            delivered = await client.send_one(kind, orjson.dumps(payload))
        tally.add(delivered, 1)
        on_progress(tally)

    began = clock()
    try:
        for minute in simulation:
            wait = began + minute.index * 60.0 / speedup - clock()
            if wait > 0:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), timeout=wait)
            else:
                tally.behind_seconds = max(tally.behind_seconds, -wait)
            if stop.is_set():
                tally.interrupted = True
                break
            for change in minute.changes:
                await client.assign_meter(change.vehicle_id, change.meter_id, change.at)
            async with asyncio.TaskGroup() as group:
                for payload in minute.meters:
                    group.create_task(post("meter", payload))
                for payload in minute.vehicles:
                    group.create_task(post("vehicle", payload))
            tally.simulated_minutes = min(minute.index + 1, simulation.minutes)
            on_progress(tally)
    except BaseExceptionGroup as failure:
        raise first_failure(failure) from None
    tally.finished = time.monotonic()
    return tally
