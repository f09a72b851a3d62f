"""Performance and series never scan history: only the window's partitions, only by index.

Days of history for hundreds of devices are loaded straight into the daily partitions, as
the writer would have left them (time order, all devices interleaved), then analysed so the
planner sees realistic statistics.

The window is the 24 hours ending at noon yesterday (UTC): two fully loaded days whatever the
time of the run. One ending now would, just after midnight, reach into a partition of a few
rows, where the planner rightly prefers a sequential scan of its few pages; the statements
are the same for every window.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, date, datetime, time, timedelta
from importlib import resources
from typing import Any
from zoneinfo import ZoneInfo

import asyncpg
import pytest

from energy_ingest.analytics.series import bucket_window
from energy_ingest.analytics.service import Window
from energy_ingest.config import Settings
from energy_ingest.db.partitions import (
    HISTORY_TABLES,
    create_partition_statement,
    day_of,
    partition_name,
)
from energy_ingest.db.sql import parse_named_blocks, quote_literal, sql
from tests.factories import iso
from tests.support import back_fill_rollups, start_engine

DEVICES = 250
HISTORY_DAYS = 5
# Every vehicle reports as `device-NNNN`, and so does a meter: the seed's same-id pairing.
SWITCHED_VEHICLE = "device-0007"  # its own meter, then device-0200 for the window's last 6 h
SAME_ID_VEHICLE = "device-0042"  # never assigned: falls back to meter device-0042

_LOAD_HISTORY = f"""
INSERT INTO meters (meter_id)
SELECT 'device-' || lpad(device::text, 4, '0') FROM generate_series(1, {DEVICES}) AS device;

INSERT INTO vehicles (vehicle_id)
SELECT 'device-' || lpad(device::text, 4, '0') FROM generate_series(1, {DEVICES}) AS device;

INSERT INTO meter_readings (ts, received_at, kwh_consumed_ac, voltage, meter_key)
SELECT ts, ts, 0.5, 230.0, meters.meter_key
FROM generate_series(date_trunc('day', now()) - interval '{HISTORY_DAYS} days',
                     now() - interval '1 minute', interval '10 minutes') AS ts,
     meters
ORDER BY ts, meters.meter_key;

INSERT INTO vehicle_readings (ts, received_at, soc, kwh_delivered_dc, battery_temp, vehicle_key)
SELECT ts, ts, 50.0, 0.45, 30.0, vehicles.vehicle_key
FROM generate_series(date_trunc('day', now()) - interval '{HISTORY_DAYS} days',
                     now() - interval '1 minute', interval '10 minutes') AS ts,
     vehicles
ORDER BY ts, vehicles.vehicle_key;

INSERT INTO meter_live (ts, received_at, kwh_consumed_ac, voltage, meter_id)
SELECT now(), now(), 0.5, 230.0, 'device-' || lpad(device::text, 4, '0')
FROM generate_series(1, {DEVICES}) AS device;

INSERT INTO vehicle_live (ts, received_at, soc, kwh_delivered_dc, battery_temp, vehicle_id)
SELECT now(), now(), 50.0, 0.45, 30.0, 'device-' || lpad(device::text, 4, '0')
FROM generate_series(1, {DEVICES}) AS device;
"""

_SWITCH_METERS = f"""
INSERT INTO vehicle_meter_assignments (vehicle_id, meter_id, during)
VALUES ('{SWITCHED_VEHICLE}', '{SWITCHED_VEHICLE}',
        tstzrange($1::timestamptz - interval '3 days', $1, '[)')),
       ('{SWITCHED_VEHICLE}', 'device-0200', tstzrange($1, NULL, '[)'))
