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
-- The DC is what the readings book (booked_vehicle_readings: intervals, register steps), with
-- the data quality of the window's readings: sources, gaps (readings further apart than $5
-- seconds, and the minutes missed, one reading a minute), resets, glitches, rejected steps,
-- and the interval sum minus the register steps over the readings that sent both. $4: the
-- vehicles' power cap (kW).
WITH readings AS (
    SELECT count(*) AS data_points,
           round(avg(battery_temp::numeric), 2) AS average_battery_temp,
           round(min(battery_temp)::numeric, 2) AS min_battery_temp,
           round(max(battery_temp)::numeric, 2) AS max_battery_temp
    FROM vehicle_readings
    WHERE vehicle_key = (SELECT vehicle_key FROM vehicles WHERE vehicle_id = $1)
      AND ts >= $2 AND ts < $3
), booked AS (
    SELECT coalesce(sum(kwh), 0) AS kwh_delivered_dc,
           count(*) FILTER (WHERE source = 'interval') AS interval_readings,
           count(*) FILTER (WHERE source = 'register') AS register_readings,
           count(*) FILTER (WHERE elapsed_seconds > $5) AS gaps,
           coalesce(sum(elapsed_seconds / 60 - 1) FILTER (WHERE elapsed_seconds > $5), 0)
               AS gap_minutes,
           count(*) FILTER (WHERE event = 'reset') AS resets,
           count(*) FILTER (WHERE event = 'glitch') AS glitches,
           count(*) FILTER (WHERE event = 'rejected') AS rejected_deltas,
           sum(interval_kwh) FILTER (WHERE register_kwh IS NOT NULL) - sum(register_kwh)
               AS reconciliation_kwh
    FROM booked_vehicle_readings((SELECT vehicle_key FROM vehicles WHERE vehicle_id = $1),
                                 $2, $3, $4)
)
SELECT * FROM readings, booked;

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
-- arrays), however many. Each span is what its meter's readings in [start, end) book
-- (booked_meter_readings: one range scan of the (meter_key, ts) primary key of the partitions
-- the span touches, with the readings just around it); the meter's key comes from the unique
-- index on meter_id. Exact numeric sums, and the data quality as for the vehicle's DC
-- (summarize_vehicle_window). $4: the meters' power cap (kW); $5: the gap (seconds).
SELECT count(*) AS data_points,
       coalesce(sum(booked.kwh), 0) AS kwh_consumed_ac,
       count(*) FILTER (WHERE booked.source = 'interval') AS interval_readings,
       count(*) FILTER (WHERE booked.source = 'register') AS register_readings,
       count(*) FILTER (WHERE booked.elapsed_seconds > $5) AS gaps,
       coalesce(sum(booked.elapsed_seconds / 60 - 1) FILTER (WHERE booked.elapsed_seconds > $5),
                0) AS gap_minutes,
       count(*) FILTER (WHERE booked.event = 'reset') AS resets,
       count(*) FILTER (WHERE booked.event = 'glitch') AS glitches,
       count(*) FILTER (WHERE booked.event = 'rejected') AS rejected_deltas,
       sum(booked.interval_kwh) FILTER (WHERE booked.register_kwh IS NOT NULL)
           - sum(booked.register_kwh) AS reconciliation_kwh
FROM unnest($1::text[], $2::timestamptz[], $3::timestamptz[]) AS span (meter_id, starts_at, ends_at)
JOIN meters ON meters.meter_id = span.meter_id
-- A plain column as the key, so the planner inlines the function (no sub-select argument).
CROSS JOIN LATERAL booked_meter_readings(meters.meter_key, span.starts_at, span.ends_at, $4)
    AS booked;

