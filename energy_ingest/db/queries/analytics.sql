-- Efficiency of one vehicle over a time window. Every history query names the device and a
-- bounded ts range: the planner prunes to the window's daily partitions and reads each through
-- its (device, ts) primary key, so cost grows with the window, never with the history.

-- name: get_vehicle_presence
-- 404 decision: a vehicle is known when it has reported (live row) or has been assigned a meter.
-- The same-id fallback needs a meter of that id that has reported and that no assignment gives
-- to anybody: a meter assigned elsewhere feeds that vehicle, not this one.
SELECT EXISTS (SELECT 1 FROM vehicle_live WHERE vehicle_id = $1) AS has_reported,
       EXISTS (SELECT 1 FROM vehicle_meter_assignments WHERE vehicle_id = $1) AS has_assignments,
       EXISTS (SELECT 1 FROM meter_live WHERE meter_id = $1)
       AND NOT EXISTS (SELECT 1 FROM vehicle_meter_assignments WHERE meter_id = $1)
           AS same_id_meter_usable;

-- name: summarize_vehicle_window
-- The key comes from a one-row InitPlan, so pruning by ts still happens when planning.
-- Sums are exact: each float8 reading becomes the decimal it was sent as (float8 → numeric
-- keeps 15 significant digits) and numeric adds without float noise. battery_temp is stored
-- as real: each value goes through numeric back to the decimal the device sent (31.2, not
-- 31.2000007…); temperatures are answered to 2 decimals, as the seed does.
SELECT count(*) AS data_points,
       coalesce(sum(kwh_delivered_dc::numeric), 0) AS kwh_delivered_dc,
       round(avg(battery_temp::numeric), 2) AS average_battery_temp,
       round(min(battery_temp)::numeric, 2) AS min_battery_temp,
       round(max(battery_temp)::numeric, 2) AS max_battery_temp
FROM vehicle_readings
WHERE vehicle_key = (SELECT vehicle_key FROM vehicles WHERE vehicle_id = $1)
  AND ts >= $2 AND ts < $3;

-- name: list_assignments_in_window
-- Each assignment overlapping [$2, $3), clipped to the window; the GiST index behind the
-- exclusion constraint answers (vehicle_id =, during &&).
SELECT meter_id,
       greatest(lower(during), $2::timestamptz) AS clipped_from,
       least(coalesce(upper(during), $3::timestamptz), $3::timestamptz) AS clipped_to
FROM vehicle_meter_assignments
WHERE vehicle_id = $1 AND during && tstzrange($2::timestamptz, $3::timestamptz, '[)')
ORDER BY lower(during);

-- name: summarize_meter_spans
-- AC of every span at once: $1, $2, $3 are the spans' meter ids, starts and ends (parallel
-- arrays), however many. Each span is one range scan of the (meter_key, ts) primary key of the
-- partitions its own [start, end) touches (pruned when the scan starts); the meter's key
-- comes from the unique index on meter_id. Exact numeric sum, as for DC.
SELECT coalesce(sum(per_span.data_points), 0)::bigint AS data_points,
       coalesce(sum(per_span.kwh_consumed_ac), 0) AS kwh_consumed_ac
FROM unnest($1::text[], $2::timestamptz[], $3::timestamptz[]) AS span (meter_id, starts_at, ends_at)
CROSS JOIN LATERAL (
    SELECT count(*) AS data_points,
           sum(kwh_consumed_ac::numeric) AS kwh_consumed_ac
    FROM meter_readings
    WHERE meter_key = (SELECT meter_key FROM meters WHERE meters.meter_id = span.meter_id)
      AND ts >= span.starts_at AND ts < span.ends_at
) AS per_span;

-- name: summarize_vehicle_series
-- A vehicle's readings in [$2, $3) per bucket: $4 holds the buckets' starts, ascending, the
-- first being $2 itself, so width_bucket numbers each reading's bucket from 1 whatever the
-- step (a day of 23 or 25 hours included). The same one-device range scan of the (vehicle_key,
-- ts) primary key as summarize_vehicle_window; the same exact numeric sums and 2-decimal
-- temperatures. soc is the last reading's of the bucket, the decimal the device sent.
SELECT width_bucket(ts, $4::timestamptz[]) AS bucket,
       count(*) AS data_points,
       sum(kwh_delivered_dc::numeric) AS kwh_delivered_dc,
       (array_agg(soc ORDER BY ts DESC))[1]::numeric AS soc,
       round(avg(battery_temp::numeric), 2) AS average_battery_temp,
       round(max(battery_temp)::numeric, 2) AS max_battery_temp
FROM vehicle_readings
WHERE vehicle_key = (SELECT vehicle_key FROM vehicles WHERE vehicle_id = $1)
  AND ts >= $2 AND ts < $3
GROUP BY bucket
ORDER BY bucket;

-- name: summarize_meter_series
-- AC of every span per bucket ($4 as above): the spans (parallel arrays $1, $2, $3) are those
-- summarize_meter_spans adds up, read the same way (one primary-key range scan per span of the
-- partitions its own [start, end) touches), so the buckets add up to its sum exactly.
SELECT width_bucket(reading.ts, $4::timestamptz[]) AS bucket,
       count(*) AS data_points,
       sum(reading.kwh_consumed_ac::numeric) AS kwh_consumed_ac
FROM unnest($1::text[], $2::timestamptz[], $3::timestamptz[]) AS span (meter_id, starts_at, ends_at)
CROSS JOIN LATERAL (
    SELECT ts, kwh_consumed_ac
    FROM meter_readings
    WHERE meter_key = (SELECT meter_key FROM meters WHERE meters.meter_id = span.meter_id)
      AND ts >= span.starts_at AND ts < span.ends_at
) AS reading
GROUP BY bucket
ORDER BY bucket;
