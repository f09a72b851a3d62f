"""SQL of the fleet answer: one statement sums, judges, counts, sorts and pages the fleet."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from decimal import Decimal

from energy_ingest.analytics.charging import POWER_CLASSES
from energy_ingest.analytics.fleet.rows import FleetResult, FleetRow, FleetTotals
from energy_ingest.config import SplitRules
from energy_ingest.db.pool import ReadConnection
from energy_ingest.db.sql import sql

_HOUR = timedelta(hours=1)


def _day_bounds(
    start: datetime | None, end: datetime | None
) -> tuple[datetime | None, int | None, datetime | None, int | None]:
    """Whole hours [start, end) as the day rows read them: the first day's UTC midnight and its
    first hour, the last day's midnight and the end of its last hour (1–24)."""
    if start is None or end is None:
        return None, None, None, None
    first, last = start.astimezone(UTC), (end - _HOUR).astimezone(UTC)
    return _midnight(first), first.hour, _midnight(last), last.hour + 1


def _midnight(moment: datetime) -> datetime:
    return moment.replace(hour=0, minute=0, second=0, microsecond=0)


async def fleet_performance(
    connection: ReadConnection,
    start: datetime,
    end: datetime,
    whole_start: datetime | None,
    whole_end: datetime | None,
    *,
    threshold: Decimal,
    silent_before: datetime,
    statuses: list[str] | None,
    sort: str,
    descending: bool,
    after: tuple[Decimal | None, str] | None,
    limit: int | None,
    histogram_edges: Sequence[Decimal] | None,
    rules: SplitRules,
    power_classes: bool,
) -> list[FleetResult]:
    """The summary with each row of the page, in order (at least one row: the summary)."""
    async with connection.transaction(readonly=True):
        await connection.execute(sql("plan_fleet_with_hash_joins"))
        await connection.execute(sql("plan_fleet_without_jit"))
        rows = await connection.fetch(
            sql("fleet_performance"),
            start,
            end,
            whole_start,
            whole_end,
            threshold,
            silent_before,
            statuses,
            sort,
            descending,
            after[0] if after is not None else None,
            after[1] if after is not None else None,
            limit,
            *_day_bounds(whole_start, whole_end),
            list(histogram_edges) if histogram_edges is not None else None,
            rules.registers.meter_max_kw,
            rules.registers.vehicle_max_kw,
            rules.session_gap_minutes,
            rules.registers.gap_seconds,
            power_classes,
            [power_class.up_to_kw for power_class in POWER_CLASSES],
            [power_class.threshold for power_class in POWER_CLASSES],
            [power_class.name for power_class in POWER_CLASSES],
        )
    return [
        FleetResult(
            FleetTotals.from_row(row),
            FleetRow.from_row(row) if row["vehicle_id"] is not None else None,
        )
        for row in rows
    ]