-- name: summarize_vehicle_sessions
-- The vehicle's charging sessions over [$2, $3), and its meters' standby energy, as
-- vehicle_energy_readings defines them (the fleet answer adds up the same readings by hour):
-- a reading's minute is the whole UTC minute nearest its timestamp (devices report at the
-- minute with a few seconds of clock jitter either way: a meter stamped 11:59:58 and a vehicle
-- stamped 12:00:02 report the same minute); a charging minute is one in which the vehicle's
-- readings book DC > 0, whether or not all of them lie in the window; the meters' readings in
-- charging minutes are charging AC, all others standby AC. A session is a run of charging
-- minutes fed by one meter, at most $4 minutes without DC between two of them; each session
-- holding a charging reading of the window is answered, cut to the window, with the AC and DC
-- of its readings in the window, so the sessions add up to the charging sums exactly. $5, $6:
-- the meters' and the vehicle's register caps (kW). One row per session, in time order, each
-- carrying the window's standby sums; one row with null session columns when there is none.
WITH reading AS MATERIALIZED (
    SELECT * FROM vehicle_energy_readings($1, $2, $3, $4, $5, $6)
), by_minute AS (
    SELECT session, minute,
           min(ts) AS first_ts,
           min(ts) FILTER (WHERE side = 'vehicle') AS vehicle_ts,
           min(meter_id) FILTER (WHERE side = 'vehicle') AS meter_id,
           coalesce(sum(kwh) FILTER (WHERE side = 'meter'), 0) AS kwh_ac,
           coalesce(sum(kwh) FILTER (WHERE side = 'vehicle'), 0) AS kwh_dc,
           count(*) FILTER (WHERE side = 'vehicle' AND first_of_minute) AS minutes,
           min(meter_id) AS any_meter_id
    FROM reading
    WHERE session IS NOT NULL
    GROUP BY session, minute
), sessions AS (
    -- It never starts after its first DC reading (whose nearest minute may lie after it), nor
    -- after its first reading at all when its DC readings lie before the window.
    SELECT least(greatest(min(minute), $2::timestamptz),
                 coalesce(min(vehicle_ts), min(first_ts))) AS starts_at,
           least(max(minute) + interval '1 minute', $3::timestamptz) AS ends_at,
           coalesce(min(meter_id), min(any_meter_id)) AS meter_id,
           sum(kwh_ac) AS kwh_consumed_ac,
           sum(kwh_dc) AS kwh_delivered_dc,
           sum(minutes)::bigint AS minutes,
           max(kwh_ac) * 60 AS peak_kw
    FROM by_minute
    GROUP BY session
), standby AS (
    SELECT coalesce(sum(kwh), 0) AS kwh_consumed_ac,
           count(*) FILTER (WHERE first_of_minute) AS minutes
    FROM reading
    WHERE side = 'meter' AND NOT charging
)
SELECT sessions.starts_at, sessions.ends_at, sessions.meter_id, sessions.kwh_consumed_ac,
       sessions.kwh_delivered_dc, sessions.minutes, sessions.peak_kw,
       standby.kwh_consumed_ac AS standby_kwh_consumed_ac, standby.minutes AS standby_minutes
FROM standby
LEFT JOIN sessions ON true
ORDER BY sessions.starts_at;

-- name: summarize_vehicle_series
-- A vehicle's readings in [$2, $3) per bucket: $4 holds the buckets' starts, ascending, the
-- first being $2 itself, so width_bucket numbers each reading's bucket from 1 whatever the
-- step (a day of 23 or 25 hours included). The same one-device range scan of the (vehicle_key,
-- ts) primary key as summarize_vehicle_window; the same exact numeric sums (the DC the readings
-- book, $5 the power cap) and 2-decimal temperatures. soc is the last reading's of the bucket,
-- the decimal the device sent.
WITH readings AS (
    SELECT width_bucket(ts, $4::timestamptz[]) AS bucket,
           count(*) AS data_points,
           (array_agg(soc ORDER BY ts DESC))[1]::numeric AS soc,
           round(avg(battery_temp::numeric), 2) AS average_battery_temp,
           round(max(battery_temp)::numeric, 2) AS max_battery_temp
    FROM vehicle_readings
    WHERE vehicle_key = (SELECT vehicle_key FROM vehicles WHERE vehicle_id = $1)
      AND ts >= $2 AND ts < $3
    GROUP BY bucket
), booked AS (
    SELECT width_bucket(ts, $4::timestamptz[]) AS bucket, sum(kwh) AS kwh_delivered_dc
    FROM booked_vehicle_readings((SELECT vehicle_key FROM vehicles WHERE vehicle_id = $1),
                                 $2, $3, $5)
    GROUP BY bucket
)
SELECT readings.bucket, readings.data_points, booked.kwh_delivered_dc, readings.soc,
       readings.average_battery_temp, readings.max_battery_temp
FROM readings
JOIN booked USING (bucket)
ORDER BY readings.bucket;

