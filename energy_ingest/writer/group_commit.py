"""Group commit: a bounded queue, flushed on size, time or idleness; one transaction a batch.

The writer knows nothing of SQL: it hands each batch to a `BatchSink` (writer/postgres.py holds
the engine's, PostgresSink), so batching, shedding, drain and failure fan-out are tested without
a database (tests/unit/test_group_commit.py).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass
from types import TracebackType
from typing import TYPE_CHECKING, Protocol

import asyncpg

from energy_ingest.db.pool import is_outage
from energy_ingest.errors import (
    DatabaseUnavailable,
    EngineError,
    Overloaded,
    ServiceUnavailable,
    TooManyNewDevices,
)
from energy_ingest.readings import Outcome, Reading
from energy_ingest.telemetry.metrics import EngineMetrics

if TYPE_CHECKING:
    from energy_ingest.config import Settings

logger = logging.getLogger(__name__)


def is_retryable(error: BaseException) -> bool:
    """Whether a batch that failed with `error` may succeed if sent again: the database is
    unavailable (db.pool.is_outage, the one outage rule), or it rolled the batch back for
    another transaction (class 40: deadlock, serialization failure). Anything else (a statement
    that always fails, a bug) would fail the same way on every retry."""
    if isinstance(error, ServiceUnavailable) or is_outage(error):
        return True
    sqlstate = (
        getattr(error, "sqlstate", None) if isinstance(error, asyncpg.PostgresError) else None
    )
    return str(sqlstate or "").startswith("40")


@dataclass(frozen=True, slots=True)
class Submission:
    """One request's readings as the sink sees them, with the key charged for its new devices."""

    readings: Sequence[Reading]
    quota_key: str | None


SinkAnswer = list[Outcome] | EngineError
"""Per submission: its outcomes (one per reading, in order), or why it alone was refused."""


class BatchSink(Protocol):
    """Where the writer's batches go: one method, one transaction a call."""

    async def commit(self, batch: Sequence[Submission]) -> list[SinkAnswer]:
        """Write the submissions of `batch` together; one answer per submission, in order.

        A submission the sink refuses on its own (TooManyNewDevices) gets its error as answer
        and nothing of it is written; the others are committed. Raising means nothing of the
        batch was acknowledged: the writer fails every submission of it (503 if `is_retryable`,
        else 500).
        """
        ...


WORTH_A_COMMIT = 1_000
"""Readings that make a batch worth committing at once while another batch commits: a
transaction's fixed cost (its round trips and its WAL flush) spread over a thousand readings is
a few microseconds each. Below it the writer waits a little for more (`_gather_more`); at it, a
free commit slot goes to work at once, so batch requests keep every connection busy."""


@dataclass(frozen=True, slots=True)
class WriterConfig:
    """The writer's knobs (the writer_* settings and retry_after_seconds)."""

    batch_size: int = 5_000
    flush_ms: float = 20.0
    queue_limit: int = 100_000
    concurrency: int = 2
    retry_after_seconds: int = 1

    @classmethod
    def from_settings(cls, settings: Settings) -> WriterConfig:
        return cls(
            batch_size=settings.writer_batch_size,
            flush_ms=settings.writer_flush_ms,
            queue_limit=settings.writer_queue_limit,
            concurrency=settings.writer_concurrency,
            retry_after_seconds=settings.retry_after_seconds,
        )


@dataclass(slots=True)
class _Request:
    readings: Sequence[Reading]
    future: asyncio.Future[list[Outcome]]
    quota_key: str | None


@dataclass(slots=True)
class WriterStats:
    """Counters the tests read; never reset. Outcome counts are in the Prometheus metrics."""

    batches_committed: int = 0
    readings_committed: int = 0
    batches_failed: int = 0
    largest_batch: int = 0
    rejected_overload: int = 0
    rejected_new_devices: int = 0
    device_lookups: int = 0  # batches that met a device the key cache did not hold


