"""Start, end and list a vehicle's meter assignments; one transaction and one lock per change."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import asyncpg

from energy_ingest.db.pool import WriteConnection
from energy_ingest.errors import Conflict, NotFound
from energy_ingest.fleet import repository
from energy_ingest.http import format_timestamp


def assignment_json(row: asyncpg.Record) -> dict[str, Any]:
    """Database row → the API's assignment object."""
    return {
        "id": row["id"],
        "vehicleId": row["vehicle_id"],
        "meterId": row["meter_id"],
        "from": row["starts_at"],
        "to": row["ends_at"],
    }


async def assign_meter(
    connection: WriteConnection, vehicle_id: str, meter_id: str, start: datetime
) -> tuple[bool, dict[str, Any]]:
    """End the vehicle's current assignment at `start` and begin one with `meter_id`.

    Returns (created, assignment). Assigning the meter the vehicle already has is a no-op.
    """
    async with connection.transaction():
        await repository.lock_vehicle(connection, vehicle_id)
        current = await repository.get_current_assignment(connection, vehicle_id)
        if current is not None:
            if current["meter_id"] == meter_id and current["starts_at"] <= start:
                return False, assignment_json(current)
            if current["starts_at"] >= start:
                raise Conflict(
                    f"vehicle {vehicle_id} has been fed by meter {current['meter_id']} since "
                    f"{format_timestamp(current['starts_at'])}; a new assignment must start later"
                )
            await repository.end_assignment(connection, current["id"], start)
        try:
            row = await repository.insert_assignment(connection, vehicle_id, meter_id, start)
        except repository.AssignmentOverlap as overlap:
            raise await _explain_overlap(connection, overlap, vehicle_id, meter_id, start) from None
        return True, assignment_json(row)


async def _explain_overlap(
    connection: WriteConnection,
    overlap: repository.AssignmentOverlap,
    vehicle_id: str,
    meter_id: str,
    start: datetime,
) -> Conflict:
    if overlap.constraint == "meter_feeds_one_vehicle_at_a_time":
        clash = await repository.find_meter_clash(connection, meter_id, start)
        if clash is not None:
            until = format_timestamp(clash["ends_at"]) if clash["ends_at"] else "further notice"
            return Conflict(
                f"meter {meter_id} already feeds vehicle {clash['vehicle_id']} from "
                f"{format_timestamp(clash['starts_at'])} until {until}; a meter feeds one "
                "vehicle at a time"
            )
        return Conflict(f"meter {meter_id} already feeds another vehicle at that time")
    clash = await repository.find_vehicle_clash(connection, vehicle_id, start)
    if clash is not None:
        return Conflict(
            f"vehicle {vehicle_id} already has meter {clash['meter_id']} assigned from "
            f"{format_timestamp(clash['starts_at'])}; a vehicle has one meter at a time"
        )
    return Conflict(f"vehicle {vehicle_id} already has a meter assigned at that time")


async def end_current_assignment(
    connection: WriteConnection, vehicle_id: str, at: datetime
) -> dict[str, Any]:
    """End the open assignment at `at`; 404 when the vehicle has none."""
    async with connection.transaction():
        await repository.lock_vehicle(connection, vehicle_id)
        current = await repository.get_current_assignment(connection, vehicle_id)
        if current is None:
            raise NotFound(f"vehicle {vehicle_id} has no current meter assignment")
        if current["starts_at"] >= at:
            raise Conflict(
                f"the current assignment of vehicle {vehicle_id} starts at "
                f"{format_timestamp(current['starts_at'])}; it cannot end before it starts"
            )
        row = await repository.end_assignment(connection, current["id"], at)
        return assignment_json(row)
