"""The device dictionary: the per-process key cache and the registration of new devices."""

from __future__ import annotations

import asyncpg

from energy_ingest.config import Settings
from energy_ingest.db.pool import open_database
from energy_ingest.writer.repository import METER_SQL, VEHICLE_SQL, DeviceKeys


async def _sequence_value(db: asyncpg.Connection, sequence: str) -> int | None:
    value: int | None = await db.fetchval(
        "SELECT last_value FROM pg_sequences WHERE sequencename = $1", sequence
    )
    return value


async def test_a_full_cache_forgets_old_ids_and_still_answers_every_id_asked(
    settings: Settings, database_url: str
) -> None:
    keys = DeviceKeys(limit=3)
    async with open_database(database_url, settings) as database, database.write() as connection:
        first = await keys.resolve(connection, METER_SQL, {"known-1", "known-2"})
        assert set(first) == {"known-1", "known-2"}
        # Past the limit: the batch's already known id must still get its key (it was a
        # KeyError that failed the whole shared batch with a 500 naming this id).
        second = await keys.resolve(connection, METER_SQL, {"known-1", "new-1", "new-2"})
        assert set(second) == {"known-1", "new-1", "new-2"}
        assert second["known-1"] == first["known-1"]
        # Whatever was forgotten is looked up again, with the same key.
        third = await keys.resolve(connection, METER_SQL, {"known-1", "known-2", "new-1"})
        assert third == {**first, "new-1": second["new-1"]}
        assert keys.cached(METER_SQL) <= 3


async def test_re_registering_known_ids_burns_no_identity_value(
    settings: Settings, database_url: str, db: asyncpg.Connection
) -> None:
    async with open_database(database_url, settings) as database, database.write() as connection:
        for kind, sequence in (
            (METER_SQL, "meters_meter_key_seq"),
            (VEHICLE_SQL, "vehicles_vehicle_key_seq"),
        ):
            known = await DeviceKeys().resolve(connection, kind, {"A", "B", "C"})
            before = await _sequence_value(db, sequence)
            # A fresh cache (a restart, or ids the cache forgot) sees them all as unknown.
            again = await DeviceKeys().resolve(connection, kind, {"A", "B", "C"})
            assert again == known
            assert await _sequence_value(db, sequence) == before
            # A new id among known ones takes exactly one value.
            mixed = await DeviceKeys().resolve(connection, kind, {"A", "D"})
            assert mixed["A"] == known["A"]
            assert await _sequence_value(db, sequence) == (before or 0) + 1
