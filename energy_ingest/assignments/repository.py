"""SQL of vehicle ↔ meter assignments; exclusion violations become Conflict here."""

from __future__ import annotations

from datetime import datetime

import asyncpg

from energy_ingest.assignments.rows import AssignmentRow, MeterClash, VehicleClash
from energy_ingest.db.pool import ReadConnection, WriteConnection
from energy_ingest.db.sql import sql


class AssignmentOverlap(Exception):
    """The database refused an assignment that overlaps another (one of the two constraints)."""

    def __init__(self, constraint: str) -> None:
        super().__init__(constraint)
        self.constraint = constraint


async def lock_vehicle(connection: WriteConnection, vehicle_id: str) -> None:
    await connection.execute(sql("lock_vehicle_assignments"), vehicle_id)


async def lock_meter(connection: WriteConnection, meter_id: str) -> None:
    await connection.execute(sql("lock_meter_assignments"), meter_id)


async def queue_vehicle_energy(
    connection: WriteConnection, vehicle_id: str, meter_id: str | None, since: datetime
) -> None:
    """Before a change of `vehicle_id`'s assignments from `since` (to `meter_id`, None when
    one ends): queue the vehicle-days whose charging split it can alter for the folder."""
    await connection.execute(
        sql("queue_vehicle_energy_for_assignment"), vehicle_id, meter_id, since
    )


async def get_current_assignment(
    connection: WriteConnection, vehicle_id: str
) -> AssignmentRow | None:
    row = await connection.fetchrow(sql("get_current_assignment"), vehicle_id)
    return None if row is None else AssignmentRow.from_row(row)


async def end_assignment(
    connection: WriteConnection, assignment_id: int, at: datetime
) -> AssignmentRow:
    row = await connection.fetchrow(sql("end_assignment"), assignment_id, at)
    assert row is not None  # the caller holds the vehicle's lock and just read this row
    return AssignmentRow.from_row(row)


async def insert_assignment(
    connection: WriteConnection, vehicle_id: str, meter_id: str, start: datetime
) -> AssignmentRow:
    try:
        async with connection.transaction():  # a savepoint, so the caller can still report
            row = await connection.fetchrow(sql("insert_assignment"), vehicle_id, meter_id, start)
    except asyncpg.ExclusionViolationError as error:
        raise AssignmentOverlap(error.constraint_name or "") from error
    assert row is not None  # INSERT ... RETURNING of one row
    return AssignmentRow.from_row(row)


async def list_vehicle_assignments(
    connection: ReadConnection, vehicle_id: str
) -> list[AssignmentRow]:
    rows = await connection.fetch(sql("list_vehicle_assignments"), vehicle_id)
    return [AssignmentRow.from_row(row) for row in rows]


async def find_meter_clash(
    connection: WriteConnection, meter_id: str, start: datetime
) -> MeterClash | None:
    row = await connection.fetchrow(sql("find_meter_clash"), meter_id, start)
    return None if row is None else MeterClash.from_row(row)


async def find_vehicle_clash(
    connection: WriteConnection, vehicle_id: str, start: datetime
) -> VehicleClash | None:
    row = await connection.fetchrow(sql("find_vehicle_clash"), vehicle_id, start)
    return None if row is None else VehicleClash.from_row(row)