"""

_INDEX_NODES = frozenset({"Index Scan", "Index Only Scan", "Bitmap Heap Scan", "Bitmap Index Scan"})

Statement = tuple[str, tuple[object, ...]]
RULES = (1000.0, 150.0)  # the power cap (kW) and the gap (s) the register rules read
POWER_CAPS = (1000.0, 1000.0)  # the vehicles' and the meters' power caps (kW)


def the_window() -> tuple[datetime, datetime]:
    """The 24 hours ending at noon yesterday, UTC."""
    midnight = datetime.combine(datetime.now(UTC).date(), time(), tzinfo=UTC)
    end = midnight - timedelta(hours=12)
    return end - timedelta(hours=24), end


async def load_history(db: asyncpg.Connection, settings: Settings, window_end: datetime) -> None:
    # The partitions the engine makes ahead of time exist too (and one more, should the run
    # cross midnight): built now, their index builds, which the statistics count as sequential
    # scans, happen before any baseline is taken.
    today = datetime.now(UTC).date()
    for offset in range(-HISTORY_DAYS, settings.partition_days_ahead + 2):
        for table in HISTORY_TABLES:
            await db.execute(create_partition_statement(table, today + timedelta(days=offset)))
    await db.execute(_LOAD_HISTORY)
    await db.execute(_SWITCH_METERS, window_end - timedelta(hours=6))
    await back_fill_rollups(db)  # as the writer and folder would have kept them


def days_between(start: datetime, end: datetime) -> Iterator[date]:
    """The UTC days that [start, end) touches."""
    day, last = day_of(start), day_of(end - timedelta(microseconds=1))
    while day <= last:
        yield day
        day += timedelta(days=1)


def partitions_between(table: str, start: datetime, end: datetime) -> set[str]:
    return {partition_name(table, day) for day in days_between(start, end)}


def analytics_statement_names() -> set[str]:
    folder = resources.files("energy_ingest.db").joinpath("queries")
    return set(parse_named_blocks(folder.joinpath("analytics.sql").read_text(encoding="utf-8")))


async def endpoint_statements(
    db: asyncpg.Connection, vehicle_id: str, start: datetime, end: datetime
) -> list[Statement]:
    """The statements the endpoint runs for one vehicle and window, with the parameters it binds."""
    rows = await db.fetch(sql("list_assignments_in_window"), vehicle_id, start, end)
    spans = [(row["meter_id"], row["clipped_from"], row["clipped_to"]) for row in rows]
    spans = spans or [(vehicle_id, start, end)]  # the same-id fallback: one span, the window
    span_arrays = tuple([span[column] for span in spans] for column in range(3))
    # The series endpoint's at its default step: the window's hourly buckets.
    thresholds = bucket_window(Window(start, end), "1h", ZoneInfo("UTC")).thresholds
    return [
        ("get_vehicle_presence", (vehicle_id,)),
        ("summarize_vehicle_window", (vehicle_id, start, end, *RULES)),
        ("list_assignments_in_window", (vehicle_id, start, end)),
        # One statement for every span: parallel arrays of meter ids, starts and ends.
        ("summarize_meter_spans", (*span_arrays, *RULES)),
        # Charging sessions and standby: the vehicle's window (its meters found in the statement),
        # the session gap in minutes, then the meters' and the vehicle's power caps.
        ("summarize_vehicle_sessions", (vehicle_id, start, end, 5, *POWER_CAPS)),
        ("summarize_vehicle_series", (vehicle_id, start, end, thresholds, RULES[0])),
        ("summarize_meter_series", (*span_arrays, thresholds, RULES[0])),
        # Buckets on whole hours: whole hours from the rollups, partial ones from history.
        (
            "summarize_vehicle_series_hours",
            (vehicle_id, start, end, thresholds, *whole_hours(start, end), RULES[0]),
        ),
        ("summarize_meter_series_hours", (*span_arrays, thresholds, RULES[0])),
        # A series spreads register steps over the gaps they close.
        ("list_vehicle_gap_deltas", (vehicle_id, start, end, *RULES)),
        ("list_meter_gap_deltas", (*span_arrays, *RULES)),
    ]


def whole_hours(start: datetime, end: datetime) -> tuple[datetime, datetime]:
    """[first whole hour, end of the last) inside [start, end) (the window has some)."""
    first = start.replace(minute=0, second=0, microsecond=0)
    first += timedelta(hours=1) if first < start else timedelta()
    return first, end.replace(minute=0, second=0, microsecond=0)


def partial_hours(start: datetime, end: datetime) -> list[tuple[datetime, datetime]]:
    """The parts of [start, end) outside its whole hours, which are read from history."""
    first, last = whole_hours(start, end)
    if first >= last:
        return [(start, end)]
    return [(a, b) for a, b in ((start, first), (last, end)) if a < b]


def expected_partitions(name: str, arguments: tuple[object, ...]) -> set[str]:
    """The partitions a statement must read: those of its own [start, end), or none."""
    if name in ("list_vehicle_gap_deltas", "list_meter_gap_deltas"):
        # Only devices that report a register have gap steps to spread: these report intervals,
        # so their live rows say no and history is not read at all.
        return set()
    if name in ("summarize_vehicle_window", "summarize_vehicle_series"):
        start, end = arguments[1], arguments[2]
        assert isinstance(start, datetime)
        assert isinstance(end, datetime)
        return partitions_between("vehicle_readings", start, end)
    if name == "summarize_vehicle_series_hours":
        # Its sums read history only for partial hours, but the soc of each bucket with data is
        # a probe of the bucket's own range: every bucket here has data.
        start, end = arguments[1], arguments[2]
        assert isinstance(start, datetime)
        assert isinstance(end, datetime)
        return partitions_between("vehicle_readings", start, end)
    if name == "summarize_vehicle_sessions":
        # The window with the session gap + 2 minutes before it and 30 s after it, for the
        # vehicle and its meters (the window's days here: it starts and ends mid-day).
        start, end = arguments[1], arguments[2]
        assert isinstance(start, datetime)
        assert isinstance(end, datetime)
        return partitions_between("vehicle_readings", start, end) | partitions_between(
            "meter_readings", start, end
        )
    if name in (
        "summarize_meter_spans",
        "summarize_meter_series",
        "summarize_meter_series_hours",
    ):
        starts, ends = arguments[1], arguments[2]
        assert isinstance(starts, list)
        assert isinstance(ends, list)
        pieces = [
            piece
            for start, end in zip(starts, ends, strict=True)
            for piece in (
                partial_hours(start, end)
                if name == "summarize_meter_series_hours"
                else [(start, end)]
            )
        ]
        return {
            partition
            for start, end in pieces
            for partition in partitions_between("meter_readings", start, end)
        }
    return set()


def _literal(value: object) -> str:
    if isinstance(value, list):
        kind = "timestamptz" if all(isinstance(item, datetime) for item in value) else "text"
        return f"ARRAY[{', '.join(_literal(item) for item in value)}]::{kind}[]"
    if isinstance(value, datetime):
        return quote_literal(value.isoformat())
    if isinstance(value, int | float):
        return repr(value)
    assert isinstance(value, str)
    return quote_literal(value)


async def explain_analyze(
    db: asyncpg.Connection, name: str, arguments: tuple[object, ...]
) -> dict[str, Any]:
    """Run statement `name` as a prepared statement (as asyncpg does) and return its plan.

    PREPARE/EXECUTE lets the session's plan_cache_mode decide between a custom plan (the
    first executions of a statement) and the generic plan asyncpg's cached statements
    switch to after five.
    """
    await db.execute(f"PREPARE explained AS {sql(name)}")
    try:
        values = ", ".join(_literal(argument) for argument in arguments)
        document = await db.fetchval(f"EXPLAIN (ANALYZE, FORMAT JSON) EXECUTE explained({values})")
    finally:
        await db.execute("DEALLOCATE explained")
    plan: dict[str, Any] = json.loads(document)[0]["Plan"]
    return plan


def plan_nodes(node: dict[str, Any]) -> Iterator[dict[str, Any]]:
    yield node
    for child in node.get("Plans", []):
        yield from plan_nodes(child)


def history_partition_of(node: dict[str, Any]) -> str | None:
    """The history partition a node reads (by its table or its index), or None.

    A node the executor pruned when its scan started (its span's days are elsewhere) is in the
    plan but never runs: it reads nothing.
    """
    if node.get("Actual Loops", 1) == 0:
        return None
    relation = node.get("Relation Name") or node.get("Index Name", "").removesuffix("_pkey")
    return relation if relation.startswith(HISTORY_TABLES) else None


@pytest.mark.parametrize("plan_cache_mode", ["force_custom_plan", "force_generic_plan"])
async def test_every_statement_reads_only_the_windows_partitions_by_index(
    db: asyncpg.Connection, settings: Settings, plan_cache_mode: str
) -> None:
    start, end = the_window()
    await load_history(db, settings, end)
    await db.execute(f"SET plan_cache_mode = {plan_cache_mode}")
    window = {partition for t in HISTORY_TABLES for partition in partitions_between(t, start, end)}

    explained: list[Statement] = []
    for vehicle_id in (SWITCHED_VEHICLE, SAME_ID_VEHICLE):
        for name, arguments in await endpoint_statements(db, vehicle_id, start, end):
            plan = await explain_analyze(db, name, arguments)
            history = [
                (node["Node Type"], partition)
                for node in plan_nodes(plan)
                if (partition := history_partition_of(node)) is not None
            ]
            context = f"{name}{arguments} under {plan_cache_mode}:\n{json.dumps(plan, indent=1)}"
            assert all(kind in _INDEX_NODES for kind, _ in history), context
            assert {partition for _, partition in history} == expected_partitions(
                name, arguments
            ), context
            assert {partition for _, partition in history} <= window, context
            explained.append((name, arguments))

    assert {name for name, _ in explained} == analytics_statement_names()
    # One meter statement per vehicle, whatever its number of spans: the switched vehicle's
    # two clipped assignments, the same-id vehicle's window.
    assert [arguments[0] for name, arguments in explained if name == "summarize_meter_spans"] == [
        [SWITCHED_VEHICLE, "device-0200"],
        [SAME_ID_VEHICLE],
    ]


_HISTORY_SCAN_COUNTERS = """
SELECT stats.relname, stats.seq_scan, coalesce(stats.idx_scan, 0) AS idx_scan
FROM pg_stat_user_tables AS stats
JOIN pg_inherits ON pg_inherits.inhrelid = stats.relid
WHERE pg_inherits.inhparent IN ('meter_readings'::regclass, 'vehicle_readings'::regclass)
"""


async def history_scan_counters(db: asyncpg.Connection) -> dict[str, tuple[int, int]]:
    """(seq_scan, idx_scan) of every history partition, as the statistics system holds them."""
    await db.execute("SELECT pg_stat_clear_snapshot()")
    rows = await db.fetch(_HISTORY_SCAN_COUNTERS)
    return {row["relname"]: (row["seq_scan"], row["idx_scan"]) for row in rows}


async def flush_statistics(pool: asyncpg.Pool) -> None:
    """Make every connection of `pool` publish the scans it has counted.

    A backend reports its counters at most once a second; after pg_stat_force_next_flush it
    reports them before it answers, so they are in pg_stat_user_tables once the call returns.
    """
    connections = [await pool.acquire() for _ in range(pool.get_max_size())]
    try:
        for connection in connections:
            await connection.execute("SELECT pg_stat_force_next_flush()")
    finally:
        for connection in connections:
            await pool.release(connection)


async def test_answering_many_requests_never_seq_scans_history(
    db: asyncpg.Connection, settings: Settings
) -> None:
    start, end = the_window()
    await load_history(db, settings, end)
    await db.execute("SELECT pg_stat_force_next_flush()")  # our own loading is in the baseline
    before = await history_scan_counters(db)

    # Compaction rebuilds closed days' indexes, which reads them whole (and counts as a scan):
    # maintenance, not the endpoint, so it is off for this count.
    async with start_engine(
        settings.model_copy(update={"compact_closed_partitions": False})
    ) as engine:
        for call in range(20):  # beyond asyncpg's five custom plans: generic plans too
            vehicle_id = (SWITCHED_VEHICLE, SAME_ID_VEHICLE)[call % 2]
            response = await engine.client.get(
                f"/v1/analytics/performance/{vehicle_id}",
                params={"from": iso(start), "to": iso(end)},
            )
            assert response.status_code == 200, response.text
            assert response.json()["dataPoints"]["meter"] > 0
            response = await engine.client.get(
                f"/v1/analytics/vehicle/{vehicle_id}/series",
                params={"from": iso(start), "to": iso(end), "step": ("1h", "15m")[call % 2]},
            )
            assert response.status_code == 200, response.text
            assert sum(bucket["dataPoints"]["meter"] for bucket in response.json()["buckets"]) > 0
            response = await engine.client.get(
                f"/v1/analytics/vehicle/{vehicle_id}/sessions",
                params={"from": iso(start), "to": iso(end)},
            )
            assert response.status_code == 200, response.text
            assert response.json()  # every reading delivers DC: sessions, one per 10 minutes
        await flush_statistics(engine.state.database.read_pool)
        await flush_statistics(engine.state.database.write_pool)
        after = await history_scan_counters(db)

    def grown(column: int) -> set[str]:
        return {
            partition
            for partition, counters in after.items()
            if counters[column] > before.get(partition, (0, 0))[column]
        }

    assert grown(0) == set(), "sequential scans of history partitions"
    # Read by index: exactly the window's partitions, none before it, today's or ahead.
    assert grown(1) == {
        partition for table in HISTORY_TABLES for partition in partitions_between(table, start, end)
    }
