"""Every vehicle's performance over one window, ranked and paged, with a fleet summary.

The numbers of a row are those `GET /v1/analytics/performance/{vehicleId}` answers for the
same window: the same correlation rule and the same number-and-status code (analytics.service),
fed with the same exact sums, here taken from the hourly rollups for whole hours and from
history only for partial hours.
"""

from __future__ import annotations

import base64
import binascii
import csv
import decimal
import io
import json
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from functools import cmp_to_key
from typing import Any, Literal, get_args

from energy_ingest.analytics.fleet import repository
from energy_ingest.analytics.fleet.repository import Piece
from energy_ingest.analytics.fleet.rows import MeterSums, VehicleSums
from energy_ingest.analytics.rows import AssignmentSpan, VehiclePresence
from energy_ingest.analytics.schemas import Status
from energy_ingest.analytics.service import (
    Span,
    Window,
    correlate,
    meter_ids_of,
    performance_numbers,
    resolve_window,
)
from energy_ingest.db.pool import ReadConnection
from energy_ingest.errors import FieldProblem, ValidationFailed
from energy_ingest.wire import format_timestamp, parse_timestamp

HOUR = timedelta(hours=1)
SILENT_AFTER = timedelta(minutes=15)
"""A vehicle whose newest reading is older than this counts as silent in the summary."""

SortKey = Literal["efficiency", "energyLossKwh", "energyConsumedAc", "vehicleId", "lastSeen"]
Order = Literal["asc", "desc"]
SORT_KEYS: tuple[str, ...] = get_args(SortKey)
ORDERS: tuple[str, ...] = get_args(Order)
STATUSES: tuple[str, ...] = get_args(Status)
DEFAULT_LIMIT = 100
MAX_LIMIT = 1000


# --- the window and its pieces -----------------------------------------------------------------


def floor_hour(moment: datetime) -> datetime:
    """The UTC hour `moment` falls in."""
    utc = moment.astimezone(UTC)
    return utc.replace(minute=0, second=0, microsecond=0)


def ceil_hour(moment: datetime) -> datetime:
    """The first UTC hour boundary at or after `moment`."""
    floor = floor_hour(moment)
    return floor if floor == moment else floor + HOUR


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


def pieces_of(start: datetime, end: datetime) -> list[tuple[datetime, datetime, bool]]:
    """[start, end) as partial hours (read from history) around whole hours (from rollups)."""
    first_whole, last_whole = ceil_hour(start), floor_hour(end)
    if first_whole >= last_whole:
        return [(start, end, False)] if start < end else []
    pieces: list[tuple[datetime, datetime, bool]] = []
    if start < first_whole:
        pieces.append((start, first_whole, False))
    pieces.append((first_whole, last_whole, True))
    if last_whole < end:
        pieces.append((last_whole, end, False))
    return pieces


# --- the fleet's rows --------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class FleetRow:
    """One vehicle's row of the answer, with the exact sums the summary adds up."""

    answer: dict[str, Any]
    ac: Decimal
    dc: Decimal
    meter_points: int

    @property
    def vehicle_id(self) -> str:
        vehicle_id: str = self.answer["vehicleId"]
        return vehicle_id

    @property
    def status(self) -> str:
        status: str = self.answer["status"]
        return status


@dataclass(frozen=True, slots=True)
class Fleet:
    """Every vehicle's row over one window, and how many vehicles are silent now."""

    window: Window
    rows: list[FleetRow]
    silent: int


