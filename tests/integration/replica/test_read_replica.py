"""Analytics on a real streaming replica: reads there, writes on the primary, staleness bounded
(beyond the bound: the primary, and the answer says so), no query cancelled by replay."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import asyncpg
import httpx
import pytest

from energy_ingest.config import Settings
from energy_ingest.wire import format_timestamp
from tests.factories import meter_reading
from tests.figures import RecordFigures
from tests.integration.replica.cluster import Pair, binaries_available, primary_and_standby
from tests.support import start_engine

_UNAVAILABLE = binaries_available()
pytestmark = pytest.mark.skipif(_UNAVAILABLE is not None, reason=_UNAVAILABLE or "")

BOUND = 1.0  # seconds: EIE_READ_MAX_STALENESS_SECONDS for these tests
LIVE = "/v1/analytics/meter/replica-meter/live"


@pytest.fixture(scope="module")
def pair() -> Iterator[Pair]:
    with primary_and_standby() as running:
        yield running


def _staleness(header: str) -> float:
    fields = dict(part.strip().split("=", 1) for part in header.split(";")[1:])
    return float(fields["staleness"])


async def _until(
    request: Callable[[], Awaitable[httpx.Response]],
    done: Callable[[httpx.Response], bool],
    seen: list[httpx.Response],
) -> httpx.Response:
    deadline = time.monotonic() + 30  # liveness only
    while True:
        answer = await request()
        seen.append(answer)
        if done(answer):
            return answer
        assert time.monotonic() < deadline, f"never: last {answer.status_code} {answer.headers}"
        await asyncio.sleep(0.05)


async def test_reads_on_the_replica_within_the_bound_else_on_the_primary(
    pair: Pair, tmp_path: Path, record_figures: RecordFigures
) -> None:
    settings = Settings(
        database_url=pair.primary_url,
        read_database_url=pair.standby_url,
        read_max_staleness_seconds=BOUND,
        read_replica_check_seconds=0.1,
        data_dir=tmp_path / "unused",
        auth_enabled=False,
    )
    standby = await asyncpg.connect(pair.standby_url)
    seen: list[httpx.Response] = []
    try:
        async with start_engine(settings) as engine:
            client = engine.client
            at = datetime.now(UTC).replace(microsecond=0) - timedelta(minutes=10)
            first = meter_reading(meter_id="replica-meter", kwh=1.0, voltage=230.0, at=at)
            assert (await client.post("/v1/ingest/meter", json=first)).status_code == 201

            # Read back on the replica, once it has replayed the write.
            answer = await _until(
                lambda: client.get(LIVE),
                lambda a: a.status_code == 200 and a.headers["read-source"].startswith("replica"),
                seen,
            )
            assert answer.json()["lastUpdatedAt"] == format_timestamp(at)
            sessions = {
                row["application_name"]
                for row in await standby.fetch(
                    "SELECT application_name FROM pg_stat_activity"
                    " WHERE datname = current_database()"
                )
            }
            assert "energy-ingest replica reader" in sessions
            assert not sessions & {"energy-ingest writer", "energy-ingest admin"}
            with pytest.raises(asyncpg.ReadOnlySQLTransactionError):
                await standby.execute("CREATE TABLE written_here (n integer)")
            fleet = await client.get("/v1/analytics/fleet/performance")
            assert fleet.status_code == 200
            assert fleet.headers["read-source"].startswith("replica")

            # Replay paused: the replica falls behind; past the bound the primary answers.
            await standby.execute("SELECT pg_wal_replay_pause()")
            paused_at = time.monotonic()
            newer = meter_reading(
                meter_id="replica-meter", kwh=2.0, voltage=231.0, at=at + timedelta(minutes=1)
            )
            assert (await client.post("/v1/ingest/meter", json=newer)).status_code == 201
            answer = await _until(
                lambda: client.get(LIVE),
                lambda a: a.headers["read-source"].startswith("primary"),
                seen,
            )
            moved_after = time.monotonic() - paused_at
            header = answer.headers["read-source"]
            assert 'reason="replica-behind"' in header
            assert f"bound={BOUND:g}" in header
            # Past the bound (the header writes the staleness to 2 decimals: 1.004 reads 1.00).
            assert _staleness(header) >= BOUND
            assert answer.json()["lastUpdatedAt"] == format_timestamp(at + timedelta(minutes=1))
            assert (
                await standby.fetchval(  # the replica itself still has the older one
                    "SELECT ts FROM meter_live WHERE meter_id = 'replica-meter'"
                )
                == at
            )
            fleet = await client.get("/v1/analytics/fleet/performance")
            assert fleet.headers["read-source"].startswith("primary")

            # Replay resumed: back on the replica, with the newer reading.
            await standby.execute("SELECT pg_wal_replay_resume()")
            answer = await _until(
                lambda: client.get(LIVE),
                lambda a: a.headers["read-source"].startswith("replica"),
                seen,
            )
            assert answer.json()["lastUpdatedAt"] == format_timestamp(at + timedelta(minutes=1))
            metrics = (await client.get("/metrics")).text
            assert 'eie_read_answers_total{reason="",source="replica"}' in metrics
            assert 'eie_read_answers_total{reason="replica-behind",source="primary"}' in metrics
            assert "eie_read_replica_staleness_seconds " in metrics
    finally:
        # Never leave replay paused for the module's other tests, whatever failed above.
        await standby.execute("SELECT pg_wal_replay_resume()")
        await standby.close()

    # Every answer read on the replica was within the bound when it was read.
    replica_answers = [a for a in seen if a.headers["read-source"].startswith("replica")]
    assert replica_answers
    assert all(_staleness(a.headers["read-source"]) <= BOUND for a in replica_answers)
    record_figures(
        {
            "answers read on the replica": len(replica_answers),
            "answers read on the primary (replica behind)": len(seen) - len(replica_answers),
            "replay paused → reads on the primary after (s)": moved_after,
            "largest staleness of a replica answer (s)": max(
                _staleness(a.headers["read-source"]) for a in replica_answers
            ),
        }
    )


async def _hold_a_read_while_the_primary_conflicts(pair: Pair) -> tuple[int, int] | BaseException:
    """A read-only transaction on the standby (an analytics query's snapshot and locks) spans
    a DELETE + VACUUM and a DROP TABLE on the primary: both replay conflicts. Returns the two
    counts it read, or the error that cancelled it."""
    primary = await asyncpg.connect(pair.primary_url)
    standby = await asyncpg.connect(pair.standby_url)
    try:
        await primary.execute(
            "CREATE TABLE conflict_probe AS SELECT n FROM generate_series(1, 10000) AS n"
        )
        deadline = time.monotonic() + 30
        while await standby.fetchval("SELECT to_regclass('conflict_probe')") is None:
            assert time.monotonic() < deadline, "the standby never replayed the table"
            await asyncio.sleep(0.05)
        try:
            async with standby.transaction(isolation="repeatable_read", readonly=True):
                before = await standby.fetchval("SELECT count(*) FROM conflict_probe")
                await primary.execute("DELETE FROM conflict_probe")
                await primary.execute("VACUUM conflict_probe")
                await primary.execute("DROP TABLE conflict_probe")
                await asyncio.sleep(1.5)  # replay reaches the conflicts meanwhile
                after = await standby.fetchval("SELECT count(*) FROM conflict_probe")
            return before, after
        except (asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
            return exc
    finally:
        await primary.execute("DROP TABLE IF EXISTS conflict_probe")
        await primary.close()
        if not standby.is_closed():
            await standby.close()


async def _conflicts(pair: Pair) -> int:
    standby = await asyncpg.connect(pair.standby_url)
    try:
        total: int = await standby.fetchval(
            "SELECT confl_tablespace + confl_lock + confl_snapshot + confl_bufferpin"
            " + confl_deadlock FROM pg_stat_database_conflicts"
            " WHERE datname = current_database()"
        )
        return total
    finally:
        await standby.close()


async def test_no_query_on_the_replica_is_cancelled_by_replay(pair: Pair) -> None:
    # With the standby settings the README asks for, the read runs to its end.
    outcome = await _hold_a_read_while_the_primary_conflicts(pair)
    assert outcome == (10_000, 10_000), outcome
    assert await _conflicts(pair) == 0

    # The same with PostgreSQL's defaults made strict (no feedback, no waiting): cancelled.
    # This shows the test would catch a cancellation, and that the settings are what prevent it.
    pair.configure_standby({"hot_standby_feedback": "off", "max_standby_streaming_delay": "0"})
    try:
        outcome = await _hold_a_read_while_the_primary_conflicts(pair)
        assert isinstance(outcome, BaseException), outcome
        deadline = time.monotonic() + 10
        while await _conflicts(pair) == 0:  # counted by the standby a moment later
            assert time.monotonic() < deadline, "the cancellation was never counted"
            await asyncio.sleep(0.1)
    finally:
        pair.configure_standby({"hot_standby_feedback": "on", "max_standby_streaming_delay": "-1"})
