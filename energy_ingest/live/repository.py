"""SQL of the live tables."""

from __future__ import annotations

import asyncpg

from energy_ingest.db.pool import ReadConnection
from energy_ingest.db.sql import sql


async def get_meter_live(connection: ReadConnection, meter_id: str) -> asyncpg.Record | None:
    return await connection.fetchrow(sql("get_meter_live"), meter_id)


async def get_vehicle_live(connection: ReadConnection, vehicle_id: str) -> asyncpg.Record | None:
    return await connection.fetchrow(sql("get_vehicle_live"), vehicle_id)
