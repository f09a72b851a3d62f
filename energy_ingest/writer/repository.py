"""SQL of one batch: binary COPY into staging, insert-or-skip into history, live upsert."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from energy_ingest.db.pool import WriteConnection
from energy_ingest.db.sql import sql
from energy_ingest.ingest.schemas import MeterReading, Outcome, Reading

_METER_COLUMNS = ["seq", "ts", "kwh_consumed_ac", "voltage", "meter_id"]
_VEHICLE_COLUMNS = ["seq", "ts", "soc", "kwh_delivered_dc", "battery_temp", "vehicle_id"]


def _values(reading: Reading) -> tuple[float, ...]:
    if isinstance(reading, MeterReading):
        return (reading.kwh_consumed_ac, reading.voltage)
    return (reading.soc, reading.kwh_delivered_dc, reading.battery_temp)


@dataclass(slots=True)
class _KindBatch:
    """The readings of one kind in a batch, split into leaders and followers.

    A leader is the first reading of its (device, timestamp) key in the batch; only leaders are
    staged. A follower repeats a leader's key and takes its outcome from the leader's.
    """

    leaders: list[tuple[object, ...]] = field(default_factory=list)
    leader_of: dict[tuple[str, object], int] = field(default_factory=dict)
    followers: list[tuple[int, int]] = field(default_factory=list)


def _split(readings: Sequence[Reading]) -> tuple[_KindBatch, _KindBatch]:
    meters, vehicles = _KindBatch(), _KindBatch()
    for seq, reading in enumerate(readings):
        if isinstance(reading, MeterReading):
            batch = meters
            record: tuple[object, ...] = (
                seq,
                reading.timestamp,
                reading.kwh_consumed_ac,
                reading.voltage,
                reading.meter_id,
            )
        else:
            batch = vehicles
            record = (
                seq,
                reading.timestamp,
                reading.soc,
                reading.kwh_delivered_dc,
                reading.battery_temp,
                reading.vehicle_id,
            )
        key = (reading.device_id, reading.timestamp)
        leader = batch.leader_of.get(key)
        if leader is None:
            batch.leader_of[key] = seq
            batch.leaders.append(record)
        else:
            batch.followers.append((seq, leader))
    return meters, vehicles


async def _write_kind(
    connection: WriteConnection,
    batch: _KindBatch,
    outcomes: list[Outcome],
    *,
    staging: str,
    columns: list[str],
    insert: str,
    classify: str,
    upsert: str,
) -> None:
    if not batch.leaders:
        return
    await connection.copy_records_to_table(staging, records=batch.leaders, columns=columns)
    status = await connection.execute(sql(insert))
    inserted = int(status.rsplit(" ", 1)[1])
    skipped: list[int] = []
    if inserted < len(batch.leaders):
        # Slow path, only when a retry or a conflict is in the batch: ask history which staged
        # rows it already held and whether their values are the same.
        for row in await connection.fetch(sql(classify)):
            outcomes[row["seq"]] = Outcome.DUPLICATE if row["identical"] else Outcome.CONFLICT
            skipped.append(row["seq"])
    await connection.execute(sql(upsert), skipped)


async def write_batch(connection: WriteConnection, readings: Sequence[Reading]) -> list[Outcome]:
    """Write `readings` in the caller's transaction; return each reading's outcome, in order."""
    outcomes = [Outcome.STORED] * len(readings)
    meters, vehicles = _split(readings)
    await _write_kind(
        connection,
        meters,
        outcomes,
        staging="meter_staging",
        columns=_METER_COLUMNS,
        insert="insert_meter_readings",
        classify="classify_skipped_meter_readings",
        upsert="upsert_meter_live",
    )
    await _write_kind(
        connection,
        vehicles,
        outcomes,
        staging="vehicle_staging",
        columns=_VEHICLE_COLUMNS,
        insert="insert_vehicle_readings",
        classify="classify_skipped_vehicle_readings",
        upsert="upsert_vehicle_live",
    )
    for batch in (meters, vehicles):
        for seq, leader in batch.followers:
            # A repeat inside one batch: identical to its leader → it shares the leader's fate
            # as a duplicate (or conflict); different values → a conflict either way.
            same = _values(readings[seq]) == _values(readings[leader])
            outcomes[seq] = (
                Outcome.CONFLICT
                if not same or outcomes[leader] is Outcome.CONFLICT
                else Outcome.DUPLICATE
            )
    return outcomes
