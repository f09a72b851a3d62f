-- SQL of the benchmark (never of the engine). The first part only touches the server and the
-- catalog; the second follows the engine's schema (energy_ingest/db/migrations/) and changes
-- with it: the storage floor, the naive per-reading writer, the analytics bulk load.

-- =============================================================================================
-- Server, scratch databases, catalog
-- =============================================================================================

-- name: create_database
-- {database} is a quoted identifier (DDL takes no bind parameters).
CREATE DATABASE {database};

-- name: drop_database
-- FORCE: a server that died mid-run may still hold connections.
DROP DATABASE IF EXISTS {database} WITH (FORCE);

-- name: checkpoint
-- Each measured phase starts with clean buffers so the previous one's checkpoint does not land
-- in it.
CHECKPOINT;

-- name: show_server
SELECT current_setting('server_version') AS server_version,
       current_setting('fsync') AS fsync,
       current_setting('synchronous_commit') AS synchronous_commit,
       current_setting('full_page_writes') AS full_page_writes,
       current_setting('wal_sync_method') AS wal_sync_method,
       current_setting('shared_buffers') AS shared_buffers,
       current_setting('max_wal_size') AS max_wal_size;

-- name: list_table_columns
-- The storage floor COPYs exactly the columns history has, in their order.
SELECT attname AS column_name
FROM pg_attribute
WHERE attrelid = $1::regclass AND attnum > 0 AND NOT attisdropped
ORDER BY attnum;

-- name: measure_history_storage
-- Every partition of each history table (or those named in $2): heap, indexes, free-space and
-- visibility maps.
SELECT parent.relname AS history_table,
       count(*) AS partitions,
       coalesce(sum(pg_total_relation_size(child.oid)), 0) AS total_bytes,
       coalesce(sum(pg_relation_size(child.oid)), 0) AS heap_bytes,
       coalesce(sum(pg_indexes_size(child.oid)), 0) AS index_bytes
FROM pg_inherits
JOIN pg_class AS parent ON parent.oid = pg_inherits.inhparent
JOIN pg_class AS child ON child.oid = pg_inherits.inhrelid
JOIN pg_namespace AS ns ON ns.oid = parent.relnamespace
WHERE parent.relname = ANY($1::text[])
  AND ns.nspname = current_schema()
  AND ($2::text[] IS NULL OR child.relname = ANY($2::text[]))
GROUP BY parent.relname
ORDER BY parent.relname;

-- name: vacuum_analyze
-- What autovacuum does to append-only partitions soon after a load: visibility map, hint bits,
-- planner statistics.
VACUUM (ANALYZE);

-- =============================================================================================
-- Following the engine's schema
-- =============================================================================================

-- name: count_stored_rows
SELECT (SELECT count(*) FROM meter_readings) AS meter_readings,
       (SELECT count(*) FROM vehicle_readings) AS vehicle_readings,
       (SELECT count(*) FROM meter_live) AS meter_live,
       (SELECT count(*) FROM vehicle_live) AS vehicle_live;

-- name: count_history_rows
-- All rows, or those before $1 (the closed days).
SELECT (SELECT count(*) FROM meter_readings WHERE $1::timestamptz IS NULL OR ts < $1)
           AS meter_readings,
       (SELECT count(*) FROM vehicle_readings WHERE $1::timestamptz IS NULL OR ts < $1)
           AS vehicle_readings;

-- ---------------------------------------------------------------------------------------------
-- Storage floor: history by binary COPY (bench/floor.py, columns read from the catalog), then
-- the live state in one set-based statement per kind and transaction.
-- ---------------------------------------------------------------------------------------------

-- name: floor_upsert_meter_live
-- One row per meter (the newest of the transaction), sorted by meter id; the same
-- forward-only rule as the engine's live upsert.
INSERT INTO meter_live (ts, received_at, kwh_consumed_ac, voltage, meter_id)
SELECT ts, now(), kwh_consumed_ac, voltage, meter_id
FROM unnest($1::timestamptz[], $2::double precision[], $3::double precision[], $4::text[])
    AS live (ts, kwh_consumed_ac, voltage, meter_id)
