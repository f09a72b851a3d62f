-- The rollup folder (energy_ingest.writer.rollups): moves the inbox the writer appends to into
-- the hourly rollups, and rebuilds the day rows of every (device, day) it touched, in one
-- transaction. Readers add the inbox to the rollups, so a fold changes no answer.

-- name: try_lock_rollup_fold
-- One folder at a time across engines (the others skip the round): folds of the same rows in
-- two transactions at once would only wait on each other's row locks.
SELECT pg_try_advisory_xact_lock(hashtextextended('energy_ingest.rollup_fold', 0));

-- name: disable_jit_for_fold
-- The fold is a few hash aggregates and index upserts; the planner, seeing thousands of inbox
-- rows, would JIT-compile it for a second or more. Whatever connection folds (the engine's
-- write pool, a bench, a test), not for this transaction.
SET LOCAL jit = off;

-- name: lock_partitions_shared
-- Partition creation and retention take this key exclusively (lock_partition_maintenance):
-- shared here, no day partition appears or disappears while the fold runs, so the days it
-- folds into (list_rollup_days) stay there until it commits.
SELECT pg_advisory_xact_lock_shared(hashtextextended('energy_ingest.partitions', 0));

-- name: fold_meter_inbox
-- Takes up to $2 committed inbox rows (rows of batches still open stay for the next fold; a
-- bounded fold keeps each transaction short after a big import or an outage) and adds
-- them to the hourly rollups and to the day rows. $1: the UTC midnights of the days that have
-- rollup partitions; a row of any other day belongs to a day retention dropped, and goes with
-- its history. Sums are numeric (each float8 the decimal it was sent as), so they are exact.
-- GROUP BY makes one row per (meter, hour) and per (meter, day), so each upsert touches a
-- rollup row once; ORDER BY takes their locks in key order. A day row's arrays are running
-- totals to the end of the day (element i+1: hours i … 23): the day's new readings add theirs
-- to them, element by element. An inbox row counts `readings` (a register correction counts 0).
-- Answers how many rows it took and how many readings it folded. $3: the session gap (minutes)
-- the vehicles' charging split is computed with (queued).
WITH taken AS (
    DELETE FROM meter_rollup_inbox
    WHERE ctid = ANY (ARRAY(SELECT ctid FROM meter_rollup_inbox LIMIT $2))
    RETURNING ts, kwh_consumed_ac, meter_key, readings
), queued AS (
    -- The vehicle-days these readings can change the charging split or data quality of
    -- (vehicle_energy_touched), for fold_vehicle_energy: queued in this statement, so a reader
    -- sees each reading's effect either in the inbox or queued, never in neither.
    SELECT queue_vehicle_energy(array_agg(touched.vehicle_key), array_agg(touched.lo),
                                array_agg(touched.hi), $1::timestamptz[]) AS vehicle_days
    FROM (SELECT array_agg(meter_key) AS keys, array_agg(ts) AS ts FROM taken) AS batch
    CROSS JOIN LATERAL vehicle_energy_touched('meter', batch.keys, batch.ts, $3::integer) AS touched
), every_hour AS (
    SELECT meter_key, date_bin('1 hour', ts, '2000-01-01 00:00+00') AS hour,
           sum(kwh_consumed_ac::numeric) AS kwh, sum(readings) AS readings
    FROM taken
    GROUP BY 1, 2
), hours AS (
    SELECT meter_key, hour, kwh, readings,
           date_bin('1 day', hour, '2000-01-01 00:00+00') AS day,
           extract(hour FROM hour AT TIME ZONE 'UTC')::integer AS slot
    FROM every_hour
    WHERE date_bin('1 day', hour, '2000-01-01 00:00+00') IN (SELECT unnest($1::timestamptz[]))
), hourly AS (
    INSERT INTO meter_rollups AS r (hour, kwh_consumed_ac, readings, meter_key)
    SELECT hour, kwh, readings, meter_key
    FROM hours
    ORDER BY meter_key, hour
    ON CONFLICT (meter_key, hour) DO UPDATE
    SET kwh_consumed_ac = r.kwh_consumed_ac + EXCLUDED.kwh_consumed_ac,
        readings = r.readings + EXCLUDED.readings
), daily AS (
    INSERT INTO meter_rollup_days AS r (day, kwh_consumed_ac, readings, meter_key)
    SELECT day, ARRAY[
        coalesce(sum(kwh) FILTER (WHERE slot >= 0), 0),
        coalesce(sum(kwh) FILTER (WHERE slot >= 1), 0),
        coalesce(sum(kwh) FILTER (WHERE slot >= 2), 0),
        coalesce(sum(kwh) FILTER (WHERE slot >= 3), 0),
        coalesce(sum(kwh) FILTER (WHERE slot >= 4), 0),
        coalesce(sum(kwh) FILTER (WHERE slot >= 5), 0),
        coalesce(sum(kwh) FILTER (WHERE slot >= 6), 0),
        coalesce(sum(kwh) FILTER (WHERE slot >= 7), 0),
        coalesce(sum(kwh) FILTER (WHERE slot >= 8), 0),
        coalesce(sum(kwh) FILTER (WHERE slot >= 9), 0),
        coalesce(sum(kwh) FILTER (WHERE slot >= 10), 0),
        coalesce(sum(kwh) FILTER (WHERE slot >= 11), 0),
        coalesce(sum(kwh) FILTER (WHERE slot >= 12), 0),
        coalesce(sum(kwh) FILTER (WHERE slot >= 13), 0),
        coalesce(sum(kwh) FILTER (WHERE slot >= 14), 0),
        coalesce(sum(kwh) FILTER (WHERE slot >= 15), 0),
        coalesce(sum(kwh) FILTER (WHERE slot >= 16), 0),
        coalesce(sum(kwh) FILTER (WHERE slot >= 17), 0),
        coalesce(sum(kwh) FILTER (WHERE slot >= 18), 0),
        coalesce(sum(kwh) FILTER (WHERE slot >= 19), 0),
        coalesce(sum(kwh) FILTER (WHERE slot >= 20), 0),
        coalesce(sum(kwh) FILTER (WHERE slot >= 21), 0),
        coalesce(sum(kwh) FILTER (WHERE slot >= 22), 0),
        coalesce(sum(kwh) FILTER (WHERE slot >= 23), 0)
    ], ARRAY[
        coalesce(sum(readings) FILTER (WHERE slot >= 0), 0),
        coalesce(sum(readings) FILTER (WHERE slot >= 1), 0),
        coalesce(sum(readings) FILTER (WHERE slot >= 2), 0),
        coalesce(sum(readings) FILTER (WHERE slot >= 3), 0),
        coalesce(sum(readings) FILTER (WHERE slot >= 4), 0),
        coalesce(sum(readings) FILTER (WHERE slot >= 5), 0),
        coalesce(sum(readings) FILTER (WHERE slot >= 6), 0),
        coalesce(sum(readings) FILTER (WHERE slot >= 7), 0),
        coalesce(sum(readings) FILTER (WHERE slot >= 8), 0),
        coalesce(sum(readings) FILTER (WHERE slot >= 9), 0),
        coalesce(sum(readings) FILTER (WHERE slot >= 10), 0),
        coalesce(sum(readings) FILTER (WHERE slot >= 11), 0),
        coalesce(sum(readings) FILTER (WHERE slot >= 12), 0),
        coalesce(sum(readings) FILTER (WHERE slot >= 13), 0),
        coalesce(sum(readings) FILTER (WHERE slot >= 14), 0),
        coalesce(sum(readings) FILTER (WHERE slot >= 15), 0),
        coalesce(sum(readings) FILTER (WHERE slot >= 16), 0),
        coalesce(sum(readings) FILTER (WHERE slot >= 17), 0),
        coalesce(sum(readings) FILTER (WHERE slot >= 18), 0),
        coalesce(sum(readings) FILTER (WHERE slot >= 19), 0),
        coalesce(sum(readings) FILTER (WHERE slot >= 20), 0),
        coalesce(sum(readings) FILTER (WHERE slot >= 21), 0),
        coalesce(sum(readings) FILTER (WHERE slot >= 22), 0),
        coalesce(sum(readings) FILTER (WHERE slot >= 23), 0)
    ]::integer[], meter_key
    FROM hours
    GROUP BY meter_key, day
    ORDER BY meter_key, day
    ON CONFLICT (meter_key, day) DO UPDATE
    SET kwh_consumed_ac = ARRAY[
        r.kwh_consumed_ac[1] + EXCLUDED.kwh_consumed_ac[1],
        r.kwh_consumed_ac[2] + EXCLUDED.kwh_consumed_ac[2],
        r.kwh_consumed_ac[3] + EXCLUDED.kwh_consumed_ac[3],
        r.kwh_consumed_ac[4] + EXCLUDED.kwh_consumed_ac[4],
        r.kwh_consumed_ac[5] + EXCLUDED.kwh_consumed_ac[5],
        r.kwh_consumed_ac[6] + EXCLUDED.kwh_consumed_ac[6],
        r.kwh_consumed_ac[7] + EXCLUDED.kwh_consumed_ac[7],
        r.kwh_consumed_ac[8] + EXCLUDED.kwh_consumed_ac[8],
        r.kwh_consumed_ac[9] + EXCLUDED.kwh_consumed_ac[9],
        r.kwh_consumed_ac[10] + EXCLUDED.kwh_consumed_ac[10],
        r.kwh_consumed_ac[11] + EXCLUDED.kwh_consumed_ac[11],
        r.kwh_consumed_ac[12] + EXCLUDED.kwh_consumed_ac[12],
        r.kwh_consumed_ac[13] + EXCLUDED.kwh_consumed_ac[13],
        r.kwh_consumed_ac[14] + EXCLUDED.kwh_consumed_ac[14],
        r.kwh_consumed_ac[15] + EXCLUDED.kwh_consumed_ac[15],
        r.kwh_consumed_ac[16] + EXCLUDED.kwh_consumed_ac[16],
        r.kwh_consumed_ac[17] + EXCLUDED.kwh_consumed_ac[17],
        r.kwh_consumed_ac[18] + EXCLUDED.kwh_consumed_ac[18],
        r.kwh_consumed_ac[19] + EXCLUDED.kwh_consumed_ac[19],
        r.kwh_consumed_ac[20] + EXCLUDED.kwh_consumed_ac[20],
        r.kwh_consumed_ac[21] + EXCLUDED.kwh_consumed_ac[21],
        r.kwh_consumed_ac[22] + EXCLUDED.kwh_consumed_ac[22],
        r.kwh_consumed_ac[23] + EXCLUDED.kwh_consumed_ac[23],
        r.kwh_consumed_ac[24] + EXCLUDED.kwh_consumed_ac[24]
    ], readings = ARRAY[
        r.readings[1] + EXCLUDED.readings[1], r.readings[2] + EXCLUDED.readings[2],
        r.readings[3] + EXCLUDED.readings[3], r.readings[4] + EXCLUDED.readings[4],
        r.readings[5] + EXCLUDED.readings[5], r.readings[6] + EXCLUDED.readings[6],
        r.readings[7] + EXCLUDED.readings[7], r.readings[8] + EXCLUDED.readings[8],
        r.readings[9] + EXCLUDED.readings[9], r.readings[10] + EXCLUDED.readings[10],
        r.readings[11] + EXCLUDED.readings[11], r.readings[12] + EXCLUDED.readings[12],
        r.readings[13] + EXCLUDED.readings[13], r.readings[14] + EXCLUDED.readings[14],
        r.readings[15] + EXCLUDED.readings[15], r.readings[16] + EXCLUDED.readings[16],
        r.readings[17] + EXCLUDED.readings[17], r.readings[18] + EXCLUDED.readings[18],
        r.readings[19] + EXCLUDED.readings[19], r.readings[20] + EXCLUDED.readings[20],
        r.readings[21] + EXCLUDED.readings[21], r.readings[22] + EXCLUDED.readings[22],
        r.readings[23] + EXCLUDED.readings[23], r.readings[24] + EXCLUDED.readings[24]
    ]
)
SELECT (SELECT count(*) FROM taken) AS taken,
       (SELECT coalesce(sum(readings), 0) FROM hours)::bigint AS folded,
       (SELECT vehicle_days FROM queued) AS queued;

