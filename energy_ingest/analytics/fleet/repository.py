"""SQL of the fleet answer: the fleet, its assignments, and sums over pieces of rollups/history."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from energy_ingest.analytics.fleet.rows import (
    FleetAssignment,
    FleetVehicle,
    MeterSums,
    VehicleSums,
)
from energy_ingest.db.pool import ReadConnection
from energy_ingest.db.sql import sql

Piece = tuple[int, str, datetime, datetime, bool]
"""(owner, device id, start, end, whole hours?): a range read from rollups or from history."""


async def list_fleet_vehicles(connection: ReadConnection) -> list[FleetVehicle]:
    rows = await connection.fetch(sql("list_fleet_vehicles"))
    return [FleetVehicle.from_row(row) for row in rows]


async def list_fleet_assignments_in_window(
    connection: ReadConnection, start: datetime, end: datetime
) -> list[FleetAssignment]:
    rows = await connection.fetch(sql("list_fleet_assignments_in_window"), start, end)
    return [FleetAssignment.from_row(row) for row in rows]


async def count_silent_vehicles(connection: ReadConnection, reported_before: datetime) -> int:
    count: int = await connection.fetchval(sql("count_silent_vehicles"), reported_before)
    return count


def _columns(pieces: Sequence[Piece]) -> tuple[list[object], ...]:
    return tuple([piece[column] for piece in pieces] for column in range(5))


async def sum_meter_pieces(
    connection: ReadConnection, pieces: Sequence[Piece]
) -> dict[int, MeterSums]:
    """Each owner's meter readings over its pieces, in one statement however many pieces."""
    if not pieces:
        return {}
    rows = await connection.fetch(sql("sum_fleet_meter_pieces"), *_columns(pieces))
    return {row["owner"]: MeterSums(row["data_points"], row["kwh_consumed_ac"]) for row in rows}


async def sum_meter_window_hours(
    connection: ReadConnection, start: datetime, end: datetime
) -> dict[str, MeterSums]:
    """Every meter's whole hours in [start, end), from the rollups, by meter id."""
    rows = await connection.fetch(sql("sum_fleet_meter_window_hours"), start, end)
    return {row["meter_id"]: MeterSums(row["data_points"], row["kwh_consumed_ac"]) for row in rows}


async def sum_vehicle_window(
    connection: ReadConnection,
    whole_start: datetime,
    whole_end: datetime,
    edges: Sequence[tuple[datetime, datetime]],
) -> dict[str, VehicleSums]:
    """Every vehicle over whole hours [whole_start, whole_end) and the partial-hour `edges`."""
    rows = await connection.fetch(
        sql("sum_fleet_vehicle_window"),
        whole_start,
        whole_end,
        [start for start, _ in edges],
        [end for _, end in edges],
    )
    return {
        row["vehicle_id"]: VehicleSums(
            row["data_points"], row["kwh_delivered_dc"], row["average_battery_temp"]
        )
        for row in rows
    }
