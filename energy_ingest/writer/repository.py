"""SQL of one batch: device keys, COPY into staging, insert-or-skip into history, live upsert."""

from __future__ import annotations

import itertools
import struct
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, timezone
from functools import lru_cache
from itertools import chain, compress, filterfalse, repeat
from operator import is_, itemgetter

from energy_ingest.config import DEFAULT_REGISTER_RULES, RegisterRules
from energy_ingest.db.pool import WriteConnection
from energy_ingest.db.sql import sql
from energy_ingest.readings import METER, VEHICLE, DeviceKind, Outcome, Reading, ReadingKind


@dataclass(frozen=True, slots=True)
class KindSql:
    """The staging table and the named statements of one kind of reading.

    The COPY columns are (seq, ts, *the reading's values in tuple order, register, key, id).
    """

    reading: ReadingKind
    staging: str
    columns: tuple[str, ...]
    register: str
    keys: str
    insert: str
    classify: str
    lock_registers: str
    book_registers: str
    real_values: tuple[int, ...] = ()
    """Positions of the values history keeps as `real` (float4), compared at that precision."""

    @property
    def value_positions(self) -> range:
        """Where the values sit in a reading tuple: after the id, before timestamp and register."""
        return range(1, 1 + len(self.reading.value_fields))


METER_SQL = KindSql(
    reading=METER,
    staging="meter_staging",
    columns=("seq", "ts", "kwh_consumed_ac", "voltage", "kwh_register_ac", "meter_key", "meter_id"),
    register="register_meters",
    keys="get_meter_keys",
    insert="insert_meter_readings",
    classify="classify_skipped_meter_readings",
    lock_registers="lock_meter_registers",
    book_registers="book_meter_registers",
)
VEHICLE_SQL = KindSql(
    reading=VEHICLE,
    staging="vehicle_staging",
    columns=(
        "seq",
        "ts",
        "soc",
        "kwh_delivered_dc",
        "battery_temp",
        "kwh_register_dc",
        "vehicle_key",
        "vehicle_id",
    ),
    register="register_vehicles",
    keys="get_vehicle_keys",
    insert="insert_vehicle_readings",
    classify="classify_skipped_vehicle_readings",
    lock_registers="lock_vehicle_registers",
    book_registers="book_vehicle_registers",
    # Same rule as classify_skipped_vehicle_readings: soc and battery_temp are kept as real,
    # so a repeat inside one batch is compared at that precision too, as a re-send would be.
    real_values=(0, 2),
)
_SQL_BY_TYPE: dict[type[Reading], KindSql] = {
    kind.reading.reading_type: kind for kind in (METER_SQL, VEHICLE_SQL)
}
# A reading tuple is (device id, *values, timestamp, register): no property call per reading.
_DEVICE_ID = itemgetter(0)
_TIMESTAMP = itemgetter(-2)
_REGISTER = itemgetter(-1)


