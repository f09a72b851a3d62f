"""Start, end and list a vehicle's meter assignments; one transaction per change.

Each change locks its vehicle, then every meter it touches in sorted order: all changes take
their locks in one global order, so they queue instead of deadlocking. Should the database
still pick one as a deadlock or serialization victim, it is retried, and answered 409 if it
keeps losing; never 500.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Any, TypeVar

import asyncpg

from energy_ingest.assignments import repository
from energy_ingest.assignments.rows import AssignmentRow
from energy_ingest.db.pool import WriteConnection
from energy_ingest.errors import Conflict, NotFound
from energy_ingest.wire import format_timestamp

_T = TypeVar("_T")

ATTEMPTS = 3
"""Tries of one change the database aborted as a deadlock or serialization victim."""

_RETRYABLE = (asyncpg.exceptions.DeadlockDetectedError, asyncpg.exceptions.SerializationError)


async def _retried(vehicle_id: str, change: Callable[[], Awaitable[_T]]) -> _T:
    """Run `change` (one whole transaction) again when the database aborted it as the victim
    of a deadlock (40P01) or a serialization failure (40001); 409 when every try lost."""
    for _ in range(ATTEMPTS - 1):
        try:
            return await change()
        except _RETRYABLE:
            continue
    try:
        return await change()
    except _RETRYABLE:
        raise Conflict(
            f"the assignments of vehicle {vehicle_id} are being changed concurrently; retry"
        ) from None


async def _lock_meters(connection: WriteConnection, *meter_ids: str | None) -> None:
    for meter_id in sorted({meter_id for meter_id in meter_ids if meter_id is not None}):
        await repository.lock_meter(connection, meter_id)


def assignment_json(row: AssignmentRow) -> dict[str, Any]:
    """Database row → the API's assignment object."""
    return {
        "id": row.id,
        "vehicleId": row.vehicle_id,
        "meterId": row.meter_id,
        "from": row.starts_at,
        "to": row.ends_at,
    }


async def assign_meter(
    connection: WriteConnection, vehicle_id: str, meter_id: str, start: datetime
) -> tuple[bool, dict[str, Any]]:
    """End the vehicle's current assignment at `start` and begin one with `meter_id`.

    Returns (created, assignment). Assigning the meter the vehicle already has is a no-op.
    """
    return await _retried(
        vehicle_id, lambda: _assign_meter(connection, vehicle_id, meter_id, start)
    )


async def _assign_meter(
    connection: WriteConnection, vehicle_id: str, meter_id: str, start: datetime
) -> tuple[bool, dict[str, Any]]:
    async with connection.transaction():
        await repository.lock_vehicle(connection, vehicle_id)
        current = await repository.get_current_assignment(connection, vehicle_id)
        if current is not None and current.meter_id == meter_id and current.starts_at <= start:
            return False, assignment_json(current)
        await _lock_meters(connection, meter_id, current.meter_id if current else None)
        await repository.queue_vehicle_energy(connection, vehicle_id, meter_id, start)
        if current is not None:
            if current.starts_at >= start:
                raise Conflict(
                    f"vehicle {vehicle_id} has been fed by meter {current.meter_id} since "
                    f"{format_timestamp(current.starts_at)}; a new assignment must start later"
                )
            await repository.end_assignment(connection, current.id, start)
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
            until = format_timestamp(clash.ends_at) if clash.ends_at else "further notice"
            return Conflict(
                f"meter {meter_id} already feeds vehicle {clash.vehicle_id} from "
                f"{format_timestamp(clash.starts_at)} until {until}; a meter feeds one "
                "vehicle at a time"
            )
        return Conflict(f"meter {meter_id} already feeds another vehicle at that time")
    held = await repository.find_vehicle_clash(connection, vehicle_id, start)
    if held is not None:
        return Conflict(
            f"vehicle {vehicle_id} already has meter {held.meter_id} assigned from "
            f"{format_timestamp(held.starts_at)}; a vehicle has one meter at a time"
        )
    return Conflict(f"vehicle {vehicle_id} already has a meter assigned at that time")


async def end_current_assignment(
    connection: WriteConnection, vehicle_id: str, at: datetime
) -> dict[str, Any]:
    """End the open assignment at `at`; 404 when the vehicle has none."""
    return await _retried(vehicle_id, lambda: _end_current_assignment(connection, vehicle_id, at))


async def _end_current_assignment(
    connection: WriteConnection, vehicle_id: str, at: datetime
) -> dict[str, Any]:
    async with connection.transaction():
        await repository.lock_vehicle(connection, vehicle_id)
        current = await repository.get_current_assignment(connection, vehicle_id)
        if current is None:
            raise NotFound(f"vehicle {vehicle_id} has no current meter assignment")
        await _lock_meters(connection, current.meter_id)
        await repository.queue_vehicle_energy(connection, vehicle_id, None, at)
        if current.starts_at >= at:
            raise Conflict(
                f"the current assignment of vehicle {vehicle_id} starts at "
                f"{format_timestamp(current.starts_at)}; it cannot end before it starts"
            )
        row = await repository.end_assignment(connection, current.id, at)
        return assignment_json(row)
