"""SQL of chargers: their connectors' status and the transactions the engine issues ids for."""

from __future__ import annotations

from datetime import datetime

from energy_ingest.db.pool import WriteConnection
from energy_ingest.db.sql import sql


async def upsert_connector(
    connection: WriteConnection,
    charge_point_id: str,
    connector_id: int,
    status: str,
    error_code: str,
    status_at: datetime | None,
) -> None:
    """Keep a connector's newest status."""
    await connection.execute(
        sql("upsert_charger_connector"),
        charge_point_id,
        connector_id,
        status,
        error_code,
        status_at,
    )


async def start_transaction(
    connection: WriteConnection,
    charge_point_id: str,
    connector_id: int,
    id_tag: str,
    meter_start_kwh: float,
    started_at: datetime,
) -> int:
    """A new transaction's id."""
    transaction: int = await connection.fetchval(
        sql("insert_charger_transaction"),
        charge_point_id,
        connector_id,
        id_tag,
        meter_start_kwh,
        started_at,
    )
    return transaction


async def stop_transaction(
    connection: WriteConnection,
    charge_point_id: str,
    transaction_id: int,
    meter_stop_kwh: float | None,
    stopped_at: datetime | None,
) -> int | None:
    """The connector of the stopped transaction; None when this charge point has no such one."""
    connector: int | None = await connection.fetchval(
        sql("stop_charger_transaction"), charge_point_id, transaction_id, meter_stop_kwh, stopped_at
    )
    return connector
