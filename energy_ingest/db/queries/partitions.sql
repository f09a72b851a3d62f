-- Daily partitions of the history tables. Identifiers are filled in by
-- energy_ingest.db.partitions, which quotes them; values are bound parameters.

-- name: lock_partition_maintenance
-- Serialises partition creation across processes: two engines creating the same day at once
-- would otherwise race in the catalog.
SELECT pg_advisory_xact_lock(hashtextextended('energy_ingest.partitions', 0));

-- name: list_day_partitions
-- Partition names carry their day (parent_pYYYYMMDD); pg_inherits is the source of truth.
SELECT parent.relname AS parent_name, child.relname AS partition_name
FROM pg_inherits
JOIN pg_class AS parent ON parent.oid = pg_inherits.inhparent
JOIN pg_class AS child ON child.oid = pg_inherits.inhrelid
JOIN pg_namespace AS ns ON ns.oid = parent.relnamespace
WHERE parent.relname = ANY($1::text[]) AND ns.nspname = current_schema();

-- name: create_day_partition
-- {partition} and {parent} are quoted identifiers; {start} and {end} are quoted literals
-- (DDL takes no bind parameters). Append-only partitions are packed full (fillfactor 100) and
-- vacuumed after inserts so index-only scans and the visibility map stay current.
CREATE TABLE IF NOT EXISTS {partition} PARTITION OF {parent}
FOR VALUES FROM ({start}) TO ({end})
WITH (fillfactor = 100, autovacuum_vacuum_insert_scale_factor = 0.05);

-- name: create_rollup_day_partition
-- Same as create_day_partition for the hourly rollups of that day. Their rows are updated in
-- place all hour long: fillfactor 70 leaves room on each page for the new row version, so the
-- updates stay HOT (the key never changes) and the primary key does not bloat.
CREATE TABLE IF NOT EXISTS {partition} PARTITION OF {parent}
FOR VALUES FROM ({start}) TO ({end})
WITH (fillfactor = 70);

-- name: list_uncompacted_indexes
-- Primary-key indexes of day partitions not yet rebuilt packed (their fillfactor is not 100).
-- Rows arrive minute by minute across all devices, so a (device, ts) index grows by page
-- splits and ends about 70 % full; rebuilt once its day is closed it is 100 % full, a third
-- smaller, and stays so (late readings for closed days are rare).
SELECT child.relname AS partition_name, index_class.relname AS index_name
FROM pg_inherits
JOIN pg_class AS parent ON parent.oid = pg_inherits.inhparent
JOIN pg_class AS child ON child.oid = pg_inherits.inhrelid
JOIN pg_namespace AS ns ON ns.oid = parent.relnamespace
JOIN pg_index ON pg_index.indrelid = child.oid AND pg_index.indisprimary
JOIN pg_class AS index_class ON index_class.oid = pg_index.indexrelid
WHERE parent.relname = ANY($1::text[])
  AND ns.nspname = current_schema()
  AND NOT coalesce(index_class.reloptions, '{}') @> ARRAY['fillfactor=100']
  -- An empty partition has nothing to pack; marking it done would skip it once it is filled.
  AND pg_relation_size(child.oid) > 0;

-- name: try_lock_compaction
-- One compactor at a time across processes; the others skip this round.
SELECT pg_try_advisory_lock(hashtextextended('energy_ingest.compaction', 0));

-- name: unlock_compaction
SELECT pg_advisory_unlock(hashtextextended('energy_ingest.compaction', 0));

-- name: pack_index
-- {index} is a quoted identifier. Takes effect at the rebuild below.
ALTER INDEX {index} SET (fillfactor = 100);

-- name: rebuild_index
-- CONCURRENTLY: inserts into the partition (late readings) go on during the rebuild.
REINDEX INDEX CONCURRENTLY {index};

-- name: drop_partition
-- Retention: a whole day goes at once, {partition} a quoted identifier. No DELETE: nothing to
-- vacuum, no WAL for millions of rows.
DROP TABLE IF EXISTS {partition};
