"""SQL of the performance summary; each statement is bounded to one device and one window."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from energy_ingest.analytics.rows import (
    AssignmentSpan,
    GapDelta,
    MeterBucket,
    MeterSpans,
    SessionRow,
    VehicleBucket,
    VehiclePresence,
    VehicleWindow,
)
from energy_ingest.config import RegisterRules
from energy_ingest.db.pool import ReadConnection
from energy_ingest.db.sql import sql


async def get_vehicle_presence(connection: ReadConnection, vehicle_id: str) -> VehiclePresence:
    row = await connection.fetchrow(sql("get_vehicle_presence"), vehicle_id)
    assert row is not None  # a SELECT of EXISTS always returns one row
    return VehiclePresence.from_row(row)


async def summarize_vehicle_window(
    connection: ReadConnection,
    vehicle_id: str,
    start: datetime,
    end: datetime,
    rules: RegisterRules,
) -> VehicleWindow:
    row = await connection.fetchrow(
        sql("summarize_vehicle_window"),
        vehicle_id,
        start,
        end,
        rules.vehicle_max_kw,
        rules.gap_seconds,
    )
    assert row is not None  # an aggregate without GROUP BY always returns one row
    return VehicleWindow.from_row(row)


async def list_assignments_in_window(
    connection: ReadConnection, vehicle_id: str, start: datetime, end: datetime
) -> list[AssignmentSpan]:
    rows = await connection.fetch(sql("list_assignments_in_window"), vehicle_id, start, end)
    return [AssignmentSpan.from_row(row) for row in rows]


async def summarize_meter_spans(
    connection: ReadConnection,
    spans: Sequence[tuple[str, datetime, datetime]],
    rules: RegisterRules,
) -> MeterSpans:
    """Readings and AC of the meters over their spans, in one statement however many spans."""
    meter_ids = [meter_id for meter_id, _, _ in spans]
    starts = [start for _, start, _ in spans]
    ends = [end for _, _, end in spans]
    row = await connection.fetchrow(
        sql("summarize_meter_spans"),
        meter_ids,
        starts,
        ends,
        rules.meter_max_kw,
        rules.gap_seconds,
    )
    assert row is not None  # an aggregate without GROUP BY always returns one row
    return MeterSpans.from_row(row)


async def summarize_vehicle_sessions(
    connection: ReadConnection,
    vehicle_id: str,
    start: datetime,
    end: datetime,
    gap_minutes: int,
    rules: RegisterRules,
) -> list[SessionRow]:
    """The vehicle's charging sessions in [start, end), fed by its meters as `meter_feed`
    finds them (the same rules as `service.correlate`), with the meters' standby sums (energy
    as the readings book it under `rules`); one row with null session columns when there is no
    session."""
    rows = await connection.fetch(
        sql("summarize_vehicle_sessions"),
        vehicle_id,
        start,
        end,
        gap_minutes,
        rules.meter_max_kw,
        rules.vehicle_max_kw,
    )
    return [SessionRow.from_row(row) for row in rows]


async def summarize_vehicle_series(
    connection: ReadConnection,
    vehicle_id: str,
    start: datetime,
    end: datetime,
    bucket_starts: Sequence[datetime],
    rules: RegisterRules,
    whole_hours: tuple[datetime, datetime] | None = None,
) -> list[VehicleBucket]:
    """The vehicle's readings in [start, end) per bucket; buckets without one are absent.

    With `whole_hours` (the buckets' bounds are all on whole hours), the hours in it come from
    the rollups; else every reading is read from history.
    """
    if whole_hours is None:
        rows = await connection.fetch(
            sql("summarize_vehicle_series"),
            vehicle_id,
            start,
            end,
            list(bucket_starts),
            rules.vehicle_max_kw,
        )
    else:
        rows = await connection.fetch(
            sql("summarize_vehicle_series_hours"),
            vehicle_id,
            start,
            end,
            list(bucket_starts),
            *whole_hours,
            rules.vehicle_max_kw,
        )
    return [VehicleBucket.from_row(row) for row in rows]


async def summarize_meter_series(
    connection: ReadConnection,
    spans: Sequence[tuple[str, datetime, datetime]],
    bucket_starts: Sequence[datetime],
    rules: RegisterRules,
    *,
    from_rollups: bool = False,
) -> list[MeterBucket]:
    """The meters' readings over their spans per bucket; buckets without one are absent.

    `from_rollups` (the buckets' bounds are all on whole hours): each span's whole hours from
    the rollups; else every reading from history.
    """
    meter_ids = [meter_id for meter_id, _, _ in spans]
    starts = [start for _, start, _ in spans]
    ends = [end for _, _, end in spans]
    statement = (
        sql("summarize_meter_series_hours") if from_rollups else sql("summarize_meter_series")
    )
    rows = await connection.fetch(
        statement, meter_ids, starts, ends, list(bucket_starts), rules.meter_max_kw
    )
    return [MeterBucket.from_row(row) for row in rows]


async def list_vehicle_gap_deltas(
    connection: ReadConnection,
    vehicle_id: str,
    start: datetime,
    end: datetime,
    rules: RegisterRules,
) -> list[GapDelta]:
    """The vehicle's register steps in [start, end) that close a gap (none for interval data)."""
    rows = await connection.fetch(
        sql("list_vehicle_gap_deltas"),
        vehicle_id,
        start,
        end,
        rules.vehicle_max_kw,
        rules.gap_seconds,
    )
    return [GapDelta.from_row(row) for row in rows]


async def list_meter_gap_deltas(
    connection: ReadConnection,
    spans: Sequence[tuple[str, datetime, datetime]],
    rules: RegisterRules,
) -> list[GapDelta]:
    """The meters' register steps over their spans that close a gap."""
    rows = await connection.fetch(
        sql("list_meter_gap_deltas"),
        [meter_id for meter_id, _, _ in spans],
        [start for _, start, _ in spans],
        [end for _, _, end in spans],
        rules.meter_max_kw,
        rules.gap_seconds,
    )
    return [GapDelta.from_row(row) for row in rows]