async def fleet_performance(
    connection: ReadConnection, window: Window, threshold: float, now: datetime
) -> Fleet:
    """Every vehicle the engine knows over `window`, all statements in one snapshot (as the
    per-vehicle endpoint), so a batch committed meanwhile is counted on both sides or neither."""
    async with connection.transaction(isolation="repeatable_read", readonly=True):
        vehicles = await repository.list_fleet_vehicles(connection)
        assigned: dict[str, list[AssignmentSpan]] = {}
        for assignment in await repository.list_fleet_assignments_in_window(
            connection, window.start, window.end
        ):
            assigned.setdefault(assignment.vehicle_id, []).append(
                AssignmentSpan(assignment.meter_id, assignment.clipped_from, assignment.clipped_to)
            )
        window_pieces = pieces_of(window.start, window.end)
        whole = next(((start, end) for start, end, is_whole in window_pieces if is_whole), None)
        edges = [(start, end) for start, end, is_whole in window_pieces if not is_whole]
        correlations = []
        # A span over the window's whole hours takes them from one pass over the rollups of the
        # window (by meter); the rest of it, and any span that starts or ends inside the
        # window, is read piece by piece (rollups by hour range, history for partial hours).
        full_spans: list[tuple[int, str]] = []
        meter_pieces: list[Piece] = []
        for owner, vehicle in enumerate(vehicles):
            presence = VehiclePresence(
                has_reported=vehicle.last_seen is not None,
                has_assignments=vehicle.has_assignments,
                same_id_meter_usable=vehicle.same_id_meter_usable,
            )
            correlation, spans = correlate(
                vehicle.vehicle_id, window, presence, assigned.get(vehicle.vehicle_id, [])
            )
            correlations.append((correlation, spans))
            for meter_id, span_start, span_end in spans:
                for start, end, is_whole in pieces_of(span_start, span_end):
                    if is_whole and (start, end) == whole:
                        full_spans.append((owner, meter_id))
                    else:
                        meter_pieces.append((owner, meter_id, start, end, is_whole))
        window_hours = (
            await repository.sum_meter_window_hours(connection, *whole)
            if whole and full_spans
            else {}
        )
        meter_sums = await repository.sum_meter_pieces(connection, meter_pieces)
        whole_start, whole_end = whole or (window.start, window.start)
        vehicle_sums = await repository.sum_vehicle_window(
            connection, whole_start, whole_end, edges
        )
        silent = await repository.count_silent_vehicles(connection, now - SILENT_AFTER)

    no_meter = MeterSums(0, Decimal(0))
    meter_totals = {owner: [sums] for owner, sums in meter_sums.items()}
    for owner, meter_id in full_spans:
        meter_totals.setdefault(owner, []).append(window_hours.get(meter_id, no_meter))
    no_vehicle = VehicleSums(0, Decimal(0), None)
    minutes = Decimal((window.end - window.start) / timedelta(minutes=1))
    rows = []
    for owner, vehicle in enumerate(vehicles):
        correlation, spans = correlations[owner]
        meter = _added(meter_totals.get(owner, []))
        own = vehicle_sums.get(vehicle.vehicle_id, no_vehicle)
        answer = {
            "vehicleId": vehicle.vehicle_id,
            **performance_numbers(
                ac=meter.kwh_consumed_ac,
                dc=own.kwh_delivered_dc,
                vehicle_points=own.data_points,
                meter_points=meter.data_points,
                average_battery_temp=own.average_battery_temp,
                threshold=threshold,
            ),
            "meterIds": meter_ids_of(spans),
            "correlation": correlation,
            "dataPoints": {"vehicle": own.data_points, "meter": meter.data_points},
            "completeness": {
                "vehicle": _ratio(own.data_points, minutes),
                "meter": _ratio(meter.data_points, _span_minutes(spans)) if spans else None,
            },
            "lastSeen": vehicle.last_seen,
        }
        rows.append(
            FleetRow(answer, meter.kwh_consumed_ac, own.kwh_delivered_dc, meter.data_points)
        )
    return Fleet(window, rows, silent)


_EXACT = decimal.Context(prec=1000)
"""Wide enough that adding the database's sums never rounds: the total is the exact numeric."""


def _exact_sum(values: Iterable[Decimal]) -> Decimal:
    total = Decimal(0)
    for value in values:
        total = _EXACT.add(total, value)
    return total


def _added(parts: Sequence[MeterSums]) -> MeterSums:
    """The meter sums of one vehicle's parts, added exactly."""
    total = _exact_sum(part.kwh_consumed_ac for part in parts)
    return MeterSums(sum(part.data_points for part in parts), total)


def _span_minutes(spans: Sequence[Span]) -> Decimal:
    return Decimal(
        sum((end - start for _, start, end in spans), timedelta()) / timedelta(minutes=1)
    )


def _ratio(received: int, expected_minutes: Decimal) -> float | None:
    """Readings received ÷ expected at one a minute, 4 decimals; null when none were expected."""
    if expected_minutes <= 0:
        return None
    return float(round(Decimal(received) / expected_minutes, 4))