-- name: summarize_meter_series
-- AC of every span per bucket ($4 as above): the spans (parallel arrays $1, $2, $3) are those
-- summarize_meter_spans adds up, read the same way (what each span's readings book, $5 the
-- power cap), so the buckets add up to its sum exactly.
SELECT width_bucket(booked.ts, $4::timestamptz[]) AS bucket,
       count(*) AS data_points,
       sum(booked.kwh) AS kwh_consumed_ac
FROM unnest($1::text[], $2::timestamptz[], $3::timestamptz[]) AS span (meter_id, starts_at, ends_at)
JOIN meters ON meters.meter_id = span.meter_id
CROSS JOIN LATERAL booked_meter_readings(meters.meter_key, span.starts_at, span.ends_at, $5)
    AS booked
GROUP BY bucket
ORDER BY bucket;

-- name: summarize_vehicle_series_hours
-- summarize_vehicle_series for buckets on whole hours (steps 1h and 1d in zones whose midnight
-- is a whole UTC hour): the window's whole hours [$5, $6) from the hourly rollups and the
-- rollup inbox (not folded yet), its partial hours from history, so 7 days at 1h read 168
-- rollup rows instead of 10,080 readings. Same sums, same 2-decimal temperatures (an average
-- over numeric is exactly the numeric sum over the count). soc, the last reading's of the
-- bucket, is one backward probe of the primary key per bucket with data. $5, $6 null: no whole
-- hour in the window.
WITH device AS MATERIALIZED (
    SELECT vehicle_key FROM vehicles WHERE vehicle_id = $1
), parts AS (
    SELECT hour AS at, readings, kwh_delivered_dc AS kwh, battery_temp_sum AS temp,
           battery_temp_max AS temp_max
    FROM vehicle_rollups
    WHERE vehicle_key = (SELECT vehicle_key FROM device) AND hour >= $5 AND hour < $6
    UNION ALL
    SELECT ts, readings, kwh_delivered_dc::numeric, battery_temp::numeric, battery_temp
    FROM vehicle_rollup_inbox
    WHERE vehicle_key = (SELECT vehicle_key FROM device) AND ts >= $5 AND ts < $6
    UNION ALL
    SELECT reading.ts, 1, booked.kwh, reading.battery_temp::numeric, reading.battery_temp
    FROM vehicle_readings AS reading
    JOIN booked_vehicle_readings((SELECT vehicle_key FROM device), $2, coalesce($5, $3), $7)
        AS booked ON booked.ts = reading.ts
    WHERE $2 < coalesce($5, $3)
      AND reading.vehicle_key = (SELECT vehicle_key FROM device)
      AND reading.ts >= $2 AND reading.ts < coalesce($5, $3)
    UNION ALL
    SELECT reading.ts, 1, booked.kwh, reading.battery_temp::numeric, reading.battery_temp
    FROM vehicle_readings AS reading
    JOIN booked_vehicle_readings((SELECT vehicle_key FROM device), $6, $3, $7) AS booked
        ON booked.ts = reading.ts
    WHERE $6 < $3 AND reading.vehicle_key = (SELECT vehicle_key FROM device)
      AND reading.ts >= $6 AND reading.ts < $3
), sums AS (
    SELECT width_bucket(at, $4::timestamptz[]) AS bucket,
           sum(readings)::bigint AS data_points,
           sum(kwh) AS kwh_delivered_dc,
           round(sum(temp) / sum(readings), 2) AS average_battery_temp,
           round(max(temp_max)::numeric, 2) AS max_battery_temp
    FROM parts
    GROUP BY bucket
), bounds AS (
    SELECT number AS bucket, starts_at,
           coalesce(lead(starts_at) OVER (ORDER BY number), $3) AS ends_at
    FROM unnest($4::timestamptz[]) WITH ORDINALITY AS bucket (starts_at, number)
)
SELECT sums.bucket, sums.data_points, sums.kwh_delivered_dc, last.soc,
       sums.average_battery_temp, sums.max_battery_temp
FROM sums
JOIN bounds ON bounds.bucket = sums.bucket
CROSS JOIN LATERAL (
    SELECT soc::numeric AS soc
    FROM vehicle_readings
    WHERE vehicle_key = (SELECT vehicle_key FROM device)
      AND ts >= bounds.starts_at AND ts < bounds.ends_at
    ORDER BY ts DESC
    LIMIT 1
) AS last
ORDER BY sums.bucket;

