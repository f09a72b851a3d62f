-- API keys. Only a SHA-256 of each key's secret is kept: the secret is 256 random bits, so a
-- slow password hash would add nothing but CPU on every request; a leaked table gives no key.

CREATE TABLE api_keys (
    -- The public part of a key (`eie_<prefix>_<secret>`): lists, logs and revocation name it.
    prefix      text PRIMARY KEY CHECK (prefix ~ '^[0-9a-f]{12}$'),
    secret_hash bytea NOT NULL CHECK (octet_length(secret_hash) = 32),
    name        text NOT NULL DEFAULT '' CHECK (length(name) <= 200),
    scopes      text[] NOT NULL CHECK (
        cardinality(scopes) > 0 AND scopes <@ ARRAY['ingest', 'read', 'admin']::text[]
    ),
    -- A device-bound key may only write (and read) this one device.
    device_id   text CHECK (device_id ~ '^[A-Za-z0-9._:\-]{1,64}$'),
    -- NULL: the id as a meter and as a vehicle; otherwise only that kind.
    device_kind text CHECK (device_kind IN ('meter', 'vehicle')),
    created_at  timestamptz NOT NULL DEFAULT now(),
    revoked_at  timestamptz,
    CONSTRAINT api_keys_kind_needs_device CHECK (device_kind IS NULL OR device_id IS NOT NULL),
    -- Administration is fleet-wide by nature; a device's key must never carry it.
    CONSTRAINT api_keys_admin_not_device_bound CHECK (
        device_id IS NULL OR NOT ('admin' = ANY (scopes))
    )
);

-- Every engine process caches keys; any change to a key (from the CLI, the API or plain SQL)
-- tells them at once, so a revocation takes effect without waiting for a cache to expire.
CREATE FUNCTION notify_api_key_change() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    -- An empty payload (TRUNCATE) means: forget every cached key.
    PERFORM pg_notify('energy_ingest_api_keys', coalesce(NEW.prefix, OLD.prefix, ''));
    RETURN NULL;
END;
$$;

CREATE TRIGGER api_keys_changed
AFTER INSERT OR UPDATE OR DELETE ON api_keys
FOR EACH ROW EXECUTE FUNCTION notify_api_key_change();

CREATE TRIGGER api_keys_truncated
AFTER TRUNCATE ON api_keys
FOR EACH STATEMENT EXECUTE FUNCTION notify_api_key_change();
