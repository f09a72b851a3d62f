-- The read replica's lag, measured by each engine (energy_ingest.db.replica): the primary's WAL
-- position now, and how far the replica has replayed. Positions as byte offsets (bigint), so
-- the engine compares numbers, not pg_lsn text.

-- name: get_primary_wal_position
-- The write position: every transaction acknowledged before this call has its commit record
-- at or below it, so a replica that replayed this far holds all of them.
SELECT (pg_current_wal_lsn() - '0/0'::pg_lsn)::bigint;

-- name: get_replica_replay_position
-- NULL when the server is not a standby (a primary named as the replica holds everything).
SELECT CASE WHEN pg_is_in_recovery() THEN (pg_last_wal_replay_lsn() - '0/0'::pg_lsn)::bigint END;