-- name: summarize_meter_series_hours
-- summarize_meter_series for buckets on whole hours: each span's whole hours from the hourly
-- rollups and the inbox, its partial hours (at its own ends, and the window's) from history
-- as they book ($5: the power cap); one (meter_key, hour|ts) index range per piece.
SELECT width_bucket(part.at, $4::timestamptz[]) AS bucket,
       sum(part.readings)::bigint AS data_points,
       sum(part.kwh) AS kwh_consumed_ac
FROM unnest($1::text[], $2::timestamptz[], $3::timestamptz[]) AS span (meter_id, starts_at, ends_at)
JOIN meters ON meters.meter_id = span.meter_id
CROSS JOIN LATERAL (
    SELECT meters.meter_key,
           CASE WHEN date_bin('1 hour', span.starts_at, '2000-01-01 00:00+00') = span.starts_at
                THEN span.starts_at
                ELSE date_bin('1 hour', span.starts_at, '2000-01-01 00:00+00') + interval '1 hour'
           END AS first_hour,
           date_bin('1 hour', span.ends_at, '2000-01-01 00:00+00') AS end_hour
) AS hours
CROSS JOIN LATERAL (
    -- The partial hours before the first whole one (the whole span when it has none), so each
    -- history branch below runs only when its range is not empty.
    SELECT hours.*,
           CASE WHEN hours.first_hour < hours.end_hour THEN hours.first_hour
                ELSE span.ends_at END AS head_end
) AS piece
CROSS JOIN LATERAL (
    SELECT hour AS at, readings, kwh_consumed_ac AS kwh
    FROM meter_rollups
    WHERE piece.first_hour < piece.end_hour
      AND meter_key = piece.meter_key AND hour >= piece.first_hour AND hour < piece.end_hour
    UNION ALL
    SELECT ts, readings, kwh_consumed_ac::numeric
    FROM meter_rollup_inbox
    WHERE piece.first_hour < piece.end_hour
      AND meter_key = piece.meter_key AND ts >= piece.first_hour AND ts < piece.end_hour
    UNION ALL
    SELECT ts, 1, kwh
    FROM booked_meter_readings(piece.meter_key, span.starts_at, piece.head_end, $5)
    WHERE span.starts_at < piece.head_end
    UNION ALL
    SELECT ts, 1, kwh
    FROM booked_meter_readings(piece.meter_key, piece.end_hour, span.ends_at, $5)
    WHERE piece.first_hour < piece.end_hour AND piece.end_hour < span.ends_at
) AS part
GROUP BY bucket
ORDER BY bucket;

-- name: list_vehicle_gap_deltas
-- The register steps of the vehicle's readings in [$2, $3) that close a gap (readings further
-- apart than $5 seconds; $4 the power cap): a series spreads each over its gap. Read only for a
-- vehicle that reports its register (its newest reading carries one: one primary-key probe),
-- so an interval device's series reads nothing more.
SELECT booked.ts, booked.elapsed_seconds, booked.kwh
FROM booked_vehicle_readings((SELECT vehicle_key FROM vehicles WHERE vehicle_id = $1), $2, $3, $4)
    AS booked
WHERE EXISTS (SELECT FROM vehicle_live
              WHERE vehicle_id = $1 AND kwh_register_dc IS NOT NULL)
  AND booked.source = 'register' AND booked.event IS NULL AND booked.elapsed_seconds > $5
  AND booked.kwh > 0;

-- name: list_meter_gap_deltas
-- The same for the meters over their spans (parallel arrays $1, $2, $3; $4 the power cap, $5
-- the gap).
SELECT booked.ts, booked.elapsed_seconds, booked.kwh
FROM unnest($1::text[], $2::timestamptz[], $3::timestamptz[]) AS span (meter_id, starts_at, ends_at)
JOIN meters ON meters.meter_id = span.meter_id
-- Only meters that report their register (the newest reading carries one).
JOIN meter_live ON meter_live.meter_id = span.meter_id AND meter_live.kwh_register_ac IS NOT NULL
CROSS JOIN LATERAL booked_meter_readings(meters.meter_key, span.starts_at, span.ends_at, $4)
    AS booked
WHERE booked.source = 'register' AND booked.event IS NULL AND booked.elapsed_seconds > $5
  AND booked.kwh > 0;
