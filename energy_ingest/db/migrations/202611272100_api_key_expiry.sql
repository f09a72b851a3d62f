-- Keys may expire: a device key rotated yearly, a contractor's key for a month. NULL: never.
ALTER TABLE api_keys
    ADD COLUMN expires_at timestamptz,
    ADD CONSTRAINT api_keys_expire_after_creation CHECK (expires_at IS NULL OR expires_at > created_at);
