-- Forward-only schema migrations, applied in name order.

-- name: lock_migrations
-- Session-level, so several engines starting at once apply each migration exactly once.
SELECT pg_advisory_lock(hashtextextended('energy_ingest.migrations', 0));

-- name: unlock_migrations
SELECT pg_advisory_unlock(hashtextextended('energy_ingest.migrations', 0));

-- name: create_migrations_table
CREATE TABLE IF NOT EXISTS schema_migrations (
    version    text PRIMARY KEY,
    applied_at timestamptz NOT NULL DEFAULT now()
);

-- name: list_applied_migrations
SELECT version FROM schema_migrations ORDER BY version;

-- name: record_migration
INSERT INTO schema_migrations (version) VALUES ($1);
