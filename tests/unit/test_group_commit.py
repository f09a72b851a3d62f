"""The group-commit writer without a database: batching, shedding, failures, drain.

An in-memory sink records every batch it is handed, can hold batches on an asyncio.Event and
can fail. Time is driven by events and loop turns; flush times are either zero, an hour (so
that a test passes only if the writer did not wait) or a millisecond (so that it passes only
if the writer stopped waiting). Assertions are on counts and order, never on durations.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from datetime import UTC, datetime

import asyncpg
import pytest

from energy_ingest.db.pool import is_outage
from energy_ingest.errors import (
    DatabaseUnavailable,
    EngineError,
    Overloaded,
    ServiceUnavailable,
    TooManyNewDevices,
)
from energy_ingest.readings import Outcome, Reading, ValidMeterReading
from energy_ingest.telemetry.metrics import EngineMetrics
from energy_ingest.writer.group_commit import (
    WORTH_A_COMMIT,
    GroupCommitWriter,
    SinkAnswer,
    Submission,
    WriterConfig,
)

AN_HOUR_MS = 3_600_000.0
AT = datetime(2026, 1, 1, tzinfo=UTC)


def reading(device: str) -> Reading:
    return ValidMeterReading(device, 1.0, 230.0, AT)


def readings(*devices: str) -> list[Reading]:
    return [reading(device) for device in devices]


class MemorySink:
    """Records the device ids of each batch; holds batches while `gate` is clear."""

    def __init__(self) -> None:
        self.gate = asyncio.Event()
        self.gate.set()
        self.started: list[list[str]] = []  # every batch handed over, in order
        self.committed: list[list[str]] = []  # the batches that succeeded
        self.active = 0
        self.most_active = 0
        self.error: Exception | None = None
        self.refused_keys: set[str] = set()
        self.answer_short = False

    async def commit(self, batch: Sequence[Submission]) -> list[SinkAnswer]:
        devices = [r.device_id for submission in batch for r in submission.readings]
        self.started.append(devices)
        self.active += 1
        self.most_active = max(self.most_active, self.active)
        try:
            await self.gate.wait()
            if self.error is not None:
                raise self.error
            answers: list[SinkAnswer] = []
            stored: list[str] = []
            for submission in batch:
                if submission.quota_key in self.refused_keys:
                    answers.append(TooManyNewDevices("too many new devices", 7))
                else:
                    answers.append([Outcome.STORED] * len(submission.readings))
                    stored.extend(r.device_id for r in submission.readings)
            if self.answer_short:
                answers.pop()
            self.committed.append(stored)
            return answers
        finally:
            self.active -= 1


async def turns(count: int = 50) -> None:
    """Let the event loop run `count` times round: every ready task gets to go on."""
    for _ in range(count):
        await asyncio.sleep(0)


async def until(condition: Callable[[], bool], *, turns_allowed: int = 200) -> None:
    """Wait loop turns (no clock) until `condition` holds."""
    for _ in range(turns_allowed):
        if condition():
            return
        await asyncio.sleep(0)
    raise AssertionError("condition never became true")


@asynccontextmanager
async def running(
    sink: MemorySink, metrics: EngineMetrics | None = None, **config: float
) -> AsyncIterator[GroupCommitWriter]:
    settings = {"batch_size": 100, "flush_ms": 0.0, "queue_limit": 1_000, "concurrency": 1}
    settings.update(config)
    writer_config = WriterConfig(
        batch_size=int(settings["batch_size"]),
        flush_ms=settings["flush_ms"],
        queue_limit=int(settings["queue_limit"]),
        concurrency=int(settings["concurrency"]),
        retry_after_seconds=3,
    )
    async with GroupCommitWriter(sink, writer_config, metrics) as writer:
        yield writer


def write(writer: GroupCommitWriter, *devices: str, key: str | None = None) -> asyncio.Task[object]:
    return asyncio.create_task(writer.write(readings(*devices), quota_key=key))


def rejected(metrics: EngineMetrics, reason: str) -> float:
    value = metrics.registry.get_sample_value("eie_readings_rejected_total", {"reason": reason})
    return value or 0.0


# --- batching ---------------------------------------------------------------------------------


async def test_an_idle_writer_commits_a_lone_request_at_once() -> None:
    sink = MemorySink()
    async with running(sink, flush_ms=AN_HOUR_MS, concurrency=2) as writer:
        # An hour of flush time: this only finishes if nothing waited for the batch to fill.
        lone = write(writer, "m1")
        await until(lone.done)
        assert lone.result() == [Outcome.STORED]
    assert sink.started == [["m1"]]


async def test_requests_arriving_together_share_one_batch_in_order() -> None:
    sink = MemorySink()
    async with running(sink) as writer:
        tasks = [write(writer, f"m{i}") for i in range(5)]
        results = await asyncio.gather(*tasks)
    assert results == [[Outcome.STORED]] * 5
    assert sink.committed == [["m0", "m1", "m2", "m3", "m4"]]
    assert writer.stats.batches_committed == 1
    assert writer.stats.largest_batch == 5


async def test_batches_take_whole_requests_up_to_the_size_cap() -> None:
    sink = MemorySink()
    async with running(sink, batch_size=3) as writer:
        sink.gate.clear()
        first = write(writer, "a")
        await until(lambda: len(sink.started) == 1)
        queued = [
            write(writer, "b1"),
            write(writer, "c1", "c2"),
            write(writer, "d1"),
            write(writer, "e1"),
            write(writer, "f1", "f2"),
            write(writer, "g1", "g2", "g3", "g4"),  # over the cap alone: a batch of its own
            write(writer, "h1"),
        ]
        await until(lambda: writer.queued_readings == 12)
        sink.gate.set()
        await asyncio.gather(first, *queued)
    assert sink.committed == [
        ["a"],
        ["b1", "c1", "c2"],
        ["d1", "e1"],  # f's two would make four
        ["f1", "f2"],
        ["g1", "g2", "g3", "g4"],
        ["h1"],
    ]
    assert writer.stats.largest_batch == 4
    assert writer.queued_readings == 0


async def test_while_a_batch_commits_the_next_one_fills_until_full() -> None:
    sink = MemorySink()
    async with running(sink, batch_size=4, flush_ms=AN_HOUR_MS, concurrency=2) as writer:
        sink.gate.clear()
        first = write(writer, "a")
        await until(lambda: len(sink.started) == 1)
        some = [write(writer, "b"), write(writer, "c")]
        await turns()
        # A commit slot is free, but a batch is in flight: the writer waits for more.
        assert sink.started == [["a"]]
        more = [write(writer, "d"), write(writer, "e")]
        # Full: it goes at once, without waiting out the flush time.
        await until(lambda: len(sink.started) == 2)
        assert sink.started[1] == ["b", "c", "d", "e"]
        sink.gate.set()
        await asyncio.gather(first, *some, *more)


async def test_while_a_batch_commits_a_queue_worth_a_commit_goes_at_once() -> None:
    # Batch requests: a thousand readings already make a batch worth its transaction, so the
    # free slot takes them at once instead of waiting an hour to fill the batch size.
    sink = MemorySink()
    big = [f"m{number}" for number in range(WORTH_A_COMMIT)]
    async with running(
        sink,
        batch_size=5 * WORTH_A_COMMIT,
        queue_limit=10 * WORTH_A_COMMIT,
        flush_ms=AN_HOUR_MS,
        concurrency=2,
    ) as writer:
        sink.gate.clear()
        first = write(writer, "a")
        await until(lambda: len(sink.started) == 1)
        almost = write(writer, *big[:-1])
        rest: asyncio.Task[object] | None = None
        try:
            await turns()
            assert len(sink.started) == 1  # one short of worth a commit: it waits for more
            rest = write(writer, big[-1])
            await until(lambda: len(sink.started) == 2)
            assert sink.started[1] == big
            assert sink.most_active == 2
        finally:
            sink.gate.set()
        await asyncio.gather(first, almost, rest)


async def test_the_wait_for_more_is_bounded_by_the_flush_time() -> None:
    sink = MemorySink()
    async with running(sink, flush_ms=1.0, concurrency=2) as writer:
        sink.gate.clear()
        first = write(writer, "a")
        await until(lambda: len(sink.started) == 1)
        second = write(writer, "b")
        # The first batch never finishes meanwhile: only the flush time can end the wait.
        for _ in range(10_000):
            if len(sink.started) == 2:
                break
            await asyncio.sleep(0.001)
        assert sink.started == [["a"], ["b"]]
        sink.gate.set()
        await asyncio.gather(first, second)


@pytest.mark.parametrize("concurrency", [1, 2])
async def test_the_wait_for_more_ends_when_the_batch_in_flight_commits(concurrency: int) -> None:
    sink = MemorySink()
    async with running(sink, flush_ms=AN_HOUR_MS, concurrency=concurrency) as writer:
        sink.gate.clear()
        first = write(writer, "a")
        await until(lambda: len(sink.started) == 1)
        second = write(writer, "b")
        await turns()
        assert sink.started == [["a"]]
        # Once the batch in flight commits the writer is idle: nothing more is worth waiting
        # for, so the queued request goes at once rather than an hour later.
        sink.gate.set()
        await until(second.done)
        assert second.result() == [Outcome.STORED]
        await first
    assert sink.committed == [["a"], ["b"]]


async def test_no_more_batches_in_flight_than_the_concurrency() -> None:
    sink = MemorySink()
    async with running(sink, batch_size=1, concurrency=2) as writer:
        sink.gate.clear()
        tasks = [write(writer, f"m{i}") for i in range(5)]
        await until(lambda: len(sink.started) == 2)
        await turns()
        assert sink.active == 2
        assert writer.batches_in_flight == 2
        assert writer.queued_readings == 3
        sink.gate.set()
        await asyncio.gather(*tasks)
    assert sink.most_active == 2
    assert sink.committed == [["m0"], ["m1"], ["m2"], ["m3"], ["m4"]]


# --- shedding ----------------------------------------------------------------------------------


async def test_a_full_queue_refuses_at_once_and_counts_each_refusal_once() -> None:
    sink, metrics = MemorySink(), EngineMetrics()
    async with running(sink, metrics, queue_limit=3) as writer:
        sink.gate.clear()
        first = write(writer, "a")  # in flight: no longer in the queue
        await until(lambda: len(sink.started) == 1)
        queued = write(writer, "b", "c")
        await until(lambda: writer.queued_readings == 2)
        writer.check_capacity(1)  # fits: nothing counted
        with pytest.raises(Overloaded) as before_body:
            writer.check_capacity(2)
        with pytest.raises(Overloaded) as on_write:
            await writer.write(readings("d", "e"))
        for refusal in (before_body.value, on_write.value):
            assert refusal.status_code == 503
            assert refusal.retry_after_seconds == 3
        assert writer.stats.rejected_overload == 2
        assert rejected(metrics, "overloaded") == 4  # in readings: 2 + 2
        sink.gate.set()
        await asyncio.gather(first, queued)
    assert sink.committed == [["a"], ["b", "c"]]


# --- failures ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "error",
    [
        ConnectionResetError(),
        DatabaseUnavailable("no connection"),
        asyncpg.exceptions.ConnectionDoesNotExistError("closed"),
        asyncpg.exceptions.AdminShutdownError("terminated"),
        asyncpg.exceptions.DeadlockDetectedError("deadlock"),
    ],
)
async def test_an_outage_fails_every_request_of_the_batch_with_503(error: Exception) -> None:
    sink, metrics = MemorySink(), EngineMetrics()
    async with running(sink, metrics) as writer:
        sink.error = error
        tasks = [write(writer, "a"), write(writer, "b", "c"), write(writer, "d")]
        results = await asyncio.gather(*tasks, return_exceptions=True)
        assert len(sink.started) == 1
        for result in results:
            assert isinstance(result, DatabaseUnavailable)
            assert result.status_code == 503
            assert result.retry_after_seconds == 3
        assert rejected(metrics, "database_unavailable") == 4
        assert writer.stats.batches_failed == 1
        assert writer.stats.batches_committed == 0
        # The writer outlives the outage.
        sink.error = None
        assert await writer.write(readings("e")) == [Outcome.STORED]


@pytest.mark.parametrize(
    "error",
    [
        asyncpg.exceptions.NumericValueOutOfRangeError("overflow"),
        asyncpg.exceptions.UndefinedColumnError("no such column"),
        KeyError("meter-1"),
    ],
)
async def test_a_failing_statement_fails_every_request_of_the_batch_with_500(
    error: Exception,
) -> None:
    sink, metrics = MemorySink(), EngineMetrics()
    async with running(sink, metrics) as writer:
        sink.error = error
        results = await asyncio.gather(
            write(writer, "a"), write(writer, "b", "c"), return_exceptions=True
        )
        for result in results:
            assert type(result) is EngineError
            assert result.status_code == 500
            assert result.code == "internal_error"
        assert rejected(metrics, "internal_error") == 3
        assert rejected(metrics, "database_unavailable") == 0


async def test_a_sink_answering_the_wrong_count_fails_the_batch_rather_than_misanswer() -> None:
    sink = MemorySink()
    sink.answer_short = True
    async with running(sink) as writer:
        results = await asyncio.gather(
            write(writer, "a"), write(writer, "b"), return_exceptions=True
        )
    assert [type(result) for result in results] == [EngineError, EngineError]


async def test_a_request_the_sink_refuses_fails_alone() -> None:
    sink, metrics = MemorySink(), EngineMetrics()
    sink.refused_keys = {"greedy"}
    async with running(sink, metrics) as writer:
        fine, greedy = write(writer, "a", key="k"), write(writer, "n1", "n2", key="greedy")
        assert await fine == [Outcome.STORED]
        with pytest.raises(TooManyNewDevices):
            await greedy
    assert sink.committed == [["a"]]
    assert writer.stats.rejected_new_devices == 1
    assert writer.stats.readings_committed == 1
    assert rejected(metrics, "too_many_new_devices") == 2


@pytest.mark.parametrize(
    ("error", "outage"),
    [
        (DatabaseUnavailable("no connection"), True),
        (ConnectionRefusedError(), True),
        (TimeoutError(), True),
        (asyncpg.exceptions.InterfaceError("connection is closed"), True),
        (asyncpg.exceptions.CannotConnectNowError("starting up"), True),
        (asyncpg.exceptions.TooManyConnectionsError("full"), True),
        (asyncpg.exceptions.DiskFullError("no space"), True),
        (asyncpg.exceptions.DeadlockDetectedError("deadlock"), False),  # retryable, no outage
        (asyncpg.exceptions.NumericValueOutOfRangeError("overflow"), False),
        (asyncpg.exceptions.UniqueViolationError("duplicate key"), False),
        (ValueError("bug"), False),
    ],
)
def test_one_rule_says_when_the_database_is_unavailable(error: Exception, outage: bool) -> None:
    assert is_outage(error) is outage


# --- cancellation and drain --------------------------------------------------------------------


async def test_a_cancelled_request_keeps_its_reading_in_the_batch() -> None:
    sink = MemorySink()
    async with running(sink) as writer:
        sink.gate.clear()
        first = write(writer, "a")
        await until(lambda: len(sink.started) == 1)
        gone = write(writer, "gone")
        stays = write(writer, "b")
        await until(lambda: writer.queued_readings == 2)
        gone.cancel()  # the client went away while its reading waited for a batch
        await turns()
        assert gone.cancelled()
        sink.gate.set()
        await asyncio.gather(first, stays)
        await until(lambda: writer.stats.batches_committed == 2)
    assert sink.committed == [["a"], ["gone", "b"]]


async def test_a_request_cancelled_while_its_batch_commits_does_not_cancel_the_batch() -> None:
    sink = MemorySink()
    async with running(sink) as writer:
        sink.gate.clear()
        gone, stays = write(writer, "gone"), write(writer, "b")
        await until(lambda: len(sink.started) == 1)
        gone.cancel()
        await turns()
        sink.gate.set()
        assert await stays == [Outcome.STORED]
    assert sink.committed == [["gone", "b"]]


async def test_leaving_commits_everything_accepted_and_refuses_what_comes_after() -> None:
    sink = MemorySink()
    writer = GroupCommitWriter(sink, WriterConfig(batch_size=2, flush_ms=0.0, concurrency=1))
    async with writer:
        sink.gate.clear()
        accepted = [write(writer, f"m{i}") for i in range(5)]
        await until(lambda: len(sink.started) == 1)
        closing = asyncio.create_task(writer.close())
        await turns()
        with pytest.raises(ServiceUnavailable):
            await writer.write(readings("late"))
        assert not closing.done()
        sink.gate.set()
        await closing
        assert not writer.running
        assert [task.result() for task in accepted] == [[Outcome.STORED]] * 5
    assert sink.committed == [["m0", "m1"], ["m2", "m3"], ["m4"]]
    assert writer.stats.readings_committed == 5


async def test_writer_config_is_built_from_the_settings() -> None:
    from energy_ingest.config import Settings

    settings = Settings(
        writer_batch_size=7,
        writer_flush_ms=3.5,
        writer_queue_limit=11,
        writer_concurrency=4,
        retry_after_seconds=9,
    )
    assert WriterConfig.from_settings(settings) == WriterConfig(
        batch_size=7, flush_ms=3.5, queue_limit=11, concurrency=4, retry_after_seconds=9
    )