ON CONFLICT (meter_id) DO UPDATE
SET ts = EXCLUDED.ts,
    received_at = EXCLUDED.received_at,
    kwh_consumed_ac = EXCLUDED.kwh_consumed_ac,
    voltage = EXCLUDED.voltage
WHERE meter_live.ts < EXCLUDED.ts;

-- name: floor_upsert_vehicle_live
-- Same shape and reasons as floor_upsert_meter_live.
INSERT INTO vehicle_live (ts, received_at, soc, kwh_delivered_dc, battery_temp, vehicle_id)
SELECT ts, now(), soc, kwh_delivered_dc, battery_temp, vehicle_id
FROM unnest($1::timestamptz[], $2::double precision[], $3::double precision[],
            $4::double precision[], $5::text[])
    AS live (ts, soc, kwh_delivered_dc, battery_temp, vehicle_id)
ON CONFLICT (vehicle_id) DO UPDATE
SET ts = EXCLUDED.ts,
    received_at = EXCLUDED.received_at,
    soc = EXCLUDED.soc,
    kwh_delivered_dc = EXCLUDED.kwh_delivered_dc,
    battery_temp = EXCLUDED.battery_temp
WHERE vehicle_live.ts < EXCLUDED.ts;

-- ---------------------------------------------------------------------------------------------
-- Naive baseline (bench/naive_writer.py): the seed's write path, one reading per transaction.
-- ---------------------------------------------------------------------------------------------

-- name: naive_insert_meter_reading
-- One row per statement. A retry is skipped instead of stored twice (the seed stored it twice):
-- the baseline keeps the engine's data rules, only its write pattern is the seed's.
INSERT INTO meter_readings (ts, received_at, kwh_consumed_ac, voltage, meter_key)
VALUES ($1, now(), $2, $3, $4)
ON CONFLICT (meter_key, ts) DO NOTHING;

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
-- Same as naive_insert_meter_reading; $2…$4 are soc, kwh_delivered_dc, battery_temp.
INSERT INTO vehicle_readings (ts, received_at, soc, kwh_delivered_dc, battery_temp, vehicle_key)
VALUES ($1, now(), $2, $3, $4, $5)
ON CONFLICT (vehicle_key, ts) DO NOTHING;

-- name: naive_upsert_vehicle_live
-- Same as naive_upsert_meter_live.
INSERT INTO vehicle_live (ts, received_at, soc, kwh_delivered_dc, battery_temp, vehicle_id)
VALUES ($1, now(), $2, $3, $4, $5)
ON CONFLICT (vehicle_id) DO UPDATE
SET ts = EXCLUDED.ts,
    received_at = EXCLUDED.received_at,
    soc = EXCLUDED.soc,
    kwh_delivered_dc = EXCLUDED.kwh_delivered_dc,
    battery_temp = EXCLUDED.battery_temp;

-- ---------------------------------------------------------------------------------------------
-- Analytics fleet (bench/analytics.py): dictionaries registered first, so meter_key n and
-- vehicle_key n are the meter and the vehicle of one charging point.
-- ---------------------------------------------------------------------------------------------

-- name: insert_bench_assignments
-- $1 vehicles, $2 their meters (same length), from $3 on, open-ended.
INSERT INTO vehicle_meter_assignments (vehicle_id, meter_id, during)
SELECT vehicle_id, meter_id, tstzrange($3::timestamptz, NULL, '[)')
FROM unnest($1::text[], $2::text[]) AS pair (vehicle_id, meter_id);

-- name: bulk_insert_meter_history
-- Every meter every $3 over [$1, $2), in arrival order (time, then meter): each meter's rows
-- spread over the heap as after real ingest, and the primary key filled the way ingest fills
-- it. Values are plausible functions of key and time: 3.7/7.4/11 kW chargers, 225–245 V.
INSERT INTO meter_readings (ts, received_at, kwh_consumed_ac, voltage, meter_key)
SELECT t.ts,
       t.ts + interval '2 seconds',
       (1 + m.meter_key % 3) * 3.7 * extract(epoch FROM $3::interval) / 3600
           * (0.95 + ((m.meter_key * 7919 + extract(epoch FROM t.ts)::bigint / 60) % 101) / 2020.0),
       225 + m.meter_key % 15 + ((m.meter_key + extract(epoch FROM t.ts)::bigint / 60) % 9) * 0.5,
       m.meter_key
