"""Every vehicle's performance over one window, ranked and paged, with a fleet summary.

The numbers of a row are those `GET /v1/analytics/performance/{vehicleId}` answers for the
same window: the same correlation rule and the same number-and-status code (analytics.service),
fed with the same exact sums, here taken from the rollups for whole hours and from history only
for partial hours. One statement (fleet.sql) sums, judges, counts, sorts and pages every
vehicle; only the rows of the page are turned into answers here.
"""

from __future__ import annotations

import base64
import binascii
import csv
import decimal
import io
import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any, Literal, get_args

from energy_ingest.analytics import charging
from energy_ingest.analytics.charging import ThresholdMode
from energy_ingest.analytics.fleet import repository
from energy_ingest.analytics.fleet.rows import FleetRow, FleetTotals
from energy_ingest.analytics.rows import source_of
from energy_ingest.analytics.schemas import Status
from energy_ingest.analytics.service import (
    HOUR,
    Window,
    floor_hour,
    performance_numbers,
    resolve_window,
    whole_hours,
)
from energy_ingest.config import DEFAULT_SPLIT_RULES, SplitRules
from energy_ingest.db.pool import ReadConnection
from energy_ingest.errors import FieldProblem, ValidationFailed
from energy_ingest.wire import format_timestamp, parse_timestamp

SILENT_AFTER = timedelta(minutes=15)
"""A vehicle whose newest reading is older than this counts as silent in the summary."""

SortKey = Literal["efficiency", "energyLossKwh", "energyConsumedAc", "vehicleId", "lastSeen"]
Order = Literal["asc", "desc"]
SORT_KEYS: tuple[str, ...] = get_args(SortKey)
ORDERS: tuple[str, ...] = get_args(Order)
STATUSES: tuple[str, ...] = get_args(Status)
HISTOGRAM_EDGES = tuple(Decimal(50 + 5 * step) / 100 for step in range(13))
"""The efficiency histogram's bin edges: 50 %, 55 %, … 110 %."""
DEFAULT_LIMIT = 100
MAX_LIMIT = 1000


# --- the window --------------------------------------------------------------------------------


def resolve_fleet_window(
    start: datetime | None, end: datetime | None, now: datetime, max_span: timedelta
) -> Window:
    """The per-vehicle endpoint's rules, but the default window is aligned to whole hours.

    Without `from` and `to`: the 24 whole UTC hours ending with the current one, [h − 23 h,
    h + 1 h) where h is the current hour. It holds every reading up to now and is answered from
    rollups alone; `period` says exactly which window it is. Given bounds are answered exactly.
    """
    if start is None and end is None:
        end = floor_hour(now) + HOUR
        return Window(end - timedelta(hours=24), end)
    return resolve_window(start, end, now, max_span)


# --- the fleet's rows --------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Listing:
    """Which rows, in which order: what a cursor must keep from page to page."""

    statuses: tuple[str, ...] | None
    sort: str
    order: str


Position = tuple[Decimal | None, str]
"""Where a row stands in its listing: the sort's exact value (as fleet.sql orders by it, null
last) and the vehicle id."""


@dataclass(frozen=True, slots=True)
class FleetPage:
    """The summary of every vehicle over `window`, and the listing's rows after a position."""

    window: Window
    summary: dict[str, Any]
    rows: list[dict[str, Any]]
    next_after: Position | None
    """The last row's position when more rows follow it."""


