-- Group-commit writer: one transaction per batch of readings from many requests.
-- Every batch is COPYed (binary) into a per-connection staging table, then moved into history
-- and live with set-based statements; nothing on this path runs once per reading.

-- name: create_staging_tables
-- Temporary, so staging costs no WAL; ON COMMIT DELETE ROWS empties them at every commit.
-- Staging carries both the device key (for history) and the id (for live). Values stay double
-- precision here: live keeps exactly what the device sent.
CREATE TEMPORARY TABLE IF NOT EXISTS meter_staging (
    seq             integer          NOT NULL,
    ts              timestamptz      NOT NULL,
    kwh_consumed_ac double precision NOT NULL,
    voltage         double precision NOT NULL,
    meter_key       integer          NOT NULL,
    meter_id        text             NOT NULL
) ON COMMIT DELETE ROWS;
CREATE TEMPORARY TABLE IF NOT EXISTS vehicle_staging (
    seq              integer          NOT NULL,
    ts               timestamptz      NOT NULL,
    soc              double precision NOT NULL,
    kwh_delivered_dc double precision NOT NULL,
    battery_temp     double precision NOT NULL,
    vehicle_key      integer          NOT NULL,
    vehicle_id       text             NOT NULL
) ON COMMIT DELETE ROWS;

-- name: register_meters
-- Ids the writer has not cached; sorted so concurrent writers lock in one order. Runs in its
-- own short transaction: a key is harmless even if the batch later fails. NOT EXISTS drops
-- the ids that already exist before the insert: ON CONFLICT alone would still draw an
-- identity value for each of them, and a re-send loop could exhaust the int4 key. ON CONFLICT
-- stays for the race with another writer registering the same new id.
INSERT INTO meters (meter_id)
SELECT new.meter_id FROM unnest($1::text[]) AS new (meter_id)
WHERE NOT EXISTS (SELECT FROM meters AS m WHERE m.meter_id = new.meter_id)
ORDER BY new.meter_id
ON CONFLICT (meter_id) DO NOTHING;

-- name: get_meter_keys
SELECT meter_id AS device_id, meter_key AS device_key
FROM meters
WHERE meter_id = ANY($1::text[]);

-- name: register_vehicles
-- Same as register_meters.
INSERT INTO vehicles (vehicle_id)
SELECT new.vehicle_id FROM unnest($1::text[]) AS new (vehicle_id)
WHERE NOT EXISTS (SELECT FROM vehicles AS v WHERE v.vehicle_id = new.vehicle_id)
ORDER BY new.vehicle_id
ON CONFLICT (vehicle_id) DO NOTHING;

-- name: get_vehicle_keys
SELECT vehicle_id AS device_id, vehicle_key AS device_key
FROM vehicles
WHERE vehicle_id = ANY($1::text[]);

-- name: insert_meter_readings
-- ON CONFLICT DO NOTHING skips retries and conflicts without aborting the batch; they are
-- classified afterwards. ORDER BY the primary key so concurrent batches take index locks in
-- one order and each partition's B-tree is filled left to right.
-- The hourly rollups grow by exactly the rows stored (RETURNING): a duplicate or a conflict is
-- never counted, and the sums commit with the readings. GROUP BY makes one row per (meter,
-- hour), so the upsert touches each rollup row once; ORDER BY locks them in one order across
-- concurrent batches. The data-modifying CTE runs to completion though nothing reads it.
-- date_bin from a UTC midnight is the UTC hour without date_trunc's time-zone lookup per row.
-- Answers how many rows were stored.
WITH stored AS (
    INSERT INTO meter_readings (ts, received_at, kwh_consumed_ac, voltage, meter_key)
    SELECT ts, now(), kwh_consumed_ac, voltage, meter_key
    FROM meter_staging
    ORDER BY meter_key, ts
    ON CONFLICT (meter_key, ts) DO NOTHING
    RETURNING meter_key, ts, kwh_consumed_ac
), rolled_up AS (
    INSERT INTO meter_rollups AS r (hour, kwh_consumed_ac, readings, meter_key)
    SELECT date_bin('1 hour', ts, '2000-01-01 00:00+00'), sum(kwh_consumed_ac::numeric), count(*), meter_key
    FROM stored
    GROUP BY meter_key, date_bin('1 hour', ts, '2000-01-01 00:00+00')
    ORDER BY meter_key, date_bin('1 hour', ts, '2000-01-01 00:00+00')
    ON CONFLICT (meter_key, hour) DO UPDATE
    SET kwh_consumed_ac = r.kwh_consumed_ac + EXCLUDED.kwh_consumed_ac,
        readings = r.readings + EXCLUDED.readings
)
SELECT count(*) FROM stored;