def summarize(fleet: Fleet) -> dict[str, Any]:
    """Counts by status, the silent count, and the fleet's exact totals.

    Totals cover every vehicle of the window, whatever the status filter or page. The loss is
    the sum of the rows' losses (vehicles without meter readings have none); the efficiency is
    all DC over all AC.
    """
    ac = _exact_sum(row.ac for row in fleet.rows)
    dc = _exact_sum(row.dc for row in fleet.rows)
    losses = [_EXACT.subtract(row.ac, row.dc) for row in fleet.rows if row.meter_points]
    counts = dict.fromkeys(STATUSES, 0)
    for row in fleet.rows:
        counts[row.status] += 1
    return {
        "vehicles": len(fleet.rows),
        "ok": counts["ok"],
        "underperforming": counts["underperforming"],
        "implausible": counts["implausible"],
        "insufficientData": counts["insufficient-data"],
        "silent": fleet.silent,
        "energyConsumedAc": float(ac),
        "energyDeliveredDc": float(dc),
        "efficiency": float(dc / ac) if ac > 0 else None,
        "energyLossKwh": float(_exact_sum(losses)) if losses else None,
    }


# --- filters, order and pages ------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Listing:
    """Which rows, in which order: what a cursor must keep from page to page."""

    statuses: tuple[str, ...] | None
    sort: str
    order: str


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


def _sort_value(row: FleetRow, sort: str) -> Any:
    return row.answer[sort]


def _compare(a: tuple[Any, str], b: tuple[Any, str], descending: bool) -> int:
    """Nulls last in either order; ties (and nulls) by vehicle id, ascending."""
    (a_value, a_id), (b_value, b_id) = a, b
    if a_value is None or b_value is None:
        if a_value is None and b_value is not None:
            return 1
        if b_value is None and a_value is not None:
            return -1
    else:
        result = int(a_value > b_value) - int(a_value < b_value)
        if result:
            return -result if descending else result
    return int(a_id > b_id) - int(a_id < b_id)


@dataclass(frozen=True, slots=True)
class Cursor:
    """Where a page ended: the window, the listing, and the last row's sort value and id."""

    window: Window
    listing: Listing
    after: tuple[Any, str]


def encode_cursor(cursor: Cursor) -> str:
    value = cursor.after[0]
    if isinstance(value, datetime):
        value = {"t": format_timestamp(value)}
    document = {
        "p": [format_timestamp(cursor.window.start), format_timestamp(cursor.window.end)],
        "f": cursor.listing.statuses,
        "s": cursor.listing.sort,
        "o": cursor.listing.order,
        "a": [value, cursor.after[1]],
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
        if isinstance(value, dict):
            value = parse_timestamp(value["t"])
        listing = Listing(
            tuple(statuses) if statuses is not None else None,
            str(document["s"]),
            str(document["o"]),
        )
        if listing.sort not in SORT_KEYS or listing.order not in ORDERS:
            raise ValueError("unknown sort")
        if not isinstance(vehicle_id, str):
            raise ValueError("vehicle id")
        return Cursor(Window(start, end), listing, (value, vehicle_id))
    except (ValueError, KeyError, TypeError, binascii.Error, UnicodeDecodeError) as exc:
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


def ordered_rows(fleet: Fleet, listing: Listing) -> list[FleetRow]:
    """The rows the filter keeps, in the listing's order."""
    rows = [row for row in fleet.rows if listing.statuses is None or row.status in listing.statuses]
    descending = listing.order == "desc"

    def compare(a: FleetRow, b: FleetRow) -> int:
        return _compare(
            (_sort_value(a, listing.sort), a.vehicle_id),
            (_sort_value(b, listing.sort), b.vehicle_id),
            descending,
        )

    return sorted(rows, key=cmp_to_key(compare))


def page(
    fleet: Fleet, listing: Listing, limit: int, after: tuple[Any, str] | None
) -> tuple[list[FleetRow], str | None]:
    """One page of the ordered rows after the cursor's position, and the next page's cursor."""
    rows = ordered_rows(fleet, listing)
    descending = listing.order == "desc"
    if after is not None:
        rows = [
            row
            for row in rows
            if _compare((_sort_value(row, listing.sort), row.vehicle_id), after, descending) > 0
        ]
    chosen = rows[:limit]
    next_cursor = None
    if len(rows) > limit:
        last = chosen[-1]
        next_cursor = encode_cursor(
            Cursor(fleet.window, listing, (_sort_value(last, listing.sort), last.vehicle_id))
        )
    return chosen, next_cursor


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


def csv_lines(fleet: Fleet, rows: Iterable[FleetRow]) -> Iterator[str]:
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
    start, end = format_timestamp(fleet.window.start), format_timestamp(fleet.window.end)
    for row in rows:
        answer = row.answer
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