async def fleet_page(
    connection: ReadConnection,
    window: Window,
    threshold: float,
    now: datetime,
    listing: Listing,
    limit: int | None,
    after: Position | None = None,
    *,
    histogram: bool = False,
    rules: SplitRules = DEFAULT_SPLIT_RULES,
    threshold_mode: ThresholdMode = "flat",
) -> FleetPage:
    """The fleet summary and up to `limit` rows of the listing after `after` (all with None);
    with `histogram`, the summary counts the vehicles by efficiency bin too."""
    whole_start, whole_end = whole_hours(window) or (None, None)
    rows = await repository.fleet_performance(
        connection,
        window.start,
        window.end,
        whole_start,
        whole_end,
        threshold=Decimal(str(threshold)),  # 0.85 as written, not its binary neighbour
        silent_before=now - SILENT_AFTER,
        statuses=list(listing.statuses) if listing.statuses is not None else None,
        sort=listing.sort,
        descending=listing.order == "desc",
        after=after,
        limit=None if limit is None else limit + 1,
        histogram_edges=HISTOGRAM_EDGES if histogram else None,
        rules=rules,
        power_classes=threshold_mode == "power-class",
    )
    summary = _summary(rows[0].summary)
    found = [row for row in rows if row.vehicle is not None]
    more = limit is not None and len(found) > limit
    chosen = found[:limit] if limit is not None else found
    minutes = Decimal((window.end - window.start) / timedelta(minutes=1))
    answers = [_answer(row.vehicle, minutes, threshold) for row in chosen if row.vehicle]
    last = chosen[-1].vehicle if more and chosen else None
    return FleetPage(
        window,
        summary,
        answers,
        (last.sort_key, last.vehicle_id) if last is not None else None,
    )


def _answer(row: FleetRow, window_minutes: Decimal, threshold: float) -> dict[str, Any]:
    """One vehicle's row of the answer, with the per-vehicle endpoint's numbers."""
    if row.has_assignments:
        correlation = "assignment"
    elif row.same_id_meter_usable:
        correlation = "same-id"
    else:
        correlation = "none"
    return {
        "vehicleId": row.vehicle_id,
        **performance_numbers(
            ac=row.ac,
            dc=row.dc,
            vehicle_points=row.vehicle_points,
            meter_points=row.meter_points,
            average_battery_temp=row.average_battery_temp,
            threshold=threshold,
        ),
        # The statement judged the charging minutes when they drew AC (fleet.sql, verdicts).
        "status": row.status,
        "meterIds": list(row.meter_ids),
        "correlation": correlation,
        "dataPoints": {"vehicle": row.vehicle_points, "meter": row.meter_points},
        "completeness": {
            "vehicle": _ratio(row.vehicle_points, window_minutes),
            "meter": (
                _ratio(row.meter_points, row.expected_minutes)
                if row.expected_minutes is not None
                else None
            ),
        },
        "lastSeen": row.last_seen,
        "dataQuality": _data_quality(row),
        "charging": {
            "energyConsumedAc": float(row.charging_ac),
            "energyDeliveredDc": float(row.charging_dc),
            "efficiency": (
                float(row.charging_dc / row.charging_ac) if row.charging_ac > 0 else None
            ),
            "minutes": row.charging_minutes,
            "sessions": row.sessions or 0,
        },
        "standby": charging.standby_answer_of(
            row.standby_ac or Decimal(0), row.standby_minutes or 0
        ),
        "threshold": float(row.threshold),
        "thresholdRule": row.threshold_rule,
    }


def _data_quality(row: FleetRow) -> dict[str, Any]:
    """The per-vehicle answer's `dataQuality` (analytics.service.data_quality), from the
    statement's sums over the window's hours."""
    reconciled = [
        side for side in (row.ac_reconciliation_kwh, row.dc_reconciliation_kwh) if side is not None
    ]
    return {
        "acSource": source_of(row.ac_interval_readings or 0, row.ac_register_readings or 0),
        "dcSource": source_of(row.dc_interval_readings or 0, row.dc_register_readings or 0),
        "gaps": row.gaps or 0,
        "gapMinutes": round(row.gap_minutes or 0.0, 2),
        "resets": row.resets or 0,
        "glitches": row.glitches or 0,
        "rejectedDeltas": row.rejected_deltas or 0,
        "reconciliationKwh": float(sum(reconciled, Decimal(0))) if reconciled else None,
        "acReconciliationKwh": _float(row.ac_reconciliation_kwh),
        "dcReconciliationKwh": _float(row.dc_reconciliation_kwh),
    }