-- name: insert_vehicle_readings
-- Same shape and reasons as insert_meter_readings. The temperature sums add the stored real
-- (RETURNING gives the row as stored), as the per-vehicle average reads it.
WITH stored AS (
    INSERT INTO vehicle_readings (ts, received_at, kwh_delivered_dc, soc, battery_temp, vehicle_key)
    SELECT ts, now(), kwh_delivered_dc, sensor_real(soc), sensor_real(battery_temp), vehicle_key
    FROM vehicle_staging
    ORDER BY vehicle_key, ts
    ON CONFLICT (vehicle_key, ts) DO NOTHING
    RETURNING vehicle_key, ts, kwh_delivered_dc, battery_temp
), rolled_up AS (
    INSERT INTO vehicle_rollups AS r (hour, kwh_delivered_dc, battery_temp_sum, battery_temp_min,
                                      battery_temp_max, readings, vehicle_key)
    SELECT date_bin('1 hour', ts, '2000-01-01 00:00+00'), sum(kwh_delivered_dc::numeric),
           sum(battery_temp::numeric), min(battery_temp), max(battery_temp), count(*),
           vehicle_key
    FROM stored
    GROUP BY vehicle_key, date_bin('1 hour', ts, '2000-01-01 00:00+00')
    ORDER BY vehicle_key, date_bin('1 hour', ts, '2000-01-01 00:00+00')
    ON CONFLICT (vehicle_key, hour) DO UPDATE
    SET kwh_delivered_dc = r.kwh_delivered_dc + EXCLUDED.kwh_delivered_dc,
        battery_temp_sum = r.battery_temp_sum + EXCLUDED.battery_temp_sum,
        battery_temp_min = least(r.battery_temp_min, EXCLUDED.battery_temp_min),
        battery_temp_max = greatest(r.battery_temp_max, EXCLUDED.battery_temp_max),
        readings = r.readings + EXCLUDED.readings
)
SELECT count(*) FROM stored;

-- name: classify_skipped_meter_readings
-- Runs only when the insert stored fewer rows than were staged. A row whose xmin is this
-- transaction's is one we just stored; any other match is an earlier reading of the same
-- (meter, timestamp): identical values make the new one a duplicate, different ones a conflict.
-- A new statement sees rows that concurrent batches committed while our insert waited on them.
SELECT s.seq,
       (h.kwh_consumed_ac = s.kwh_consumed_ac AND h.voltage = s.voltage) AS identical
FROM meter_staging AS s
JOIN meter_readings AS h ON h.meter_key = s.meter_key AND h.ts = s.ts
WHERE h.xmin <> pg_current_xact_id()::xid;

-- name: classify_skipped_vehicle_readings
-- Same reasoning as classify_skipped_meter_readings. History keeps soc and battery_temp as
-- real, so the re-sent values are compared as real too (31.2 is not 31.2::real as a double).
-- Same-shape with insert_vehicle_readings: both go through sensor_real.
SELECT s.seq,
       (h.soc = sensor_real(s.soc)
        AND h.kwh_delivered_dc = s.kwh_delivered_dc
        AND h.battery_temp = sensor_real(s.battery_temp)) AS identical
FROM vehicle_staging AS s
JOIN vehicle_readings AS h ON h.vehicle_key = s.vehicle_key AND h.ts = s.ts
WHERE h.xmin <> pg_current_xact_id()::xid;

-- name: upsert_meter_live
-- $1: staged rows that were not stored (duplicates, conflicts); usually empty.
-- DISTINCT ON keeps each meter's newest stored reading of the batch; ORDER BY meter_id makes
-- concurrent batches lock live rows in one order, so they cannot deadlock. The WHERE clause
-- lets the live state only move forward in time: a late reading never replaces a newer one.
INSERT INTO meter_live (ts, received_at, kwh_consumed_ac, voltage, meter_id)
SELECT DISTINCT ON (meter_id) ts, now(), kwh_consumed_ac, voltage, meter_id
FROM meter_staging
WHERE seq <> ALL($1::integer[])
ORDER BY meter_id, ts DESC
ON CONFLICT (meter_id) DO UPDATE
SET ts = EXCLUDED.ts,
    received_at = EXCLUDED.received_at,
    kwh_consumed_ac = EXCLUDED.kwh_consumed_ac,
    voltage = EXCLUDED.voltage
WHERE meter_live.ts < EXCLUDED.ts;

-- name: upsert_vehicle_live
-- Same shape and reasons as upsert_meter_live.
INSERT INTO vehicle_live (ts, received_at, soc, kwh_delivered_dc, battery_temp, vehicle_id)
SELECT DISTINCT ON (vehicle_id) ts, now(), soc, kwh_delivered_dc, battery_temp, vehicle_id
FROM vehicle_staging
WHERE seq <> ALL($1::integer[])
ORDER BY vehicle_id, ts DESC
ON CONFLICT (vehicle_id) DO UPDATE
SET ts = EXCLUDED.ts,
    received_at = EXCLUDED.received_at,
    soc = EXCLUDED.soc,
    kwh_delivered_dc = EXCLUDED.kwh_delivered_dc,
    battery_temp = EXCLUDED.battery_temp
WHERE vehicle_live.ts < EXCLUDED.ts;