FROM generate_series($1::timestamptz, $2::timestamptz - $3::interval, $3::interval) AS t (ts)
CROSS JOIN meters AS m
ORDER BY t.ts, m.meter_key;

-- name: bulk_insert_vehicle_history
-- Same shape as bulk_insert_meter_history: DC is the same point's AC at 80–96 % efficiency.
INSERT INTO vehicle_readings (ts, received_at, kwh_delivered_dc, soc, battery_temp, vehicle_key)
SELECT t.ts,
       t.ts + interval '2 seconds',
       (1 + v.vehicle_key % 3) * 3.7 * extract(epoch FROM $3::interval) / 3600
           * (0.95 + ((v.vehicle_key * 7919 + extract(epoch FROM t.ts)::bigint / 60) % 101) / 2020.0)
           * (0.80 + (v.vehicle_key % 17) / 100.0),
       (10 + (v.vehicle_key * 13 + extract(epoch FROM t.ts)::bigint / 600) % 90)::real,
       (18 + v.vehicle_key % 15 + (extract(epoch FROM t.ts)::bigint / 60 % 30) / 10.0)::real,
       v.vehicle_key
FROM generate_series($1::timestamptz, $2::timestamptz - $3::interval, $3::interval) AS t (ts)
CROSS JOIN vehicles AS v
ORDER BY t.ts, v.vehicle_key;

