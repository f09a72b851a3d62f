-- API keys: created, looked up by their public prefix, listed, revoked.

-- name: lock_api_keys
-- Serialises the first start-up's "no key yet, create the admin key" across processes.
SELECT pg_advisory_xact_lock(hashtextextended('energy_ingest.api_keys', 0));

-- name: count_api_keys
-- Revoked keys count too: once any key existed, start-up never mints an admin key by itself.
SELECT count(*) FROM api_keys;

-- name: insert_api_key
INSERT INTO api_keys (prefix, secret_hash, name, scopes, device_id, device_kind, expires_at)
VALUES ($1, $2, $3, $4::text[], $5, $6, $7)
RETURNING prefix, name, scopes, device_id, device_kind, created_at, revoked_at, expires_at;

-- name: get_api_key
-- The primary key's index: one lookup per key the engine has not cached.
SELECT prefix, secret_hash, name, scopes, device_id, device_kind, created_at, revoked_at,
       expires_at
FROM api_keys
WHERE prefix = $1;

-- name: list_api_key_ids
-- Every id ever issued: each process refuses other ids without a lookup. A sequential scan
-- of a small table, once per (re)connection of the key listener.
SELECT prefix FROM api_keys;

-- name: bind_api_key_kind
-- Keys made before device keys had to name their kind are bound to the kind of their first
-- write. `device_kind IS NULL` is re-checked after a concurrent update's commit (READ
-- COMMITTED), so of two first writes of different kinds exactly one wins.
UPDATE api_keys
SET device_kind = $2
WHERE prefix = $1 AND device_id IS NOT NULL AND device_kind IS NULL
RETURNING device_kind;

-- name: get_api_key_kind
SELECT device_kind FROM api_keys WHERE prefix = $1;

-- name: list_api_keys
SELECT prefix, name, scopes, device_id, device_kind, created_at, revoked_at, expires_at
FROM api_keys
ORDER BY created_at, prefix;

-- name: revoke_api_key
-- Revoking twice keeps the first time: the answer says when the key really stopped working.
UPDATE api_keys
SET revoked_at = coalesce(revoked_at, now())
WHERE prefix = $1
RETURNING prefix, name, scopes, device_id, device_kind, created_at, revoked_at, expires_at;
