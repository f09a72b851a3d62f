-- SQL of the HTTP ingest benchmark: the seed's one-transaction-per-reading write path (the
-- naive baseline), the throw-away databases, and the checks run after each path.

-- name: create_database
-- {database} is a quoted identifier (DDL takes no bind parameters).
CREATE DATABASE {database};

-- name: drop_database
-- FORCE: an engine that died mid-run may still hold connections.
DROP DATABASE IF EXISTS {database} WITH (FORCE);

-- name: checkpoint
-- Each measured path starts with a clean WAL so the previous one's checkpoint does not land in it.
CHECKPOINT;

-- name: show_server_settings
SELECT current_setting('server_version') AS server_version,
       current_setting('fsync') AS fsync,
       current_setting('synchronous_commit') AS synchronous_commit,
       current_setting('full_page_writes') AS full_page_writes,
       current_setting('shared_buffers') AS shared_buffers,
       current_setting('max_wal_size') AS max_wal_size;

-- name: count_stored_rows
SELECT (SELECT count(*) FROM meter_readings) AS meter_history,
       (SELECT count(*) FROM vehicle_readings) AS vehicle_history,
       (SELECT count(*) FROM meter_live) AS meter_live,
       (SELECT count(*) FROM vehicle_live) AS vehicle_live;

-- name: naive_insert_meter_reading
-- The seed's history write: a plain INSERT, one row per statement.
INSERT INTO meter_readings (ts, received_at, kwh_consumed_ac, voltage, meter_id)
VALUES ($1, now(), $2, $3, $4);

-- name: naive_upsert_meter_live
-- The seed's live write: an unconditional upsert (a late reading overwrites a newer state).
INSERT INTO meter_live (ts, received_at, kwh_consumed_ac, voltage, meter_id)
VALUES ($1, now(), $2, $3, $4)
ON CONFLICT (meter_id) DO UPDATE
SET ts = EXCLUDED.ts,
    received_at = EXCLUDED.received_at,
    kwh_consumed_ac = EXCLUDED.kwh_consumed_ac,
    voltage = EXCLUDED.voltage;

-- name: naive_insert_vehicle_reading
-- Same shape as naive_insert_meter_reading.
INSERT INTO vehicle_readings (ts, received_at, soc, kwh_delivered_dc, battery_temp, vehicle_id)
VALUES ($1, now(), $2, $3, $4, $5);

-- name: naive_upsert_vehicle_live
-- Same shape as naive_upsert_meter_live.
INSERT INTO vehicle_live (ts, received_at, soc, kwh_delivered_dc, battery_temp, vehicle_id)
VALUES ($1, now(), $2, $3, $4, $5)
ON CONFLICT (vehicle_id) DO UPDATE
SET ts = EXCLUDED.ts,
    received_at = EXCLUDED.received_at,
    soc = EXCLUDED.soc,
    kwh_delivered_dc = EXCLUDED.kwh_delivered_dc,
    battery_temp = EXCLUDED.battery_temp;
