"""The migrated schema is one Citus would take as docs/scale-out.md distributes it.

Citus cannot be installed here, so its rules are checked against the catalog (citus_rules.py),
and the checker itself is shown to catch each rule on tables made to break it.
"""

from __future__ import annotations

from pathlib import Path

import asyncpg

from energy_ingest.db.distribution import (
    TABLES,
    Coordinator,
    Distributed,
    Placement,
    Reference,
    citus_statements,
)
from tests.migration.citus_rules import citus_problems

_SCALE_OUT = Path(__file__).resolve().parents[2] / "docs" / "scale-out.md"


async def test_every_table_has_a_place_and_citus_would_take_it(db: asyncpg.Connection) -> None:
    problems = await citus_problems(db, TABLES)
    assert not problems, "\n".join(problems)


async def test_every_table_with_a_device_column_lives_on_the_workers(
    db: asyncpg.Connection,
) -> None:
    # A table naming devices is joined with the device tables, so it must be on every node
    # (distributed, or a reference table), never left on the coordinator alone.
    rows = await db.fetch(
        "SELECT DISTINCT c.relname FROM pg_class AS c"
        " JOIN pg_namespace AS n ON n.oid = c.relnamespace"
        " JOIN pg_attribute AS a ON a.attrelid = c.oid AND NOT a.attisdropped"
        " WHERE n.nspname = 'public' AND c.relkind IN ('r', 'p') AND NOT c.relispartition"
        " AND a.attname IN ('meter_key', 'vehicle_key', 'meter_id', 'vehicle_id')"
    )
    assert rows
    for row in rows:
        placement = TABLES.get(row["relname"])
        assert isinstance(placement, Distributed | Reference), (row["relname"], placement)


def test_scale_out_lists_the_calls_in_the_order_they_must_run() -> None:
    text = _SCALE_OUT.read_text(encoding="utf-8")
    positions = [text.find(statement) for statement in citus_statements()]
    missing = [s for s, at in zip(citus_statements(), positions, strict=True) if at < 0]
    assert not missing, f"docs/scale-out.md lacks: {missing}"
    assert positions == sorted(positions), "docs/scale-out.md lists the calls out of order"


_BROKEN = """
CREATE SCHEMA citus_probe;
SET search_path TO citus_probe;
CREATE TABLE devices (device_key integer PRIMARY KEY, device_id text UNIQUE);
CREATE TABLE readings (
    ts timestamptz NOT NULL, device_key integer NOT NULL, serial bigint,
    PRIMARY KEY (device_key, ts), UNIQUE (serial, ts),
    FOREIGN KEY (device_key) REFERENCES devices (device_key)
) PARTITION BY RANGE (ts);
CREATE TABLE readings_p1 PARTITION OF readings FOR VALUES FROM ('2026-01-01') TO ('2026-01-02');
CREATE UNIQUE INDEX readings_p1_ts ON readings_p1 (ts);
CREATE TABLE slots (
    device_key integer, during tstzrange,
    EXCLUDE USING gist (device_key WITH <>, during WITH &&)
);
CREATE TABLE other_group (device_key bigint NOT NULL PRIMARY KEY);
CREATE TABLE notes (id integer PRIMARY KEY, device_key integer REFERENCES other_group);
CREATE TABLE by_day (day date NOT NULL, n integer NOT NULL) PARTITION BY RANGE (day);
CREATE FUNCTION nothing() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN RETURN NULL; END $$;
CREATE TRIGGER devices_changed AFTER INSERT ON devices FOR EACH ROW EXECUTE FUNCTION nothing();
CREATE TABLE forgotten (x integer);
"""


async def test_the_rules_catch_what_citus_refuses(db: asyncpg.Connection) -> None:
    await db.execute("CREATE EXTENSION IF NOT EXISTS btree_gist")
    await db.execute(_BROKEN)
    placed: dict[str, Placement] = {
        "devices": Reference(),
        "readings": Distributed("device_key"),
        "slots": Distributed("device_key", colocate_with="readings"),
        "other_group": Distributed("device_key", colocate_with="readings"),
        "notes": Coordinator("probe"),
        "by_day": Reference(),
        "gone": Reference(),
    }
    problems = "\n".join(await citus_problems(db, placed, schema="citus_probe"))
    for expected in (
        "forgotten: a table with no place",
        "gone: placed in energy_ingest.db.distribution but no such table",
        "readings_serial_ts_key on readings: unique or exclusion constraint without the"
        " distribution column device_key",
        "readings_p1_ts on readings_p1: unique or exclusion constraint without",
        "slots: distribution column device_key may be NULL",
        "compares device_key with <>, not =",
        "co-location group of readings: distribution columns of types",
        "notes → other_group): Citus refuses a foreign key from a coordinator table",
        "by_day: partitioned, so it can only be hash-distributed",
        "devices: trigger devices_changed on a reference table",
    ):
        assert expected in problems, f"{expected!r} not reported in:\n{problems}"
    # The foreign key from the distributed history to its reference dictionary is fine.
    assert "readings → devices" not in problems
