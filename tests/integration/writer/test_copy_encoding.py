"""The writer's own binary COPY encoding: staged exactly as asyncpg's encoder stages the same
values, and stored in history and live as sent.

Every batch is staged twice in the same staging table: once by the writer (write_batch), once by
asyncpg's copy_records_to_table from plain tuples of the same values; the two stagings must read
back equal, row by row.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta, timezone
from zoneinfo import ZoneInfo

from energy_ingest.config import Settings
from energy_ingest.db.partitions import PartitionManager, day_of
from energy_ingest.db.pool import WriteConnection, open_database
from energy_ingest.readings import Outcome, Reading, ValidMeterReading, ValidVehicleReading
from energy_ingest.writer.repository import (
    METER_SQL,
    VEHICLE_SQL,
    DeviceKeys,
    KindSql,
    as_stored_real,
    prepare_batch,
    write_batch,
)

BERLIN = ZoneInfo("Europe/Berlin")
# 2026-10-25: Berlin's clocks go back from 03:00 CEST to 02:00 CET, so 02:30 happens twice.
BEFORE_FALL_BACK = datetime(2026, 10, 25, 2, 30, 0, 123456, tzinfo=BERLIN, fold=0)
AFTER_FALL_BACK = datetime(2026, 10, 25, 2, 30, 0, 123456, tzinfo=BERLIN, fold=1)
MOMENTS = [
    datetime(2000, 1, 1, 0, 0, 0, 1, tzinfo=UTC),
    datetime(2026, 3, 29, 0, 59, 59, 999999, tzinfo=UTC),  # the last µs before CEST begins
    datetime(2026, 3, 29, 3, 0, 0, 1, tzinfo=BERLIN),  # the first CEST µs in Berlin
    datetime(2026, 7, 1, 23, 30, 0, 654321, tzinfo=timezone(timedelta(hours=-9, minutes=-30))),
    datetime(2099, 12, 31, 23, 59, 59, 999999, tzinfo=UTC),
]


def _pairs(tag: str) -> list[tuple[str, datetime]]:
    """Each device of the batch at every moment, and at one of fall-back's two 02:30s: the
    batch holds both, equal as datetimes yet an hour apart."""
    return [
        (device, moment)
        for number, device in enumerate(device_ids(tag))
        for moment in [*MOMENTS, AFTER_FALL_BACK if number % 2 else BEFORE_FALL_BACK]
    ]


# Interval energy and voltage are double in history: anything finite. A register is booked in
# numeric against its neighbours: large, but not at double's edge. `real` sensors: what a real
# holds, and what it rounds (57.300001) or takes as 0 (1e-40).
DOUBLES = [0.0, -0.0, 5e-324, 1e-300, 1.5e-45, 3.4e38, -3.4e38, 1.7976931348623157e308, 0.1]
REGISTERS = [0.0, 5e-324, 1e-300, 12345.678901234567, 0.1, 99999999.99, -7.5]
REALS = [0.0, -0.0, 1e-40, 1.4e-45, 3.4e38, -3.4e38, 57.300001, -12.345678, 0.1]


def device_ids(tag: str) -> list[str]:
    """Ids as the wire allows them (ASCII letters, digits, . _ : -; 1 to 64), one set a batch."""
    return [tag, tag + "Z" * (64 - len(tag)), f"m.1_2:3-{tag}", f"0{tag}"]


def _has(every: bool | None, index: int, period: int) -> bool:
    """True: every reading has the value; False: none; None: one in `period`."""
    return every if every is not None else index % period == 0


def meters(tag: str, register: bool | None, energy: bool | None) -> list[Reading]:
    """Meter readings of `_pairs(tag)`; a reading without a register has energy."""
    readings: list[Reading] = []
    for index, (device, moment) in enumerate(_pairs(tag)):
        has_register = _has(register, index, 3)
        has_energy = _has(energy, index, 2) or not has_register
        readings.append(
            ValidMeterReading(
                device,
                DOUBLES[index % len(DOUBLES)] if has_energy else None,
                DOUBLES[(index + 3) % len(DOUBLES)],
                moment,
                REGISTERS[index % len(REGISTERS)] if has_register else None,
            )
        )
    return readings


def vehicles(tag: str, register: bool | None, energy: bool | None) -> list[Reading]:
    """Vehicle readings as `meters`."""
    readings: list[Reading] = []
    for index, (device, moment) in enumerate(_pairs(tag)):
        has_register = _has(register, index, 3)
        has_energy = _has(energy, index, 2) or not has_register
        readings.append(
            ValidVehicleReading(
                device,
                REALS[index % len(REALS)],
                DOUBLES[index % len(DOUBLES)] if has_energy else None,
                REALS[(index + 4) % len(REALS)],
                moment,
                REGISTERS[(index + 5) % len(REGISTERS)] if has_register else None,
            )
        )
    return readings


def _old_records(readings: Sequence[Reading], keys: dict[str, int]) -> list[tuple[object, ...]]:
    """The tuples the writer gave asyncpg's own encoder: (seq, ts, *values, register, key, id)."""
    return [
        (seq, reading[-2], *reading[1:-2], reading[-1], keys[reading[0]], reading[0])
        for seq, reading in enumerate(readings)
    ]