def _float(value: Decimal | None) -> float | None:
    return None if value is None else float(value)


def _ratio(received: int, expected_minutes: Decimal) -> float | None:
    """Readings received ÷ expected at one a minute, 4 decimals; null when none were expected."""
    if expected_minutes <= 0:
        return None
    return float(round(Decimal(received) / expected_minutes, 4))


def _summary(totals: FleetTotals) -> dict[str, Any]:
    """Counts by status, the silent count, and the fleet's exact totals.

    Totals cover every vehicle of the window, whatever the status filter or page. The loss is
    the sum of the rows' losses (vehicles without meter readings have none); the efficiency is
    all DC over all AC.
    """
    ac, dc, loss = totals.total_ac, totals.total_dc, totals.total_loss
    summary: dict[str, Any] = {
        "vehicles": totals.vehicles,
        "ok": totals.ok,
        "underperforming": totals.underperforming,
        "implausible": totals.implausible,
        "insufficientData": totals.insufficient_data,
        "silent": totals.silent,
        "energyConsumedAc": float(ac),
        "energyDeliveredDc": float(dc),
        "efficiency": float(dc / ac) if ac > 0 else None,
        "energyLossKwh": float(loss) if loss is not None else None,
    }
    if totals.efficiency_bins is not None:
        summary["efficiencyHistogram"] = [
            {"from": lower, "to": upper, "vehicles": vehicles}
            for lower, upper, vehicles in zip(
                (None, *map(float, HISTOGRAM_EDGES)),
                (*map(float, HISTOGRAM_EDGES), None),
                totals.efficiency_bins,
                strict=True,
            )
        ]
    return summary


# --- filters, order and pages ------------------------------------------------------------------


def parse_listing(status: str | None, sort: str | None, order: str | None) -> Listing:
    """`status` a comma list of status words; `sort` and `order` one of theirs; else 422."""
    problems: list[FieldProblem] = []
    statuses: tuple[str, ...] | None = None
    if status is not None:
        words = tuple(dict.fromkeys(word.strip() for word in status.split(",")))
        wrong = [word for word in words if word not in STATUSES]
        if wrong or not words:
            problems.append(
                FieldProblem(
                    field="status",
                    rule="one_of",
                    message=f"a comma list of {', '.join(STATUSES)}",
                )
            )
        statuses = tuple(sorted(words))
    sort = sort if sort is not None else "efficiency"
    if sort not in SORT_KEYS:
        problems.append(
            FieldProblem(field="sort", rule="one_of", message=f"one of {', '.join(SORT_KEYS)}")
        )
    order = order if order is not None else "asc"
    if order not in ORDERS:
        problems.append(FieldProblem(field="order", rule="one_of", message="asc or desc"))
    if problems:
        raise ValidationFailed(problems)
    return Listing(statuses, sort, order)


def parse_limit(limit: str | None) -> int:
    """1 to 1000, default 100; else 422 naming `limit`."""
    if limit is None:
        return DEFAULT_LIMIT
    try:
        value = int(limit)
    except ValueError:
        value = 0
    if not 1 <= value <= MAX_LIMIT:
        raise ValidationFailed(
            [FieldProblem(field="limit", rule="range", message=f"an integer from 1 to {MAX_LIMIT}")]
        )
    return value


@dataclass(frozen=True, slots=True)
class Cursor:
    """Where a page ended: the window, the listing, and the last row's position."""

    window: Window
    listing: Listing
    after: Position


