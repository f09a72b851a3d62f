"""SQL of the live tables."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from energy_ingest.db.pool import ReadConnection
from energy_ingest.db.sql import sql
from energy_ingest.live.rows import ConnectorRow, MeterLiveRow, SilentDeviceRow, VehicleLiveRow


async def get_meter_live(connection: ReadConnection, meter_id: str) -> MeterLiveRow | None:
    row = await connection.fetchrow(sql("get_meter_live"), meter_id)
    return None if row is None else MeterLiveRow.from_row(row)


async def list_charger_connectors(
    connection: ReadConnection, charge_point_id: str
) -> list[ConnectorRow]:
    rows = await connection.fetch(sql("list_charger_connectors"), charge_point_id)
    return [ConnectorRow.from_row(row) for row in rows]


async def list_meters_live(
    connection: ReadConnection, meter_ids: Sequence[str]
) -> dict[str, MeterLiveRow]:
    rows = await connection.fetch(sql("list_meters_live"), list(meter_ids))
    return {row["meter_id"]: MeterLiveRow.from_row(row) for row in rows}


async def get_vehicle_live(connection: ReadConnection, vehicle_id: str) -> VehicleLiveRow | None:
    row = await connection.fetchrow(sql("get_vehicle_live"), vehicle_id)
    return None if row is None else VehicleLiveRow.from_row(row)


async def list_silent_devices(
    connection: ReadConnection,
    silent_since: datetime,
    kinds: Sequence[str],
    after: SilentDeviceRow | None,
    limit: int,
) -> list[SilentDeviceRow]:
    """One page of silent devices, oldest last reading first, after the row `after`."""
    rows = await connection.fetch(
        sql("list_silent_devices"),
        silent_since,
        list(kinds),
        after is not None,
        after.last_seen if after else None,
        after.kind if after else None,
        after.device_id if after else None,
        limit,
    )
    return [SilentDeviceRow.from_row(row) for row in rows]