-- name: fold_vehicle_inbox
-- Same as fold_meter_inbox for the vehicles' DC and battery temperatures (the stored real, as
-- the per-vehicle average reads it).
WITH taken AS (
    DELETE FROM vehicle_rollup_inbox
    WHERE ctid = ANY (ARRAY(SELECT ctid FROM vehicle_rollup_inbox LIMIT $2))
    RETURNING ts, kwh_delivered_dc, battery_temp, vehicle_key, readings
), queued AS (
    -- The vehicle-days these readings can change the charging split or data quality of
    -- (vehicle_energy_touched), for fold_vehicle_energy: queued in this statement, so a reader
    -- sees each reading's effect either in the inbox or queued, never in neither.
    SELECT queue_vehicle_energy(array_agg(touched.vehicle_key), array_agg(touched.lo),
                                array_agg(touched.hi), $1::timestamptz[]) AS vehicle_days
    FROM (SELECT array_agg(vehicle_key) AS keys, array_agg(ts) AS ts FROM taken) AS batch
    CROSS JOIN LATERAL vehicle_energy_touched('vehicle', batch.keys, batch.ts, $3::integer) AS touched
), every_hour AS (
    -- A register correction (readings 0) carries no temperature: an hour of corrections alone
    -- adds nothing to the sum, and its bounds (±infinity) give way to any real one.
    SELECT vehicle_key, date_bin('1 hour', ts, '2000-01-01 00:00+00') AS hour,
           sum(kwh_delivered_dc::numeric) AS kwh,
           coalesce(sum(battery_temp::numeric), 0) AS temp,
           coalesce(min(battery_temp), 'Infinity') AS temp_min,
           coalesce(max(battery_temp), '-Infinity') AS temp_max, sum(readings) AS readings
    FROM taken
    GROUP BY 1, 2
), hours AS (
    SELECT vehicle_key, hour, kwh, temp, temp_min, temp_max, readings,
           date_bin('1 day', hour, '2000-01-01 00:00+00') AS day,
           extract(hour FROM hour AT TIME ZONE 'UTC')::integer AS slot
    FROM every_hour
    WHERE date_bin('1 day', hour, '2000-01-01 00:00+00') IN (SELECT unnest($1::timestamptz[]))
), hourly AS (
    INSERT INTO vehicle_rollups AS r (hour, kwh_delivered_dc, battery_temp_sum, battery_temp_min,
                                      battery_temp_max, readings, vehicle_key)
    SELECT hour, kwh, temp, temp_min, temp_max, readings, vehicle_key
    FROM hours
    ORDER BY vehicle_key, hour
    ON CONFLICT (vehicle_key, hour) DO UPDATE
    SET kwh_delivered_dc = r.kwh_delivered_dc + EXCLUDED.kwh_delivered_dc,
        battery_temp_sum = r.battery_temp_sum + EXCLUDED.battery_temp_sum,
        battery_temp_min = least(r.battery_temp_min, EXCLUDED.battery_temp_min),
        battery_temp_max = greatest(r.battery_temp_max, EXCLUDED.battery_temp_max),
        readings = r.readings + EXCLUDED.readings
), daily AS (
    INSERT INTO vehicle_rollup_days AS r (day, kwh_delivered_dc, battery_temp_sum, readings,
                                          vehicle_key)
    SELECT day, ARRAY[
        coalesce(sum(kwh) FILTER (WHERE slot >= 0), 0),
        coalesce(sum(kwh) FILTER (WHERE slot >= 1), 0),
        coalesce(sum(kwh) FILTER (WHERE slot >= 2), 0),
        coalesce(sum(kwh) FILTER (WHERE slot >= 3), 0),
        coalesce(sum(kwh) FILTER (WHERE slot >= 4), 0),
        coalesce(sum(kwh) FILTER (WHERE slot >= 5), 0),
        coalesce(sum(kwh) FILTER (WHERE slot >= 6), 0),
        coalesce(sum(kwh) FILTER (WHERE slot >= 7), 0),
        coalesce(sum(kwh) FILTER (WHERE slot >= 8), 0),
        coalesce(sum(kwh) FILTER (WHERE slot >= 9), 0),
        coalesce(sum(kwh) FILTER (WHERE slot >= 10), 0),
        coalesce(sum(kwh) FILTER (WHERE slot >= 11), 0),
        coalesce(sum(kwh) FILTER (WHERE slot >= 12), 0),
        coalesce(sum(kwh) FILTER (WHERE slot >= 13), 0),
        coalesce(sum(kwh) FILTER (WHERE slot >= 14), 0),
        coalesce(sum(kwh) FILTER (WHERE slot >= 15), 0),
        coalesce(sum(kwh) FILTER (WHERE slot >= 16), 0),
        coalesce(sum(kwh) FILTER (WHERE slot >= 17), 0),
        coalesce(sum(kwh) FILTER (WHERE slot >= 18), 0),
        coalesce(sum(kwh) FILTER (WHERE slot >= 19), 0),
        coalesce(sum(kwh) FILTER (WHERE slot >= 20), 0),
        coalesce(sum(kwh) FILTER (WHERE slot >= 21), 0),
        coalesce(sum(kwh) FILTER (WHERE slot >= 22), 0),
        coalesce(sum(kwh) FILTER (WHERE slot >= 23), 0)
    ], ARRAY[
        coalesce(sum(temp) FILTER (WHERE slot >= 0), 0),
        coalesce(sum(temp) FILTER (WHERE slot >= 1), 0),
        coalesce(sum(temp) FILTER (WHERE slot >= 2), 0),
        coalesce(sum(temp) FILTER (WHERE slot >= 3), 0),
        coalesce(sum(temp) FILTER (WHERE slot >= 4), 0),
        coalesce(sum(temp) FILTER (WHERE slot >= 5), 0),
        coalesce(sum(temp) FILTER (WHERE slot >= 6), 0),
        coalesce(sum(temp) FILTER (WHERE slot >= 7), 0),
        coalesce(sum(temp) FILTER (WHERE slot >= 8), 0),
        coalesce(sum(temp) FILTER (WHERE slot >= 9), 0),
        coalesce(sum(temp) FILTER (WHERE slot >= 10), 0),
        coalesce(sum(temp) FILTER (WHERE slot >= 11), 0),
        coalesce(sum(temp) FILTER (WHERE slot >= 12), 0),
        coalesce(sum(temp) FILTER (WHERE slot >= 13), 0),
        coalesce(sum(temp) FILTER (WHERE slot >= 14), 0),
        coalesce(sum(temp) FILTER (WHERE slot >= 15), 0),
        coalesce(sum(temp) FILTER (WHERE slot >= 16), 0),
        coalesce(sum(temp) FILTER (WHERE slot >= 17), 0),
        coalesce(sum(temp) FILTER (WHERE slot >= 18), 0),
        coalesce(sum(temp) FILTER (WHERE slot >= 19), 0),
        coalesce(sum(temp) FILTER (WHERE slot >= 20), 0),
        coalesce(sum(temp) FILTER (WHERE slot >= 21), 0),
        coalesce(sum(temp) FILTER (WHERE slot >= 22), 0),
        coalesce(sum(temp) FILTER (WHERE slot >= 23), 0)
    ], ARRAY[
        coalesce(sum(readings) FILTER (WHERE slot >= 0), 0),
        coalesce(sum(readings) FILTER (WHERE slot >= 1), 0),
        coalesce(sum(readings) FILTER (WHERE slot >= 2), 0),
        coalesce(sum(readings) FILTER (WHERE slot >= 3), 0),
        coalesce(sum(readings) FILTER (WHERE slot >= 4), 0),
        coalesce(sum(readings) FILTER (WHERE slot >= 5), 0),
        coalesce(sum(readings) FILTER (WHERE slot >= 6), 0),
        coalesce(sum(readings) FILTER (WHERE slot >= 7), 0),
        coalesce(sum(readings) FILTER (WHERE slot >= 8), 0),
        coalesce(sum(readings) FILTER (WHERE slot >= 9), 0),
        coalesce(sum(readings) FILTER (WHERE slot >= 10), 0),
        coalesce(sum(readings) FILTER (WHERE slot >= 11), 0),
        coalesce(sum(readings) FILTER (WHERE slot >= 12), 0),
        coalesce(sum(readings) FILTER (WHERE slot >= 13), 0),
        coalesce(sum(readings) FILTER (WHERE slot >= 14), 0),
        coalesce(sum(readings) FILTER (WHERE slot >= 15), 0),
        coalesce(sum(readings) FILTER (WHERE slot >= 16), 0),
        coalesce(sum(readings) FILTER (WHERE slot >= 17), 0),
        coalesce(sum(readings) FILTER (WHERE slot >= 18), 0),
        coalesce(sum(readings) FILTER (WHERE slot >= 19), 0),
        coalesce(sum(readings) FILTER (WHERE slot >= 20), 0),
        coalesce(sum(readings) FILTER (WHERE slot >= 21), 0),
        coalesce(sum(readings) FILTER (WHERE slot >= 22), 0),
        coalesce(sum(readings) FILTER (WHERE slot >= 23), 0)
    ]::integer[], vehicle_key
    FROM hours
    GROUP BY vehicle_key, day
    ORDER BY vehicle_key, day
    ON CONFLICT (vehicle_key, day) DO UPDATE
    SET kwh_delivered_dc = ARRAY[
        r.kwh_delivered_dc[1] + EXCLUDED.kwh_delivered_dc[1],
        r.kwh_delivered_dc[2] + EXCLUDED.kwh_delivered_dc[2],
        r.kwh_delivered_dc[3] + EXCLUDED.kwh_delivered_dc[3],
        r.kwh_delivered_dc[4] + EXCLUDED.kwh_delivered_dc[4],
        r.kwh_delivered_dc[5] + EXCLUDED.kwh_delivered_dc[5],
        r.kwh_delivered_dc[6] + EXCLUDED.kwh_delivered_dc[6],
        r.kwh_delivered_dc[7] + EXCLUDED.kwh_delivered_dc[7],
        r.kwh_delivered_dc[8] + EXCLUDED.kwh_delivered_dc[8],
        r.kwh_delivered_dc[9] + EXCLUDED.kwh_delivered_dc[9],
        r.kwh_delivered_dc[10] + EXCLUDED.kwh_delivered_dc[10],
        r.kwh_delivered_dc[11] + EXCLUDED.kwh_delivered_dc[11],
        r.kwh_delivered_dc[12] + EXCLUDED.kwh_delivered_dc[12],
        r.kwh_delivered_dc[13] + EXCLUDED.kwh_delivered_dc[13],
        r.kwh_delivered_dc[14] + EXCLUDED.kwh_delivered_dc[14],
        r.kwh_delivered_dc[15] + EXCLUDED.kwh_delivered_dc[15],
        r.kwh_delivered_dc[16] + EXCLUDED.kwh_delivered_dc[16],
        r.kwh_delivered_dc[17] + EXCLUDED.kwh_delivered_dc[17],
        r.kwh_delivered_dc[18] + EXCLUDED.kwh_delivered_dc[18],
        r.kwh_delivered_dc[19] + EXCLUDED.kwh_delivered_dc[19],
        r.kwh_delivered_dc[20] + EXCLUDED.kwh_delivered_dc[20],
        r.kwh_delivered_dc[21] + EXCLUDED.kwh_delivered_dc[21],
        r.kwh_delivered_dc[22] + EXCLUDED.kwh_delivered_dc[22],
        r.kwh_delivered_dc[23] + EXCLUDED.kwh_delivered_dc[23],
        r.kwh_delivered_dc[24] + EXCLUDED.kwh_delivered_dc[24]
    ], battery_temp_sum = ARRAY[
        r.battery_temp_sum[1] + EXCLUDED.battery_temp_sum[1],
        r.battery_temp_sum[2] + EXCLUDED.battery_temp_sum[2],
        r.battery_temp_sum[3] + EXCLUDED.battery_temp_sum[3],
        r.battery_temp_sum[4] + EXCLUDED.battery_temp_sum[4],
        r.battery_temp_sum[5] + EXCLUDED.battery_temp_sum[5],
        r.battery_temp_sum[6] + EXCLUDED.battery_temp_sum[6],
        r.battery_temp_sum[7] + EXCLUDED.battery_temp_sum[7],
        r.battery_temp_sum[8] + EXCLUDED.battery_temp_sum[8],
        r.battery_temp_sum[9] + EXCLUDED.battery_temp_sum[9],
        r.battery_temp_sum[10] + EXCLUDED.battery_temp_sum[10],
        r.battery_temp_sum[11] + EXCLUDED.battery_temp_sum[11],
        r.battery_temp_sum[12] + EXCLUDED.battery_temp_sum[12],
        r.battery_temp_sum[13] + EXCLUDED.battery_temp_sum[13],
        r.battery_temp_sum[14] + EXCLUDED.battery_temp_sum[14],
        r.battery_temp_sum[15] + EXCLUDED.battery_temp_sum[15],
        r.battery_temp_sum[16] + EXCLUDED.battery_temp_sum[16],
        r.battery_temp_sum[17] + EXCLUDED.battery_temp_sum[17],
        r.battery_temp_sum[18] + EXCLUDED.battery_temp_sum[18],
        r.battery_temp_sum[19] + EXCLUDED.battery_temp_sum[19],
        r.battery_temp_sum[20] + EXCLUDED.battery_temp_sum[20],
        r.battery_temp_sum[21] + EXCLUDED.battery_temp_sum[21],
        r.battery_temp_sum[22] + EXCLUDED.battery_temp_sum[22],
        r.battery_temp_sum[23] + EXCLUDED.battery_temp_sum[23],
        r.battery_temp_sum[24] + EXCLUDED.battery_temp_sum[24]
    ], readings = ARRAY[
        r.readings[1] + EXCLUDED.readings[1], r.readings[2] + EXCLUDED.readings[2],
        r.readings[3] + EXCLUDED.readings[3], r.readings[4] + EXCLUDED.readings[4],
        r.readings[5] + EXCLUDED.readings[5], r.readings[6] + EXCLUDED.readings[6],
        r.readings[7] + EXCLUDED.readings[7], r.readings[8] + EXCLUDED.readings[8],
        r.readings[9] + EXCLUDED.readings[9], r.readings[10] + EXCLUDED.readings[10],
        r.readings[11] + EXCLUDED.readings[11], r.readings[12] + EXCLUDED.readings[12],
        r.readings[13] + EXCLUDED.readings[13], r.readings[14] + EXCLUDED.readings[14],
        r.readings[15] + EXCLUDED.readings[15], r.readings[16] + EXCLUDED.readings[16],
        r.readings[17] + EXCLUDED.readings[17], r.readings[18] + EXCLUDED.readings[18],
        r.readings[19] + EXCLUDED.readings[19], r.readings[20] + EXCLUDED.readings[20],
        r.readings[21] + EXCLUDED.readings[21], r.readings[22] + EXCLUDED.readings[22],
        r.readings[23] + EXCLUDED.readings[23], r.readings[24] + EXCLUDED.readings[24]
    ]
)
SELECT (SELECT count(*) FROM taken) AS taken,
       (SELECT coalesce(sum(readings), 0) FROM hours)::bigint AS folded,
       (SELECT vehicle_days FROM queued) AS queued;