class GroupCommitWriter:
    """Gathers the readings of concurrent requests and commits them together.

    `write()` resolves only after the reading's batch committed, so an answer built on it is
    durable. The queue is bounded in readings; past the bound `write()` raises Overloaded at
    once instead of buffering without limit. Used as an async context manager: entering starts
    the flush loop, leaving stops intake, drains the queue and waits for batches in flight.
    """

    def __init__(
        self,
        sink: BatchSink,
        config: WriterConfig,
        metrics: EngineMetrics | None = None,
        *,
        stats: WriterStats | None = None,
    ) -> None:
        self._sink = sink
        self._metrics = metrics or EngineMetrics()
        self._batch_size = config.batch_size
        self._worth_a_commit = min(config.batch_size, WORTH_A_COMMIT)
        self._flush_seconds = config.flush_ms / 1000
        self._queue_limit = config.queue_limit
        self._retry_after = config.retry_after_seconds
        self._slots = asyncio.Semaphore(config.concurrency)
        self._queue: deque[_Request] = deque()
        self._queued_readings = 0
        self._arrival = asyncio.Event()
        self._in_flight: set[asyncio.Task[None]] = set()
        self._loop_task: asyncio.Task[None] | None = None
        self._closing = False
        # Shared with the sink when it counts something of its own (device lookups).
        self.stats = stats or WriterStats()

    # --- lifecycle -----------------------------------------------------------------------------

    async def __aenter__(self) -> GroupCommitWriter:
        self._loop_task = asyncio.create_task(self._run(), name="group-commit-writer")
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.close()

    async def close(self) -> None:
        """Refuse new readings, commit everything already accepted, stop the loop."""
        self._closing = True
        self._arrival.set()
        if self._loop_task is not None:
            await asyncio.gather(self._loop_task, return_exceptions=True)
        if self._in_flight:
            await asyncio.gather(*self._in_flight, return_exceptions=True)
        while self._queue:  # only left if the loop died: fail them rather than leave them hanging
            request = self._queue.popleft()
            if not request.future.done():
                request.future.set_exception(ServiceUnavailable("the engine is shutting down"))

    @property
    def running(self) -> bool:
        """False once the flush loop has stopped or died: /readyz reports it."""
        return self._loop_task is not None and not self._loop_task.done()

    @property
    def queued_readings(self) -> int:
        """Readings accepted and waiting for a batch (not yet being committed)."""
        return self._queued_readings

    @property
    def batches_in_flight(self) -> int:
        """Batches being committed right now."""
        return len(self._in_flight)

    # --- intake --------------------------------------------------------------------------------

    def check_capacity(self, readings: int = 1) -> None:
        """Overloaded now if `readings` more would not fit (see ReadingWriter).

        The one overload check, and the one place refusals are counted: a request refused
        before its body is read counts as one reading.
        """
        if self._queued_readings + readings > self._queue_limit:
            self.stats.rejected_overload += 1
            self._metrics.rejected.labels("overloaded").inc(readings)
            raise Overloaded(
                f"the write queue is full ({self._queued_readings} readings waiting); retry later",
                self._retry_after,
            )

    async def write(
        self, readings: Sequence[Reading], *, quota_key: str | None = None
    ) -> list[Outcome]:
        """Queue `readings` and wait until their batch committed; one outcome per reading.

        The new devices among them count against `quota_key`'s quota (the API key; None when
        authentication is off): past it, TooManyNewDevices and nothing of them is written.
        """
        if not readings:
            return []
        if self._closing or not self.running:
            raise ServiceUnavailable("the engine is shutting down", self._retry_after)
        self.check_capacity(len(readings))
        future: asyncio.Future[list[Outcome]] = asyncio.get_running_loop().create_future()
        self._queue.append(_Request(readings, future, quota_key))
        self._queued_readings += len(readings)
        self._metrics.queue_readings.set(self._queued_readings)
        self._arrival.set()
        # Shielded: a client that disconnects must not cancel a batch other requests share.
        return await asyncio.shield(future)

    # --- the flush loop ------------------------------------------------------------------------

    async def _run(self) -> None:
        while True:
            if not self._queue:
                if self._closing:
                    return
                self._arrival.clear()
                await self._arrival.wait()
                continue
            await self._slots.acquire()
            try:
                await self._gather_more()
                batch = self._take_batch()
            except BaseException:
                self._slots.release()
                raise
            task = asyncio.create_task(self._flush(batch), name="group-commit-flush")
            self._in_flight.add(task)
            task.add_done_callback(self._in_flight.discard)

    async def _gather_more(self) -> None:
        """Wait a little for more readings, but only while another batch is being committed
        and the queue holds too few to be worth a commit of its own.

        When nothing is in flight the writer is idle and flushes at once: a lone request pays
        no batching delay. While a batch commits, new readings pile up by themselves; a few of
        them (single readings) wait at most writer_flush_ms for more, towards
        writer_batch_size, since a commit of a handful costs nearly what a commit of hundreds
        does. A queue already worth a commit (WORTH_A_COMMIT readings, or the batch size if
        smaller) goes at once: waiting would leave this slot's connection idle while the other
        commits, as batch requests of a thousand readings did (one connection busy of two).
        """
        if not self._in_flight or self._flush_seconds <= 0 or self._closing:
            return
        deadline = time.monotonic() + self._flush_seconds
        while self._queued_readings < self._worth_a_commit and not self._closing:
            remaining = deadline - time.monotonic()
            if remaining <= 0 or not self._in_flight:
                return
            self._arrival.clear()
            try:
                await asyncio.wait_for(self._arrival.wait(), timeout=remaining)
            except TimeoutError:
                return

    def _take_batch(self) -> list[_Request]:
        """Whole requests, oldest first, up to writer_batch_size readings (at least one request)."""
        batch: list[_Request] = []
        size = 0
        while self._queue:
            next_size = len(self._queue[0].readings)
            if batch and size + next_size > self._batch_size:
                break
            request = self._queue.popleft()
            batch.append(request)
            size += next_size
        self._queued_readings -= size
        self._metrics.queue_readings.set(self._queued_readings)
        return batch

    async def _flush(self, batch: list[_Request]) -> None:
        try:
            started = time.perf_counter()
            try:
                answers = await self._sink.commit(
                    [Submission(request.readings, request.quota_key) for request in batch]
                )
                _check_answers(batch, answers)
            except Exception as exc:
                self._fail_batch(batch, exc)
                return
            # Answer first: the batch is committed, nothing after this may keep a request waiting.
            readings: list[Reading] = []
            outcomes: list[Outcome] = []
            for request, answer in zip(batch, answers, strict=True):
                if isinstance(answer, EngineError):
                    self._refuse(request, answer)
                    continue
                if not request.future.done():
                    request.future.set_result(answer)
                readings.extend(request.readings)
                outcomes.extend(answer)
            if not readings:
                return
            try:
                self._metrics.batch_commit_seconds.observe(time.perf_counter() - started)
                self._metrics.batch_readings.observe(len(readings))
                self._metrics.count_outcomes(readings, outcomes)
                self._record(outcomes)
            except Exception:
                logger.exception("recording the metrics of a committed batch failed")
        finally:
            # No longer in flight as of now, not when the task's done callback runs later: the
            # loop may already hold the freed slot. And wake it: a batch waiting to fill only
            # waits while another one commits, so it must go now rather than at its deadline.
            task = asyncio.current_task()
            if task is not None:
                self._in_flight.discard(task)
            self._slots.release()
            self._arrival.set()

    def _fail_batch(self, batch: list[_Request], exc: Exception) -> None:
        """Nothing of `batch` was acknowledged: every request of it fails, none succeeds."""
        readings = sum(len(request.readings) for request in batch)
        self.stats.batches_failed += 1
        self._metrics.batches_failed.inc()
        error: EngineError
        if is_retryable(exc):
            self._metrics.rejected.labels("database_unavailable").inc(readings)
            logger.warning("batch of %d readings failed: %r", readings, exc)
            error = DatabaseUnavailable(
                "the database failed while writing this batch; nothing of it was"
                " acknowledged, retry later",
                self._retry_after,
            )
        else:
            # Once per batch, with the traceback; the answer names nothing of the batch,
            # which other clients' readings share.
            self._metrics.rejected.labels("internal_error").inc(readings)
            logger.exception("batch of %d readings failed unexpectedly", readings)
            error = EngineError("internal error while writing this batch; nothing of it was stored")
        for request in batch:
            if not request.future.done():
                request.future.set_exception(error)

    def _refuse(self, request: _Request, error: EngineError) -> None:
        """The sink refused this request alone (nothing of it written)."""
        if isinstance(error, TooManyNewDevices):
            self.stats.rejected_new_devices += 1
        self._metrics.rejected.labels(error.code).inc(len(request.readings))
        if not request.future.done():
            request.future.set_exception(error)

    def _record(self, outcomes: list[Outcome]) -> None:
        stats = self.stats
        stats.batches_committed += 1
        stats.readings_committed += len(outcomes)
        stats.largest_batch = max(stats.largest_batch, len(outcomes))


def _check_answers(batch: list[_Request], answers: list[SinkAnswer]) -> None:
    """A sink that answers the wrong number of submissions or readings is a bug: fail the batch
    (500) rather than hand readings someone else's outcomes."""
    if len(answers) != len(batch) or any(
        not isinstance(answer, EngineError) and len(answer) != len(request.readings)
        for request, answer in zip(batch, answers, strict=False)
    ):
        raise RuntimeError("the batch sink answered a batch with the wrong number of outcomes")