def encode_cursor(cursor: Cursor) -> str:
    value = cursor.after[0]
    document = {
        "p": [format_timestamp(cursor.window.start), format_timestamp(cursor.window.end)],
        "f": cursor.listing.statuses,
        "s": cursor.listing.sort,
        "o": cursor.listing.order,
        "a": [None if value is None else str(value), cursor.after[1]],
    }
    raw = json.dumps(document, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(text: str) -> Cursor:
    """The cursor a previous page gave; 422 naming `cursor` if it is not one."""
    try:
        raw = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
        document = json.loads(raw)
        start, end = (parse_timestamp(moment) for moment in document["p"])
        statuses = document["f"]
        value, vehicle_id = document["a"]
        key = None if value is None else Decimal(value)
        if key is not None and not key.is_finite():
            raise ValueError("not a number")
        listing = Listing(
            tuple(statuses) if statuses is not None else None,
            str(document["s"]),
            str(document["o"]),
        )
        if listing.sort not in SORT_KEYS or listing.order not in ORDERS:
            raise ValueError("unknown sort")
        if not isinstance(vehicle_id, str):
            raise ValueError("vehicle id")
        return Cursor(Window(start, end), listing, (key, vehicle_id))
    except (
        ValueError,
        KeyError,
        TypeError,
        binascii.Error,
        UnicodeDecodeError,
        decimal.InvalidOperation,
    ) as exc:
        raise ValidationFailed(
            [FieldProblem(field="cursor", rule="format", message="not a cursor this API gave")]
        ) from exc


def check_cursor(cursor: Cursor, listing: Listing, window: Window | None) -> None:
    """A cursor continues the listing it came from: same filter, order and window."""
    if cursor.listing != listing or (window is not None and window != cursor.window):
        raise ValidationFailed(
            [
                FieldProblem(
                    field="cursor",
                    rule="same_listing",
                    message="the cursor belongs to another status, sort, order or window",
                )
            ]
        )


def next_cursor(page: FleetPage, listing: Listing) -> str | None:
    """The cursor of the page after `page`; None when it was the last."""
    if page.next_after is None:
        return None
    return encode_cursor(Cursor(page.window, listing, page.next_after))


# --- CSV ---------------------------------------------------------------------------------------

CSV_COLUMNS = (
    "vehicleId",
    "status",
    "energyConsumedAc",
    "energyDeliveredDc",
    "efficiency",
    "efficiencyRatio",
    "energyLossKwh",
    "averageBatteryTemp",
    "meterIds",
    "correlation",
    "dataPointsVehicle",
    "dataPointsMeter",
    "completenessVehicle",
    "completenessMeter",
    "lastSeen",
    "periodStart",
    "periodEnd",
)


def csv_lines(window: Window, rows: Iterable[dict[str, Any]]) -> Iterator[str]:
    """A header line, then one line per row; meter ids joined by spaces, nulls empty."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")

    def flush() -> str:
        text = buffer.getvalue()
        buffer.seek(0)
        buffer.truncate()
        return text

    writer.writerow(CSV_COLUMNS)
    yield flush()
    start, end = format_timestamp(window.start), format_timestamp(window.end)
    for answer in rows:
        writer.writerow(
            [
                _text(answer["vehicleId"]),
                answer["status"],
                *(
                    _cell(answer[name])
                    for name in (
                        "energyConsumedAc",
                        "energyDeliveredDc",
                        "efficiency",
                        "efficiencyRatio",
                        "energyLossKwh",
                        "averageBatteryTemp",
                    )
                ),
                _text(" ".join(answer["meterIds"])),
                answer["correlation"],
                answer["dataPoints"]["vehicle"],
                answer["dataPoints"]["meter"],
                _cell(answer["completeness"]["vehicle"]),
                _cell(answer["completeness"]["meter"]),
                _cell(answer["lastSeen"]),
                start,
                end,
            ]
        )
        yield flush()


def _text(value: str) -> str:
    """An id a spreadsheet would read as a formula (ids may start with "-") kept as text."""
    return "'" + value if value.startswith("-") else value


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, datetime):
        return format_timestamp(value)
    return repr(value) if isinstance(value, float) else str(value)