-- name: fold_vehicle_energy
-- Computes again the hours of pending vehicle-days (vehicle_energy_pending), the newest days
-- first (the present is never behind a back-fill), as many as fit in $2 vehicle-hours from history
-- (vehicle_energy_hours_of), writes them whole into vehicle_energy_hours (an hour left without
-- readings is deleted), adds the change of each hour's standby AC and charging minutes to the
-- vehicle's day row (vehicle_rollup_days), and
-- forgets each pending row nothing touched meanwhile (same version). $1: the UTC midnights of
-- the days that have rollup partitions (a pending day of any other went with retention);
-- $3: the session gap (minutes); $4, $5: the meters' and the vehicles' power caps (kW); $6:
-- the gap (seconds). Answers how many vehicle-days it computed, and whether more are pending.
WITH queued AS (
    SELECT p.vehicle_key, p.day, p.version, vehicles.vehicle_id,
           date_bin('1 hour', p.lo, '2000-01-01 00:00+00') AS first_hour,
           date_bin('1 hour', p.hi - interval '1 microsecond', '2000-01-01 00:00+00')
               + interval '1 hour' AS end_hour
    FROM vehicle_energy_pending AS p
    JOIN vehicles ON vehicles.vehicle_key = p.vehicle_key
    WHERE p.day IN (SELECT unnest($1::timestamptz[]))
), taken AS MATERIALIZED (
    -- The newest first, as many as fit in $2 vehicle-hours (at least one): a fold's length is
    -- about proportional to the hours it computes, whatever a back-fill left pending.
    SELECT vehicle_key, day, version, vehicle_id, first_hour, end_hour
    FROM (
        SELECT queued.*,
               sum(extract(epoch FROM end_hour - first_hour) / 3600)
                   OVER (ORDER BY day DESC, vehicle_key ROWS UNBOUNDED PRECEDING) AS running,
               extract(epoch FROM end_hour - first_hour) / 3600 AS hours
        FROM queued
    ) AS budgeted
    WHERE running - hours < $2
), computed AS MATERIALIZED (
    SELECT taken.vehicle_key, taken.day, hours.*
    FROM taken
    CROSS JOIN LATERAL vehicle_energy_hours_of(taken.vehicle_id, taken.first_hour,
                                               taken.end_hour, $3::integer,
                                               $4::double precision, $5::double precision,
                                               $6::double precision) AS hours
), previous AS MATERIALIZED (
    SELECT taken.vehicle_key, taken.day, h.hour, h.standby_ac, h.charging_minutes
    FROM taken
    JOIN vehicle_energy_hours AS h
        ON h.vehicle_key = taken.vehicle_key
       AND h.hour >= taken.first_hour AND h.hour < taken.end_hour
), cleared AS (
    DELETE FROM vehicle_energy_hours AS h
    USING previous
    WHERE h.vehicle_key = previous.vehicle_key AND h.hour = previous.hour
      AND NOT EXISTS (SELECT FROM computed
                      WHERE computed.vehicle_key = previous.vehicle_key
                        AND computed.hour = previous.hour)
), written AS (
    INSERT INTO vehicle_energy_hours AS h (
        hour, charging_ac, charging_dc, standby_ac, ac_gap_minutes, dc_gap_minutes,
        ac_reconciled_interval, ac_reconciled_register, dc_reconciled_interval,
        dc_reconciled_register, vehicle_key, charging_minutes, charging_readings,
        session_starts, standby_minutes, ac_interval_readings, ac_register_readings, ac_gaps,
        ac_resets, ac_glitches, ac_rejected_deltas, dc_interval_readings,
        dc_register_readings, dc_gaps, dc_resets, dc_glitches, dc_rejected_deltas, continues,
        standby_ac_from, charging_minutes_from)
    SELECT hour, charging_ac, charging_dc, standby_ac, ac_gap_minutes, dc_gap_minutes,
           ac_reconciled_interval, ac_reconciled_register, dc_reconciled_interval,
           dc_reconciled_register, vehicle_key, charging_minutes, charging_readings,
           session_starts, standby_minutes, ac_interval_readings, ac_register_readings,
           ac_gaps, ac_resets, ac_glitches, ac_rejected_deltas, dc_interval_readings,
           dc_register_readings, dc_gaps, dc_resets, dc_glitches, dc_rejected_deltas, continues,
           standby_ac_from, charging_minutes_from
    FROM computed
    ORDER BY vehicle_key, hour
    ON CONFLICT (vehicle_key, hour) DO UPDATE
    SET charging_ac = EXCLUDED.charging_ac, charging_dc = EXCLUDED.charging_dc,
        standby_ac = EXCLUDED.standby_ac, ac_gap_minutes = EXCLUDED.ac_gap_minutes,
        dc_gap_minutes = EXCLUDED.dc_gap_minutes,
        ac_reconciled_interval = EXCLUDED.ac_reconciled_interval,
        ac_reconciled_register = EXCLUDED.ac_reconciled_register,
        dc_reconciled_interval = EXCLUDED.dc_reconciled_interval,
        dc_reconciled_register = EXCLUDED.dc_reconciled_register,
        charging_minutes = EXCLUDED.charging_minutes,
        charging_readings = EXCLUDED.charging_readings,
        session_starts = EXCLUDED.session_starts, standby_minutes = EXCLUDED.standby_minutes,
        ac_interval_readings = EXCLUDED.ac_interval_readings,
        ac_register_readings = EXCLUDED.ac_register_readings, ac_gaps = EXCLUDED.ac_gaps,
        ac_resets = EXCLUDED.ac_resets, ac_glitches = EXCLUDED.ac_glitches,
        ac_rejected_deltas = EXCLUDED.ac_rejected_deltas,
        dc_interval_readings = EXCLUDED.dc_interval_readings,
        dc_register_readings = EXCLUDED.dc_register_readings, dc_gaps = EXCLUDED.dc_gaps,
        dc_resets = EXCLUDED.dc_resets, dc_glitches = EXCLUDED.dc_glitches,
        dc_rejected_deltas = EXCLUDED.dc_rejected_deltas, continues = EXCLUDED.continues,
        standby_ac_from = EXCLUDED.standby_ac_from,
        charging_minutes_from = EXCLUDED.charging_minutes_from
), changes AS (
    -- Each recomputed hour's change (new minus old) of what the vehicle's day row holds of it.
    SELECT coalesce(c.vehicle_key, p.vehicle_key) AS vehicle_key,
           coalesce(c.day, p.day) AS day,
           extract(hour FROM coalesce(c.hour, p.hour) AT TIME ZONE 'UTC')::integer AS slot,
           coalesce(c.standby_ac, 0) - coalesce(p.standby_ac, 0) AS standby_ac,
           coalesce(c.charging_minutes, 0) - coalesce(p.charging_minutes, 0) AS charging_minutes
    FROM computed AS c
    FULL JOIN previous AS p ON p.vehicle_key = c.vehicle_key AND p.hour = c.hour
), days AS (
    -- Added to the vehicle's day row (made with zero sums if the vehicle has none that day: a
    -- meter's standby feeds it, or its own inbox is not folded yet).
    INSERT INTO vehicle_rollup_days AS d (day, kwh_delivered_dc, battery_temp_sum, readings,
                                          standby_ac, charging_minutes, vehicle_key)
    SELECT day, array_fill(0::numeric, ARRAY[24]), array_fill(0::numeric, ARRAY[24]),
           array_fill(0, ARRAY[24]),
           (running_totals(array_agg(slot), array_agg(standby_ac), 24))[1:24],
           (running_totals(array_agg(slot), array_agg(charging_minutes::numeric), 24))[1:24]::integer[],
           vehicle_key
    FROM changes
    GROUP BY vehicle_key, day
    ORDER BY vehicle_key, day
    ON CONFLICT (vehicle_key, day) DO UPDATE
    SET standby_ac = add_arrays(d.standby_ac, EXCLUDED.standby_ac),
        charging_minutes = add_arrays(d.charging_minutes::numeric[],
                                      EXCLUDED.charging_minutes::numeric[])::integer[]
), forgotten AS (
    DELETE FROM vehicle_energy_pending AS p
    USING taken
    WHERE p.vehicle_key = taken.vehicle_key AND p.day = taken.day
      AND p.version = taken.version
), expired AS (
    -- Pending days older than any partition: retention dropped them with their readings.
    DELETE FROM vehicle_energy_pending
    WHERE day < (SELECT min(d) FROM unnest($1::timestamptz[]) AS d)
)
SELECT (SELECT count(*) FROM taken) AS computed,
       (SELECT count(*) FROM queued) > (SELECT count(*) FROM taken) AS more;
