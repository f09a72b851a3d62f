"""The storage floor: readings written straight to PostgreSQL, no HTTP, no validation.

Binary COPY into the history table and a set-based live upsert, one transaction per
`transaction_size` readings: the least work the database can do to keep the same readings the
same way, and so the limit the engine is measured against.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import asyncpg

from bench.readings import Kind, Reading
from bench.sql import bench_sql
from energy_ingest.db.pool import AnyConnection
from energy_ingest.db.sql import sql


@dataclass(frozen=True, slots=True)
class _KindTarget:
    """Where one kind of reading goes and the named statements that put it there."""

    history: str
    register: str
    keys: str
    upsert_live: str


_TARGETS: dict[Kind, _KindTarget] = {
    "meter": _KindTarget(
        "meter_readings", "register_meters", "get_meter_keys", "floor_upsert_meter_live"
    ),
    "vehicle": _KindTarget(
        "vehicle_readings", "register_vehicles", "get_vehicle_keys", "floor_upsert_vehicle_live"
    ),
}


def _column_values(reading: Reading, key: int, received_at: datetime) -> dict[str, object]:
    """Every value a history column of this kind may ask for, by column name."""
    if reading.kind == "meter":
        kwh, voltage = reading.values
        return {
            "ts": reading.at,
            "received_at": received_at,
            "kwh_consumed_ac": kwh,
            "voltage": voltage,
            "meter_key": key,
            "meter_id": reading.device_id,
            "kwh_register_ac": None,  # the bench's devices send interval energy
        }
    soc, kwh, temp = reading.values
    return {
        "ts": reading.at,
        "received_at": received_at,
        "soc": soc,
        "kwh_delivered_dc": kwh,
        "battery_temp": temp,
        "vehicle_key": key,
        "vehicle_id": reading.device_id,
        "kwh_register_dc": None,
    }


@dataclass(slots=True)
class _KindChunk:
    """One kind's share of one transaction: COPY records and the live upsert's arrays."""

    target: _KindTarget
    columns: list[str]
    records: list[tuple[object, ...]]
    live: list[list[Any]]


async def _history_columns(connection: AnyConnection, table: str) -> list[str]:
    # Read from the catalog, so the floor follows the engine's schema as it changes.
    rows = await connection.fetch(bench_sql("list_table_columns"), table)
    return [row["column_name"] for row in rows]


async def _device_keys(
    connection: AnyConnection, readings: Sequence[Reading]
) -> dict[Kind, dict[str, int]]:
    """Register every device once (dictionary rows, as the engine does on first sight)."""
    keys: dict[Kind, dict[str, int]] = {}
    for kind, target in _TARGETS.items():
        device_ids = sorted({reading.device_id for reading in readings if reading.kind == kind})
        await connection.execute(sql(target.register), device_ids)
        rows = await connection.fetch(sql(target.keys), device_ids)
        keys[kind] = {row["device_id"]: row["device_key"] for row in rows}
    return keys


def _prepare(
    chunk: Sequence[Reading],
    keys: dict[Kind, dict[str, int]],
    columns: dict[Kind, list[str]],
    received_at: datetime,
) -> list[_KindChunk]:
    prepared: list[_KindChunk] = []
    for kind, target in _TARGETS.items():
        # Sorted by device: concurrent transactions lock in one order, B-trees fill in order.
        of_kind = sorted(
            (reading for reading in chunk if reading.kind == kind),
            key=lambda reading: (reading.device_id, reading.at),
        )
        if not of_kind:
            continue
        records = []
        for reading in of_kind:
            values = _column_values(reading, keys[kind][reading.device_id], received_at)
            records.append(tuple(values[column] for column in columns[kind]))
        newest: dict[str, Reading] = {}
        for reading in of_kind:  # sorted by time within a device: the last one wins
            newest[reading.device_id] = reading
        live: list[list[Any]] = [[reading.at for reading in newest.values()]]
        for position in range(len(of_kind[0].values)):
            live.append([reading.values[position] for reading in newest.values()])
        live.append(list(newest))
        prepared.append(_KindChunk(target, columns[kind], records, live))
    return prepared


async def write_floor(
    url: str, readings: Sequence[Reading], *, transaction_size: int, connections: int
) -> dict[str, Any]:
    """Write `readings` (partitions must exist) and time it; device keys are made beforehand."""
    pool = await asyncpg.create_pool(url, min_size=connections, max_size=connections)
    try:
        async with pool.acquire() as connection:
            keys = await _device_keys(connection, readings)
            columns = {
                kind: await _history_columns(connection, target.history)
                for kind, target in _TARGETS.items()
            }
        received_at = datetime.now(UTC)
        transactions = [
            _prepare(readings[start : start + transaction_size], keys, columns, received_at)
            for start in range(0, len(readings), transaction_size)
        ]
        pending: Iterator[list[_KindChunk]] = iter(transactions)

        async def worker() -> None:
            async with pool.acquire() as connection:
                for transaction in pending:
                    async with connection.transaction():
                        for chunk in transaction:
                            await connection.copy_records_to_table(
                                chunk.target.history, records=chunk.records, columns=chunk.columns
                            )
                            await connection.execute(
                                bench_sql(chunk.target.upsert_live), *chunk.live
                            )

        started = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(connections)))
        seconds = time.perf_counter() - started
    finally:
        await pool.close()
    return {
        "readings": len(readings),
        "seconds": round(seconds, 3),
        "readings_per_second": round(len(readings) / seconds, 1),
        "transactions": len(transactions),
        "transaction_size": transaction_size,
        "connections": connections,
        "history_columns": columns,
    }
