"""What Citus would refuse, read from a schema's catalog (Citus itself cannot be installed here).

Each rule is one Citus refuses at `create_distributed_table` / `create_reference_table` time or
on the first write (sources: Citus's documentation and its own checks, named in
docs/scale-out.md):

- every table of the schema has a place, and every place names a table that exists;
- a distributed table's column exists, is NOT NULL and hashable; the tables of one
  co-location group have columns of one type; a group's first table is itself distributed;
- a unique, primary-key or exclusion constraint (or unique index) of a distributed table, or of
  any of its partitions, holds the distribution column (with `=` in an exclusion constraint);
- a partitioned table is hash-distributed (Citus makes neither a reference table nor a
  coordinator table of one in our plan), and its unique constraints hold both the distribution
  column and the partition key;
- a foreign key goes distributed → reference, reference → reference, or between two tables of
  one co-location group on the distribution column; never to a distributed table from
  anything else, never between a coordinator table and a Citus table;
- no user trigger on a distributed or reference table (Citus refuses them unless
  citus.enable_unsafe_triggers is on, and they would fire on the workers).
"""

from __future__ import annotations

from collections.abc import Mapping

import asyncpg

from energy_ingest.db.distribution import Coordinator, Distributed, Placement, Reference

_TABLES = """
SELECT c.oid, c.relname, c.relkind = 'p' AS partitioned
FROM pg_class AS c
JOIN pg_namespace AS n ON n.oid = c.relnamespace
WHERE n.nspname = $1 AND c.relkind IN ('r', 'p') AND NOT c.relispartition
  AND NOT EXISTS (SELECT FROM pg_depend AS d WHERE d.objid = c.oid AND d.deptype = 'e')
"""

_COLUMN = """
SELECT a.attnum, a.attnotnull, format_type(a.atttypid, a.atttypmod) AS type,
       EXISTS (SELECT FROM pg_opclass AS oc JOIN pg_am AS am ON am.oid = oc.opcmethod
               WHERE am.amname = 'hash' AND oc.opcintype = a.atttypid AND oc.opcdefault)
           AS hashable
FROM pg_attribute AS a
WHERE a.attrelid = $1 AND a.attname = $2 AND NOT a.attisdropped
"""

# Unique and exclusion indexes of the table and of every partition below it; for an exclusion
# constraint, the operator of each key column. (pg_partition_tree lists nothing for a table
# that is not partitioned, hence the table itself besides.)
_UNIQUE_INDEXES = """
SELECT i.indexrelid::regclass::text AS index, t.relid::regclass::text AS on_table,
       i.indkey::smallint[] AS columns, i.indisexclusion AS exclusion,
       (SELECT array_agg(o.oprname ORDER BY k.n) FROM pg_constraint AS con
        CROSS JOIN LATERAL unnest(con.conexclop) WITH ORDINALITY AS k (op, n)
        JOIN pg_operator AS o ON o.oid = k.op
        WHERE con.conindid = i.indexrelid AND con.contype = 'x') AS operators
FROM (SELECT $1::oid::regclass AS relid
      UNION SELECT relid FROM pg_partition_tree($1::oid::regclass)) AS t
JOIN pg_index AS i ON i.indrelid = t.relid
WHERE i.indisunique OR i.indisexclusion
"""

_PARTITION_KEY = """
SELECT partattrs::smallint[] FROM pg_partitioned_table WHERE partrelid = $1
"""

_FOREIGN_KEYS = """
SELECT con.conname, con.conrelid, con.confrelid, con.conkey, con.confkey
FROM pg_constraint AS con
JOIN pg_class AS c ON c.oid = con.conrelid
JOIN pg_namespace AS n ON n.oid = c.relnamespace
WHERE con.contype = 'f' AND n.nspname = $1 AND con.conparentid = 0
"""

_TRIGGERS = """
SELECT tgname FROM pg_trigger WHERE tgrelid = $1 AND NOT tgisinternal
"""


def _group(name: str, tables: Mapping[str, Placement]) -> str:
    placement = tables[name]
    assert isinstance(placement, Distributed)
    return placement.colocate_with or name