-- name: bulk_roll_up_meter_history
-- The rollups of history bulk-loaded over [$1, $2) (whole days), as the writer's inbox and the
-- folder would have kept them: hourly rows from history, then each touched day's row from its
-- hourly rows (the running totals of the engine's migration back-fill).
INSERT INTO meter_rollups AS r (hour, kwh_consumed_ac, readings, meter_key)
SELECT date_bin('1 hour', ts, '2000-01-01 00:00+00'), sum(kwh_consumed_ac::numeric), count(*),
       meter_key
FROM meter_readings
WHERE ts >= $1 AND ts < $2
GROUP BY meter_key, date_bin('1 hour', ts, '2000-01-01 00:00+00')
ON CONFLICT (meter_key, hour) DO UPDATE
SET kwh_consumed_ac = r.kwh_consumed_ac + EXCLUDED.kwh_consumed_ac,
    readings = r.readings + EXCLUDED.readings;

-- name: bulk_roll_up_vehicle_history
-- Same as bulk_roll_up_meter_history for the vehicles.
INSERT INTO vehicle_rollups AS r (hour, kwh_delivered_dc, battery_temp_sum, battery_temp_min,
                                  battery_temp_max, readings, vehicle_key)
SELECT date_bin('1 hour', ts, '2000-01-01 00:00+00'), sum(kwh_delivered_dc::numeric),
       sum(battery_temp::numeric), min(battery_temp), max(battery_temp), count(*), vehicle_key
FROM vehicle_readings
WHERE ts >= $1 AND ts < $2
GROUP BY vehicle_key, date_bin('1 hour', ts, '2000-01-01 00:00+00')
ON CONFLICT (vehicle_key, hour) DO UPDATE
SET kwh_delivered_dc = r.kwh_delivered_dc + EXCLUDED.kwh_delivered_dc,
    battery_temp_sum = r.battery_temp_sum + EXCLUDED.battery_temp_sum,
    battery_temp_min = least(r.battery_temp_min, EXCLUDED.battery_temp_min),
    battery_temp_max = greatest(r.battery_temp_max, EXCLUDED.battery_temp_max),
    readings = r.readings + EXCLUDED.readings;

-- name: bulk_roll_up_meter_days
-- The day rows of the days [$1, $2) from their hourly rows: running totals to the day's end.
INSERT INTO meter_rollup_days AS d (day, kwh_consumed_ac, readings, meter_key)
SELECT day, array_agg(kwh ORDER BY slot), array_agg(readings::integer ORDER BY slot), meter_key
FROM (
    SELECT device.meter_key, device.day, slot,
           sum(coalesce(hours.kwh_consumed_ac, 0)) OVER running AS kwh,
           sum(coalesce(hours.readings, 0)) OVER running AS readings
    FROM (SELECT DISTINCT meter_key, date_bin('1 day', hour, '2000-01-01 00:00+00') AS day
          FROM meter_rollups WHERE hour >= $1 AND hour < $2) AS device
    CROSS JOIN generate_series(0, 23) AS slot
    LEFT JOIN meter_rollups AS hours
        ON hours.meter_key = device.meter_key AND hours.hour = device.day + slot * interval '1 hour'
    WINDOW running AS (PARTITION BY device.meter_key, device.day ORDER BY slot DESC)
) AS slots
GROUP BY meter_key, day
ON CONFLICT (meter_key, day) DO UPDATE
SET kwh_consumed_ac = EXCLUDED.kwh_consumed_ac, readings = EXCLUDED.readings;

-- name: bulk_roll_up_vehicle_days
-- Same as bulk_roll_up_meter_days for the vehicles.
INSERT INTO vehicle_rollup_days AS d (day, kwh_delivered_dc, battery_temp_sum, readings,
                                      vehicle_key)
SELECT day, array_agg(kwh ORDER BY slot), array_agg(temp ORDER BY slot),
       array_agg(readings::integer ORDER BY slot), vehicle_key
FROM (
    SELECT device.vehicle_key, device.day, slot,
           sum(coalesce(hours.kwh_delivered_dc, 0)) OVER running AS kwh,
           sum(coalesce(hours.battery_temp_sum, 0)) OVER running AS temp,
           sum(coalesce(hours.readings, 0)) OVER running AS readings
    FROM (SELECT DISTINCT vehicle_key, date_bin('1 day', hour, '2000-01-01 00:00+00') AS day
          FROM vehicle_rollups WHERE hour >= $1 AND hour < $2) AS device
    CROSS JOIN generate_series(0, 23) AS slot
    LEFT JOIN vehicle_rollups AS hours
        ON hours.vehicle_key = device.vehicle_key
       AND hours.hour = device.day + slot * interval '1 hour'
    WINDOW running AS (PARTITION BY device.vehicle_key, device.day ORDER BY slot DESC)
) AS slots
GROUP BY vehicle_key, day
ON CONFLICT (vehicle_key, day) DO UPDATE
SET kwh_delivered_dc = EXCLUDED.kwh_delivered_dc,
    battery_temp_sum = EXCLUDED.battery_temp_sum,
    readings = EXCLUDED.readings;

-- name: bulk_roll_up_vehicle_energy
-- The vehicles' charging split of history bulk-loaded over [$1, $2) (whole hours), as the
-- folder computes it: vehicle_energy_hours_of over each vehicle's day, for the vehicles whose
-- key leaves remainder $3 divided by $4 (the load's connections share the vehicles). The hour
-- just after the load is computed again too: an earlier load written later ends its session's
-- start there. Engine defaults: session gap 5 minutes, caps 1,000 kW, gap 150 s.
INSERT INTO vehicle_energy_hours AS h (
    hour, charging_ac, charging_dc, standby_ac, ac_gap_minutes, dc_gap_minutes,
    ac_reconciled_interval, ac_reconciled_register, dc_reconciled_interval,
    dc_reconciled_register, vehicle_key, charging_minutes, charging_readings, session_starts,
    standby_minutes, ac_interval_readings, ac_register_readings, ac_gaps, ac_resets,
    ac_glitches, ac_rejected_deltas, dc_interval_readings, dc_register_readings, dc_gaps,
    dc_resets, dc_glitches, dc_rejected_deltas, continues, standby_ac_from,
    charging_minutes_from)
SELECT hours.hour, hours.charging_ac, hours.charging_dc, hours.standby_ac,
       hours.ac_gap_minutes, hours.dc_gap_minutes, hours.ac_reconciled_interval,
       hours.ac_reconciled_register, hours.dc_reconciled_interval,
       hours.dc_reconciled_register, vehicles.vehicle_key, hours.charging_minutes,
       hours.charging_readings, hours.session_starts, hours.standby_minutes,
       hours.ac_interval_readings, hours.ac_register_readings, hours.ac_gaps, hours.ac_resets,
       hours.ac_glitches, hours.ac_rejected_deltas, hours.dc_interval_readings,
       hours.dc_register_readings, hours.dc_gaps, hours.dc_resets, hours.dc_glitches,
       hours.dc_rejected_deltas, hours.continues, hours.standby_ac_from,
       hours.charging_minutes_from
FROM vehicles
CROSS JOIN LATERAL utc_day_pieces($1::timestamptz, $2::timestamptz + interval '1 hour') AS piece
CROSS JOIN LATERAL vehicle_energy_hours_of(vehicles.vehicle_id, piece.lo, piece.hi, 5, 1000,
                                           1000, 150) AS hours
WHERE vehicles.vehicle_key % $4::integer = $3::integer
ON CONFLICT (vehicle_key, hour) DO UPDATE
SET charging_ac = EXCLUDED.charging_ac, charging_dc = EXCLUDED.charging_dc,
    standby_ac = EXCLUDED.standby_ac, ac_gap_minutes = EXCLUDED.ac_gap_minutes,
    dc_gap_minutes = EXCLUDED.dc_gap_minutes, charging_minutes = EXCLUDED.charging_minutes,
    charging_readings = EXCLUDED.charging_readings, session_starts = EXCLUDED.session_starts,
    standby_minutes = EXCLUDED.standby_minutes,
    ac_interval_readings = EXCLUDED.ac_interval_readings, ac_gaps = EXCLUDED.ac_gaps,
    dc_interval_readings = EXCLUDED.dc_interval_readings, dc_gaps = EXCLUDED.dc_gaps,
    continues = EXCLUDED.continues, standby_ac_from = EXCLUDED.standby_ac_from,
    charging_minutes_from = EXCLUDED.charging_minutes_from;

-- name: bulk_roll_up_vehicle_energy_days
-- The standby AC and charging minutes of the vehicles' day rows of the days [$1, $2), from
-- their hours (running totals, as bulk_roll_up_vehicle_days).
UPDATE vehicle_rollup_days AS d
SET standby_ac = totals.standby_ac, charging_minutes = totals.charging_minutes
FROM (
    SELECT vehicle_key, day, array_agg(standby ORDER BY slot) AS standby_ac,
           array_agg(minutes::integer ORDER BY slot) AS charging_minutes
    FROM (
        SELECT device.vehicle_key, device.day, slot,
               sum(coalesce(hours.standby_ac, 0)) OVER running AS standby,
               sum(coalesce(hours.charging_minutes, 0)) OVER running AS minutes
        FROM (SELECT DISTINCT vehicle_key, date_bin('1 day', hour, '2000-01-01 00:00+00') AS day
              FROM vehicle_energy_hours WHERE hour >= $1 AND hour < $2) AS device
        CROSS JOIN generate_series(0, 23) AS slot
        LEFT JOIN vehicle_energy_hours AS hours
            ON hours.vehicle_key = device.vehicle_key
           AND hours.hour = device.day + slot * interval '1 hour'
        WINDOW running AS (PARTITION BY device.vehicle_key, device.day ORDER BY slot DESC)
    ) AS slots
    GROUP BY vehicle_key, day
) AS totals
WHERE d.vehicle_key = totals.vehicle_key AND d.day = totals.day;

-- name: bulk_upsert_meter_live
-- Live state as the newest bulk reading left it ($1 its time, $2 the interval).
INSERT INTO meter_live (ts, received_at, kwh_consumed_ac, voltage, meter_id)
SELECT $1::timestamptz, now(),
       (1 + meter_key % 3) * 3.7 * extract(epoch FROM $2::interval) / 3600,
       225 + meter_key % 15,
       meter_id
FROM meters
ON CONFLICT (meter_id) DO UPDATE
SET ts = EXCLUDED.ts,
    received_at = EXCLUDED.received_at,
    kwh_consumed_ac = EXCLUDED.kwh_consumed_ac,
    voltage = EXCLUDED.voltage
WHERE meter_live.ts < EXCLUDED.ts;

-- name: bulk_upsert_vehicle_live
-- Same as bulk_upsert_meter_live.
INSERT INTO vehicle_live (ts, received_at, soc, kwh_delivered_dc, battery_temp, vehicle_id)
SELECT $1::timestamptz, now(),
       10 + (vehicle_key * 13) % 90,
       (1 + vehicle_key % 3) * 3.7 * extract(epoch FROM $2::interval) / 3600 * 0.88,
       18 + vehicle_key % 15,
       vehicle_id
FROM vehicles
ON CONFLICT (vehicle_id) DO UPDATE
SET ts = EXCLUDED.ts,
    received_at = EXCLUDED.received_at,
    soc = EXCLUDED.soc,
    kwh_delivered_dc = EXCLUDED.kwh_delivered_dc,
    battery_temp = EXCLUDED.battery_temp
WHERE vehicle_live.ts < EXCLUDED.ts;

-- =============================================================================================
-- Rollups: the writer's history inserts as they were before the hourly rollups, the baseline
-- the rollup maintenance is measured against (bench/rollups.py).
-- =============================================================================================

-- name: insert_meter_readings_without_rollups
-- The live upsert stays, as in the writer's statement.
WITH stored AS (
    INSERT INTO meter_readings (ts, received_at, kwh_consumed_ac, voltage, meter_key)
    SELECT ts, now(), kwh_consumed_ac, voltage, meter_key
    FROM meter_staging
    ORDER BY meter_key, ts
    ON CONFLICT (meter_key, ts) DO NOTHING
    RETURNING meter_key, ts
), live AS (
    INSERT INTO meter_live (ts, received_at, kwh_consumed_ac, voltage, meter_id, kwh_register_ac)
    SELECT DISTINCT ON (s.meter_id) s.ts, now(), s.kwh_consumed_ac, s.voltage, s.meter_id,
           s.kwh_register_ac
    FROM meter_staging AS s
    JOIN stored USING (meter_key, ts)
    ORDER BY s.meter_id, s.ts DESC
    ON CONFLICT (meter_id) DO UPDATE
    SET ts = EXCLUDED.ts,
        received_at = EXCLUDED.received_at,
        kwh_consumed_ac = EXCLUDED.kwh_consumed_ac,
        voltage = EXCLUDED.voltage,
        kwh_register_ac = EXCLUDED.kwh_register_ac
    WHERE meter_live.ts < EXCLUDED.ts
)
SELECT count(*) AS stored, 0 AS registers FROM stored;

-- name: insert_vehicle_readings_without_rollups
WITH stored AS (
    INSERT INTO vehicle_readings (ts, received_at, kwh_delivered_dc, soc, battery_temp, vehicle_key)
    SELECT ts, now(), kwh_delivered_dc, sensor_real(soc), sensor_real(battery_temp), vehicle_key
    FROM vehicle_staging
    ORDER BY vehicle_key, ts
    ON CONFLICT (vehicle_key, ts) DO NOTHING
    RETURNING vehicle_key, ts
), live AS (
    INSERT INTO vehicle_live (ts, received_at, soc, kwh_delivered_dc, battery_temp, vehicle_id,
                              kwh_register_dc)
    SELECT DISTINCT ON (s.vehicle_id) s.ts, now(), s.soc, s.kwh_delivered_dc, s.battery_temp,
           s.vehicle_id, s.kwh_register_dc
    FROM vehicle_staging AS s
    JOIN stored USING (vehicle_key, ts)
    ORDER BY s.vehicle_id, s.ts DESC
    ON CONFLICT (vehicle_id) DO UPDATE
    SET ts = EXCLUDED.ts,
        received_at = EXCLUDED.received_at,
        soc = EXCLUDED.soc,
        kwh_delivered_dc = EXCLUDED.kwh_delivered_dc,
        battery_temp = EXCLUDED.battery_temp,
        kwh_register_dc = EXCLUDED.kwh_register_dc
    WHERE vehicle_live.ts < EXCLUDED.ts
)
SELECT count(*) AS stored, 0 AS registers FROM stored;

-- name: measure_rollup_storage
-- Bytes and rows of each rollup table's partitions that hold rows (after ANALYZE: the days
-- created ahead, still empty, would add their empty indexes' pages to a handful of rows).
SELECT parent.relname AS rollup_table,
       coalesce(sum(pg_total_relation_size(child.oid)), 0) AS total_bytes,
       coalesce(sum(child.reltuples), 0)::bigint AS estimated_rows
FROM pg_inherits
JOIN pg_class AS parent ON parent.oid = pg_inherits.inhparent
JOIN pg_class AS child ON child.oid = pg_inherits.inhrelid
JOIN pg_namespace AS ns ON ns.oid = parent.relnamespace
WHERE parent.relname = ANY($1::text[])
  AND ns.nspname = current_schema()
  AND child.reltuples > 0
GROUP BY parent.relname
ORDER BY parent.relname;

-- name: count_rollup_rows
SELECT (SELECT count(*) FROM meter_rollups) AS meter_rollups,
       (SELECT count(*) FROM vehicle_rollups) AS vehicle_rollups,
       (SELECT count(*) FROM meter_rollup_days) AS meter_rollup_days,
       (SELECT count(*) FROM vehicle_rollup_days) AS vehicle_rollup_days,
       (SELECT count(*) FROM meter_rollup_inbox) + (SELECT count(*) FROM vehicle_rollup_inbox)
           AS inbox;

-- name: backend_pid
SELECT pg_backend_pid();

-- ---------------------------------------------------------------------------------------------
-- History storage (bench/storage.py): every device once a minute, written as the writer writes a
-- batch (one statement, rows in primary-key order), minute after minute. Keys 1..N are the
-- devices registered first. Devices' clocks are a few seconds off the minute, as in the field.
-- ---------------------------------------------------------------------------------------------

-- name: insert_storage_meters
INSERT INTO meters (meter_id) SELECT 'm-' || n FROM generate_series(1, $1::int) AS n ORDER BY n;

-- name: insert_storage_vehicles
INSERT INTO vehicles (vehicle_id) SELECT 'v-' || n FROM generate_series(1, $1::int) AS n ORDER BY n;

-- name: insert_storage_meter_batch
-- Meter keys [$1, $2) at minute $3 after $4; the energy sent as the interval ($5), the
-- cumulative register ($6), or both.
INSERT INTO meter_readings (ts, received_at, kwh_consumed_ac, voltage, meter_key, kwh_register_ac)
SELECT $4::timestamptz + $3::int * interval '1 minute' + k % 7 * interval '1 second',
       now(),
       CASE WHEN $5::boolean THEN 0.05 + k % 7 / 1000.0 END,
       225 + k % 15 + ($3::int % 9) * 0.5,
       k,
       CASE WHEN $6::boolean THEN 10000 + k + $3::int * (0.05 + k % 7 / 1000.0) END
FROM generate_series($1::int, $2::int - 1) AS k
ORDER BY k;

-- name: insert_storage_vehicle_batch
-- Same as insert_storage_meter_batch for vehicles.
INSERT INTO vehicle_readings (ts, received_at, kwh_delivered_dc, soc, battery_temp, vehicle_key,
                              kwh_register_dc)
SELECT $4::timestamptz + $3::int * interval '1 minute' + k % 5 * interval '1 second',
       now(),
       CASE WHEN $5::boolean THEN 0.045 + k % 7 / 1000.0 END,
       (10 + (k + $3::int) % 90)::real,
       (18 + k % 15)::real,
       k,
       CASE WHEN $6::boolean THEN 5000 + k + $3::int * (0.045 + k % 7 / 1000.0) END
FROM generate_series($1::int, $2::int - 1) AS k
ORDER BY k;