class DeviceKeys:
    """Device id → integer key of history, cached per kind.

    A key never changes once given, so the cache can only be incomplete, never wrong. Past
    `limit` keys of one kind it forgets the oldest half: a forgotten id costs one lookup the
    next time it comes, never a failed batch, and memory stays bounded.
    """

    def __init__(self, limit: int = 1_000_000) -> None:
        self._limit = limit
        self._keys: dict[str, dict[str, int]] = {METER_SQL.staging: {}, VEHICLE_SQL.staging: {}}
        self._copy_fields: dict[str, dict[str, bytes]] = {
            METER_SQL.staging: {},
            VEHICLE_SQL.staging: {},
        }

    def cached(self, kind: KindSql) -> int:
        """How many keys of `kind` the cache holds."""
        return len(self._keys[kind.staging])

    def unknown(self, readings: Sequence[Reading]) -> set[tuple[str, str]]:
        """The devices of `readings` the cache does not hold, as (kind, id); no round trip."""
        if len(readings) == 1:  # a single-reading request: the common submission of devices
            staging = _SQL_BY_TYPE[type(readings[0])].staging
            device_id = readings[0][0]
            return set() if device_id in self._keys[staging] else {(staging, device_id)}
        unknown: set[tuple[str, str]] = set()
        for kind, members in _by_kind(readings):
            # Filtered in C: this runs for every reading of every batch. (Not `set - keys()`:
            # that walks the whole cache, however few readings the batch holds.)
            cache = self._keys[kind.staging]
            missing = set(filterfalse(cache.__contains__, map(_DEVICE_ID, members)))
            unknown.update(zip(repeat(kind.staging), missing))
        return unknown

    async def look_up(
        self, connection: WriteConnection, devices: set[tuple[str, str]]
    ) -> set[tuple[str, str]]:
        """Cache the keys of those `devices` that exist; the others (new devices) are returned."""
        new = set(devices)
        for kind in (METER_SQL, VEHICLE_SQL):
            wanted = sorted(device_id for staging, device_id in devices if staging == kind.staging)
            if not wanted:
                continue
            found = {
                row["device_id"]: row["device_key"]
                for row in await connection.fetch(sql(kind.keys), wanted)
            }
            self._remember(self._keys[kind.staging], found)
            new.difference_update((kind.staging, device_id) for device_id in found)
        return new

    async def resolve(
        self, connection: WriteConnection, kind: KindSql, device_ids: Iterable[str]
    ) -> dict[str, int]:
        """The keys of exactly `device_ids`, registering the devices that do not exist yet.

        Registration is committed at once, outside any batch; it takes an identity value only
        for an id that is really new (register_* skips existing ids before inserting).
        """
        cache = self._keys[kind.staging]
        wanted = set(device_ids)
        missing = set(filterfalse(cache.__contains__, wanted))
        known = wanted - missing
        keys = dict(zip(known, map(cache.__getitem__, known), strict=True))
        if missing:
            ordered = sorted(missing)
            await connection.execute(sql(kind.register), ordered)
            found = {
                row["device_id"]: row["device_key"]
                for row in await connection.fetch(sql(kind.keys), ordered)
            }
            keys.update(found)
            self._remember(cache, found)
        return keys

    async def keys_of(
        self, connection: WriteConnection, kind: KindSql, device_ids: list[str]
    ) -> Mapping[str, int]:
        """A mapping holding the keys of `device_ids` (at least), registering new devices as
        `resolve` does: the cache itself when it holds them all, so a batch of known devices
        (nearly every batch) copies nothing. Read it before the next await: the cache may
        forget entries when it next learns some."""
        cache = self._keys[kind.staging]
        if all(map(cache.__contains__, device_ids)):
            return cache
        return await self.resolve(connection, kind, device_ids)

    def copy_fields(
        self, kind: KindSql, device_ids: list[str], keys: Mapping[str, int]
    ) -> list[bytes]:
        """The last two fields (key, id) of each device's binary COPY row, as `keys_of` gave
        the keys. Cached per device: a key never changes, so each device is encoded once, not
        once per reading."""
        cache = self._copy_fields[kind.staging]
        try:
            fields = list(map(cache.__getitem__, device_ids))
        except KeyError:
            for device_id in set(filterfalse(cache.__contains__, device_ids)):
                cache[device_id] = _key_and_id(keys[device_id], device_id)
            fields = list(map(cache.__getitem__, device_ids))
        if len(cache) > self._limit:
            # Forgotten as the keys are: the oldest half; it is encoded again when it comes.
            for device_id in list(itertools.islice(cache, len(cache) - self._limit // 2)):
                del cache[device_id]
        return fields

    def _remember(self, cache: dict[str, int], found: dict[str, int]) -> None:
        for fields in self._copy_fields.values():  # a key learnt anew is encoded anew
            for device_id in found:
                fields.pop(device_id, None)
        cache.update(found)
        if len(cache) > self._limit:
            # Dicts keep insertion order: the first entries are the longest cached.
            for device_id in list(itertools.islice(cache, len(cache) - self._limit // 2)):
                del cache[device_id]


def as_stored_real(value: float) -> float:
    """`value` as history stores a `real` column (sensor_real): float4 rounding, and 0 for what
    is too small for it."""
    if abs(value) < 1e-37:
        return 0.0
    try:
        rounded: float = struct.unpack("f", struct.pack("f", value))[0]
    except OverflowError:  # too large for real: the database refuses it, not this comparison
        return value
    return rounded


def _values(reading: Reading) -> tuple[float | None, ...]:
    """What makes two readings of one key the same: the values as history keeps them."""
    real = _SQL_BY_TYPE[type(reading)].real_values
    values = tuple(
        as_stored_real(value) if position in real and value is not None else value
        for position, value in enumerate(reading[1:-2])
    )
    return (*values, reading[-1])


@dataclass(slots=True)
class _KindBatch:
    """The readings of one kind in a batch, split into leaders and followers.

    A leader is the first reading of its (device, timestamp) key in the batch; only leaders are
    staged. A follower repeats a leader's key and takes its outcome from the leader's.
    """

    sql: KindSql
    leaders: Sequence[int] = ()
    """Positions of the leaders in the batch."""
    members: Sequence[Reading] = ()
    """The leaders' readings, in the order of `leaders`."""
    followers: list[tuple[int, int]] = field(default_factory=list)


def _by_kind(readings: Sequence[Reading]) -> list[tuple[KindSql, Sequence[Reading]]]:
    """`readings` of each kind present, meters first; the sequence itself when of one kind."""
    return [(kind, members) for kind, _, members in _positions_by_kind(readings)]


def _positions_by_kind(
    readings: Sequence[Reading],
) -> list[tuple[KindSql, Sequence[int], Sequence[Reading]]]:
    types = set(map(type, readings))
    if len(types) == 1:
        (only,) = types
        return [(_SQL_BY_TYPE[only], range(len(readings)), readings)]
    split: list[tuple[KindSql, Sequence[int], Sequence[Reading]]] = []
    for kind in (METER_SQL, VEHICLE_SQL):  # always in this order: one lock order for all
        if kind.reading.reading_type in types:
            of_kind = map(is_, map(type, readings), repeat(kind.reading.reading_type))
            positions = list(compress(range(len(readings)), of_kind))
            split.append((kind, positions, list(map(readings.__getitem__, positions))))
    return split


def _repeats_no_key(members: Sequence[Reading]) -> bool:
    """Whether no two of `members` share a (device, timestamp) key. Devices that each send one
    reading (a fleet's minute) say so by a set of their ids, whose hashes strings cache: no
    pair is built and hashed per reading."""
    count = len(members)
    if len(set(map(_DEVICE_ID, members))) == count:
        return True
    pairs = zip(map(_DEVICE_ID, members), map(_TIMESTAMP, members), strict=True)
    return len(set(pairs)) == count


def _split(readings: Sequence[Reading]) -> list[_KindBatch]:
    """The kinds present in `readings`, meters first, each split into leaders and followers.

    Built from C-level iterators (map, zip, set): this runs for every reading of every batch,
    and a batch that repeats no (device, timestamp) key (nearly all) needs no loop in Python.
    """
    batches = []
    for kind, positions, members in _positions_by_kind(readings):
        if _repeats_no_key(members):
            batches.append(_KindBatch(kind, positions, members))
            continue
        batch = _KindBatch(kind)
        leader_of: dict[tuple[str, datetime], int] = {}
        leaders: list[int] = []
        for seq in positions:
            reading = readings[seq]
            key = (reading[0], reading[-2])
            leader = leader_of.get(key)
            if leader is None:
                leader_of[key] = seq
                leaders.append(seq)
            else:
                batch.followers.append((seq, leader))
        batch.leaders = leaders
        batch.members = list(map(readings.__getitem__, leaders))
        batches.append(batch)
    return batches


# PostgreSQL's binary COPY format: a signature, flags and header extension length (none), then
# per row its field count and each field as int32 length (-1: NULL) and big-endian value.
_COPY_HEADER = b"PGCOPY\n\xff\r\n\x00" + struct.pack(">ii", 0, 0)
_COPY_TRAILER = struct.pack(">h", -1)
_PG_EPOCH = datetime(2000, 1, 1, tzinfo=UTC)
_MICROSECOND = timedelta(microseconds=1)
_NULL = -1
_INT4 = 4
_INT8 = 8
_FLOAT8 = 8


def _key_and_id(key: int, device_id: str) -> bytes:
    """A row's last two fields: the device key (integer) and its id (text)."""
    encoded = device_id.encode()
    return struct.pack(f">iii{len(encoded)}s", _INT4, key, len(encoded), encoded)


def _micros(moment: datetime) -> int:
    """`moment` as timestamptz is sent in binary: microseconds since 2000-01-01 UTC (a naive
    datetime taken as local time, as asyncpg's own encoder takes it)."""
    return (moment.astimezone(UTC) - _PG_EPOCH) // _MICROSECOND


def _micros_of(moments: list[datetime]) -> Callable[[datetime], int]:
    """`_micros` for each of `moments`, converted once per distinct moment (a batch carries a
    few). Only with fixed offsets (the wire's UTC, OCPP's offsets) are equal moments one
    instant: in a zone with DST, 02:30 before and after the clocks go back compare equal."""
    distinct = {moment: _micros(moment) for moment in set(moments)}
    if all(type(moment.tzinfo) is timezone for moment in distinct):
        return distinct.__getitem__
    return _micros


def _nullable_field(
    column: list[float | None],
) -> tuple[str, list[Iterable[object]]] | None:
    """A float8 column's struct format and arguments when it is all values or all NULL; None
    when it mixes them."""
    nulls = column.count(None)
    if not nulls:
        return "id", [repeat(_FLOAT8), column]
    if nulls == len(column):
        return "i", [repeat(_NULL)]
    return None


@lru_cache(maxsize=64)
def _row_struct(formats: tuple[str, ...]) -> struct.Struct:
    """The struct of a row's fields before key and id, compiled once per NULL pattern."""
    return struct.Struct(">" + "".join(formats))


def _copy_data(batch: _KindBatch, fields: list[bytes]) -> bytes:
    """The leaders as one binary COPY of the KindSql columns (seq, ts, *values, register, key,
    id): the timestamps converted once per distinct moment, key and id taken encoded from
    `fields`, the rest packed a row at a time by a precompiled struct called from C."""
    members = batch.members
    moments = list(map(_TIMESTAMP, members))
    micros = list(map(_micros_of(moments), moments))
    columns: list[list[float | None]] = [
        list(map(itemgetter(position), members)) for position in batch.sql.value_positions
    ]
    columns.append(list(map(_REGISTER, members)))
    count = len(batch.sql.columns)
    rows = _rows(count, batch.leaders, micros, columns, fields)
    if rows is None:
        rows = _rows_by_pattern(count, batch.leaders, micros, columns, fields)
    return b"".join((_COPY_HEADER, *rows, _COPY_TRAILER))


def _rows(
    count: int,
    leaders: Sequence[int],
    micros: list[int],
    columns: list[list[float | None]],
    fields: list[bytes],
) -> Iterable[bytes] | None:
    """The rows' bytes, all packed by one struct; None when a column mixes values and NULLs
    (one struct per NULL pattern)."""
    formats = ["h", "ii", "iq"]
    arguments: list[Iterable[object]] = [
        repeat(count),
        repeat(_INT4),
        leaders,
        repeat(_INT8),
        micros,
    ]
    for column in columns:
        packed = _nullable_field(column)
        if packed is None:
            return None
        formats.append(packed[0])
        arguments.extend(packed[1])
    packed_rows = map(_row_struct(tuple(formats)).pack, *arguments)
    return chain.from_iterable(zip(packed_rows, fields, strict=True))


def _rows_by_pattern(
    count: int,
    leaders: Sequence[int],
    micros: list[int],
    columns: list[list[float | None]],
    fields: list[bytes],
) -> Iterable[bytes]:
    """`_rows` of a batch whose columns mix values and NULLs (readings with and without a
    register): the rows of each NULL pattern together, picked in C. Staging's order is no
    one's concern: each row carries its position in the batch (seq)."""
    nulls = [map(is_, column, repeat(None)) for column in columns]
    patterns = list(zip(*nulls, strict=True))
    parts: list[Iterable[bytes]] = []
    for pattern in dict.fromkeys(patterns):
        chosen = list(map(pattern.__eq__, patterns))
        rows = _rows(
            count,
            list(compress(leaders, chosen)),
            list(compress(micros, chosen)),
            [list(compress(column, chosen)) for column in columns],
            list(compress(fields, chosen)),
        )
        assert rows is not None  # one pattern: no column mixes
        parts.append(rows)
    return chain.from_iterable(parts)


@dataclass(slots=True)
class PreparedBatch:
    """A batch split by kind with its COPY data built: all the work that needs no transaction."""

    readings: Sequence[Reading]
    kinds: list[tuple[_KindBatch, bytes]]


async def prepare_batch(
    connection: WriteConnection, readings: Sequence[Reading], device_keys: DeviceKeys
) -> PreparedBatch:
    """Split `readings` by kind, give every device its key, build the COPY data."""
    kinds = []
    for batch in _split(readings):
        device_ids = list(map(_DEVICE_ID, batch.members))
        keys = await device_keys.keys_of(connection, batch.sql, device_ids)
        fields = device_keys.copy_fields(batch.sql, device_ids, keys)  # before any other await
        kinds.append((batch, _copy_data(batch, fields)))
    return PreparedBatch(readings, kinds)


async def write_batch(
    connection: WriteConnection,
    prepared: PreparedBatch,
    rules: RegisterRules = DEFAULT_REGISTER_RULES,
) -> list[Outcome]:
    """Write a prepared batch in the caller's transaction; each reading's outcome, in order."""
    readings = prepared.readings
    outcomes = [Outcome.STORED] * len(readings)
    for batch, data in prepared.kinds:
        kind = batch.sql
        # Sent as one buffer: asyncpg takes any object of the buffer protocol (its stubs name
        # only paths, files and async iterables), but bytes it would take for a path.
        await connection.copy_to_table(
            kind.staging,
            source=memoryview(data),  # type: ignore[arg-type]
            columns=kind.columns,
            format="binary",
        )
        # Stores the new rows, their sums in the rollup inbox and the devices' live state;
        # answers how many it stored.
        counts = await connection.fetchrow(sql(kind.insert))
        assert counts is not None  # an aggregate answers one row
        inserted = counts["stored"]
        if counts["registers"]:
            # Register readings book what their chain says, and correct their neighbours'.
            await connection.fetchval(sql(kind.lock_registers))
            await connection.execute(
                sql(kind.book_registers), rules.max_kw(kind.reading.kind is DeviceKind.METER)
            )
        if inserted < len(batch.members):
            # Slow path, only when a retry or a conflict is in the batch: ask history which
            # staged rows it already held and whether their values are the same.
            for row in await connection.fetch(sql(kind.classify)):
                outcomes[row["seq"]] = Outcome.DUPLICATE if row["identical"] else Outcome.CONFLICT
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