async def citus_problems(
    connection: asyncpg.Connection, tables: Mapping[str, Placement], schema: str = "public"
) -> list[str]:
    """Everything Citus would refuse in `schema` placed as `tables` says; empty when none."""
    problems: list[str] = []
    found = {row["relname"]: row for row in await connection.fetch(_TABLES, schema)}
    for name in sorted(found.keys() - tables.keys()):
        problems.append(
            f"{name}: a table with no place on a Citus cluster; add it to "
            "energy_ingest.db.distribution.TABLES (distributed by its device column, reference,"
            " or coordinator) and to docs/scale-out.md"
        )
    for name in sorted(tables.keys() - found.keys()):
        problems.append(f"{name}: placed in energy_ingest.db.distribution but no such table")

    oids = {name: row["oid"] for name, row in found.items()}
    column_numbers: dict[str, int] = {}
    group_types: dict[str, set[str]] = {}
    for name, placement in tables.items():
        if name not in found:
            continue
        row = found[name]
        if not isinstance(placement, Distributed):
            if row["partitioned"]:
                problems.append(
                    f"{name}: partitioned, so it can only be hash-distributed"
                    " (Citus makes no reference table of a partitioned one)"
                )
            if isinstance(placement, Reference):
                for trigger in await connection.fetch(_TRIGGERS, row["oid"]):
                    problems.append(f"{name}: trigger {trigger['tgname']} on a reference table")
            continue
        if placement.colocate_with is not None and not (
            isinstance(tables.get(placement.colocate_with), Distributed)
            and tables[placement.colocate_with].colocate_with is None  # type: ignore[union-attr]
        ):
            problems.append(
                f"{name}: co-located with {placement.colocate_with}, which does not start a"
                " co-location group"
            )
            continue
        column = await connection.fetchrow(_COLUMN, row["oid"], placement.column)
        if column is None:
            problems.append(f"{name}: no column {placement.column} to distribute by")
            continue
        column_numbers[name] = column["attnum"]
        if not column["attnotnull"]:
            problems.append(f"{name}: distribution column {placement.column} may be NULL")
        if not column["hashable"]:
            problems.append(f"{name}: {placement.column} ({column['type']}) has no hash function")
        group_types.setdefault(_group(name, tables), set()).add(column["type"])

        partition_key: list[int] = []
        if row["partitioned"]:
            partition_key = list(await connection.fetchval(_PARTITION_KEY, row["oid"]))
        for index in await connection.fetch(_UNIQUE_INDEXES, row["oid"]):
            columns = list(index["columns"])
            what = f"{name}: {index['index']} on {index['on_table']}"
            if column["attnum"] not in columns:
                problems.append(
                    f"{what}: unique or exclusion constraint without the distribution column"
                    f" {placement.column}"
                )
            elif index["exclusion"]:
                operator = index["operators"][columns.index(column["attnum"])]
                if operator != "=":
                    problems.append(
                        f"{what}: exclusion constraint compares {placement.column} with"
                        f" {operator}, not ="
                    )
            if partition_key and not set(partition_key) <= set(columns):
                problems.append(f"{what}: unique constraint without the partition key")
        for trigger in await connection.fetch(_TRIGGERS, row["oid"]):
            problems.append(f"{name}: trigger {trigger['tgname']} on a distributed table")

    for group, types in sorted(group_types.items()):
        if len(types) > 1:
            problems.append(f"co-location group of {group}: distribution columns of types {types}")

    names = {oid: name for name, oid in oids.items()}
    for key in await connection.fetch(_FOREIGN_KEYS, schema):
        source, target = names.get(key["conrelid"]), names.get(key["confrelid"])
        if source is None or target is None or source not in tables or target not in tables:
            continue  # a partition's copy, or a table reported above
        what = f"foreign key {key['conname']} ({source} → {target})"
        here, there = tables[source], tables[target]
        if isinstance(there, Reference) and not isinstance(here, Coordinator):
            continue  # distributed → reference, reference → reference
        if isinstance(here, Distributed) and isinstance(there, Distributed):
            if _group(source, tables) != _group(target, tables):
                problems.append(f"{what}: between tables that are not co-located")
            elif (column_numbers.get(source), column_numbers.get(target)) not in zip(
                key["conkey"], key["confkey"], strict=True
            ):
                problems.append(f"{what}: does not pair the two distribution columns")
            continue
        if isinstance(here, Coordinator) and isinstance(there, Coordinator):
            continue
        problems.append(
            f"{what}: Citus refuses a foreign key from a {type(here).__name__.lower()} table"
            f" to a {type(there).__name__.lower()} table"
        )
    return problems