async def _staged(connection: WriteConnection, kind: KindSql) -> list[tuple[object, ...]]:
    rows = await connection.fetch(
        f"SELECT {', '.join(kind.columns)} FROM {kind.staging} ORDER BY seq"
    )
    return [tuple(row) for row in rows]


async def test_the_binary_copy_stages_what_asyncpgs_encoder_stages_and_history_keeps_it(
    settings: Settings, database_url: str
) -> None:
    # Values in every column, no energy, no register, and both mixed in one batch (the two ways
    # the writer packs rows).
    shapes = [(False, True), (True, False), (True, True), (None, None), (None, True)]
    batches = [
        (make(f"{make.__name__[0]}{number}", register, energy), kind)
        for make, kind in ((meters, METER_SQL), (vehicles, VEHICLE_SQL))
        for number, (register, energy) in enumerate(shapes)
    ]
    keys = DeviceKeys()
    async with open_database(database_url, settings) as database:
        days = {day_of(moment) for moment in [*MOMENTS, BEFORE_FALL_BACK, AFTER_FALL_BACK]}
        await PartitionManager(database.write_pool).ensure(days)
        async with database.write() as connection:
            for readings, kind in batches:
                prepared = await prepare_batch(connection, readings, keys)
                ids = sorted({reading[0] for reading in readings})
                device_keys = await keys.resolve(connection, kind, ids)
                transaction = connection.transaction()
                await transaction.start()
                await write_batch(connection, prepared)
                ours = await _staged(connection, kind)
                await transaction.rollback()
                async with connection.transaction():
                    await connection.copy_records_to_table(
                        kind.staging,
                        records=_old_records(readings, device_keys),
                        columns=list(kind.columns),
                    )
                    theirs = await _staged(connection, kind)
                assert len(ours) == len(readings)
                assert ours == theirs
                assert str(ours) == str(theirs)  # -0.0 == 0.0: the sign of a zero too
                # The instants themselves (both encoders could be off alike).
                assert [row[1] for row in ours] == [r[-2].astimezone(UTC) for r in readings]
                async with connection.transaction():
                    outcomes = await write_batch(connection, prepared)
                assert set(outcomes) == {Outcome.STORED}  # fall-back's two 02:30s are two
                await _assert_history_and_live(connection, kind, readings, ids)


async def _assert_history_and_live(
    connection: WriteConnection, kind: KindSql, readings: Sequence[Reading], ids: list[str]
) -> None:
    """History holds each reading's values as sent (`real` columns rounded as real), live the
    newest reading of each device exactly as sent."""
    reading_kind = kind.reading
    device = reading_kind.id_attribute
    values = ", ".join(reading_kind.value_attributes)
    register, key = kind.columns[-3], kind.columns[-2]
    stored = await connection.fetch(
        f"SELECT d.{device}, h.ts, {values}, h.{register}"
        f" FROM {reading_kind.history_table} AS h JOIN {device.removesuffix('_id')}s AS d"
        f" USING ({key}) WHERE d.{device} = ANY($1::text[])",
        ids,
    )
    got = {(row[0], row[1]): tuple(row)[2:] for row in stored}
    expected: dict[tuple[str, datetime], tuple[float | None, ...]] = {}
    for reading in readings:
        sent = list(reading[1:-2])
        for position in kind.real_values:
            value = sent[position]
            assert value is not None
            sent[position] = as_stored_real(value)
        expected[(reading[0], reading[-2].astimezone(UTC))] = (*sent, reading[-1])
    assert got == expected
    assert str(sorted(got.items())) == str(sorted(expected.items()))
    live = await connection.fetch(
        f"SELECT {device}, ts, {values}, {register} FROM {reading_kind.live_table}"
        f" WHERE {device} = ANY($1::text[])",
        ids,
    )
    newest: dict[str, Reading] = {}
    for reading in readings:
        known = newest.get(reading[0])
        if known is None or reading[-2].astimezone(UTC) > known[-2].astimezone(UTC):
            newest[reading[0]] = reading
    assert {row[0]: tuple(row)[1:] for row in live} == {
        device_id: (reading[-2].astimezone(UTC), *reading[1:-2], reading[-1])
        for device_id, reading in newest.items()
    }
