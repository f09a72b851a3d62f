"""SQL of the live tables."""

from __future__ import annotations

from energy_ingest.db.pool import ReadConnection
from energy_ingest.db.sql import sql
from energy_ingest.live.rows import MeterLiveRow, VehicleLiveRow


async def get_meter_live(connection: ReadConnection, meter_id: str) -> MeterLiveRow | None:
    row = await connection.fetchrow(sql("get_meter_live"), meter_id)
    return None if row is None else MeterLiveRow.from_row(row)


async def get_vehicle_live(connection: ReadConnection, vehicle_id: str) -> VehicleLiveRow | None:
    row = await connection.fetchrow(sql("get_vehicle_live"), vehicle_id)
    return None if row is None else VehicleLiveRow.from_row(row)
