-- Fleet performance: every vehicle's efficiency over one window, from the rollups, in one
-- statement (one snapshot) that also judges, counts, sorts and pages, so only the page's rows
-- leave the database. Whole hours [a, b) of a day are element a+1 minus element b+1 of its day
-- row (running totals to the day's end), plus the rollup inbox (readings not folded yet); only
-- the partial hours at the window's edges and at assignment boundaries are read from history,
-- each as one (device, ts) index range of less than an hour. Nothing scans history.

-- name: plan_fleet_with_hash_joins
-- For the fleet statement's transaction only. Its joins are of whole CTEs of one row per
-- device, whose sizes the planner cannot estimate (an aggregate's guess is 200 rows): it then
-- sorts 10,000 rows to merge-join them, where hashing them is a tenth cheaper overall (24-hour
-- window, 10,000 vehicles: 102 -> 92 ms).
SET LOCAL enable_mergejoin = off;

-- name: plan_fleet_without_jit
-- For the fleet statement's transaction only. It holds the charging split's computation for
-- the hours not folded yet (vehicle_energy_hours_of, inlined: most branches never run), whose
-- estimated cost makes PostgreSQL JIT-compile thousands of functions, 10 s for a 92 ms answer.
SET LOCAL jit = off;

-- name: fleet_performance
-- $1, $2: the window [start, end). $3, $4: its whole hours [first, end) (null, null when it
-- holds none). $5: the efficiency threshold (numeric, exact). $6: "silent" means no reading
-- since. $7: statuses kept (null: all). $8: the sort (efficiency, energyLossKwh,
-- energyConsumedAc, lastSeen, vehicleId), $9: descending. $10, $11: the cursor's sort key and
-- vehicle id (null, null: the first page). $12: rows wanted (null: all). $13..$16: the whole
-- hours as day rows read them: the first day (UTC midnight) and its first hour (0–23), the
-- last day and the end of its last hour (1–24); the days between are read whole. $17: the
-- edges of the summary's efficiency histogram, ascending. $18, $19: the meters' and the
-- vehicles' power caps (kW) the register readings of partial hours are booked with. $20, $21:
-- the session gap (minutes) and the gap (seconds) of the charging split and data quality;
-- $22..$25 the threshold's power classes (thresholds). Each vehicle's status judges its
-- charging minutes (vehicle_energy_hours: standby AC, charging minutes) when they drew AC.
-- Answers one row per page row, each carrying the fleet summary (one row with null vehicle
-- fields when the page is empty). The numbers are the per-vehicle endpoint's exact sums:
-- numeric from the float8 each reading was sent as, the average temperature rounded to 2.
WITH day_sums AS MATERIALIZED (
    -- Both streams' day rows over the window's whole hours, each device's subtractions added
    -- up: independent aggregates that PostgreSQL runs side by side (Parallel Append).
    SELECT 'meter' AS kind, sums.* FROM (
        SELECT meter_key AS device_key, sum(kwh) AS kwh, sum(readings) AS readings
        FROM (
            SELECT days.meter_key,
                   days.kwh_consumed_ac[bounds.lower + 1] - coalesce(days.kwh_consumed_ac[bounds.upper + 1], 0)
                       AS kwh,
                   days.readings[bounds.lower + 1] - coalesce(days.readings[bounds.upper + 1], 0) AS readings
            FROM meter_rollup_days AS days
            CROSS JOIN LATERAL (
                SELECT CASE WHEN days.day = $13::timestamptz THEN $14::integer ELSE 0 END AS lower,
                       CASE WHEN days.day = $15::timestamptz THEN $16::integer ELSE 24 END AS upper
            ) AS bounds
            WHERE days.day >= $13::timestamptz AND days.day <= $15::timestamptz
        ) AS day_rows GROUP BY meter_key
    ) AS sums
    UNION ALL
    SELECT 'vehicle', sums.* FROM (
        SELECT vehicle_key, sum(kwh), sum(readings)
        FROM (
            SELECT days.vehicle_key,
                   days.kwh_delivered_dc[bounds.lower + 1] - coalesce(days.kwh_delivered_dc[bounds.upper + 1], 0)
                       AS kwh,
                   days.readings[bounds.lower + 1] - coalesce(days.readings[bounds.upper + 1], 0) AS readings
            FROM vehicle_rollup_days AS days
            CROSS JOIN LATERAL (
                SELECT CASE WHEN days.day = $13::timestamptz THEN $14::integer ELSE 0 END AS lower,
                       CASE WHEN days.day = $15::timestamptz THEN $16::integer ELSE 24 END AS upper
            ) AS bounds
            WHERE days.day >= $13::timestamptz AND days.day <= $15::timestamptz
        ) AS day_rows GROUP BY vehicle_key
    ) AS sums
    UNION ALL
    -- The charging split the folder computed (vehicle_energy_hours), kept in the same day rows:
    -- standby AC (as kwh) and charging minutes (as readings), a third aggregate beside the two.
    SELECT 'charging', sums.* FROM (
        SELECT vehicle_key, sum(standby_ac), sum(charging_minutes)
        FROM (
            SELECT days.vehicle_key,
                   days.standby_ac[bounds.lower + 1] - coalesce(days.standby_ac[bounds.upper + 1], 0)
                       AS standby_ac,
                   days.charging_minutes[bounds.lower + 1]
                       - coalesce(days.charging_minutes[bounds.upper + 1], 0) AS charging_minutes
            FROM vehicle_rollup_days AS days
            CROSS JOIN LATERAL (
                SELECT CASE WHEN days.day = $13::timestamptz THEN $14::integer ELSE 0 END AS lower,
                       CASE WHEN days.day = $15::timestamptz THEN $16::integer ELSE 24 END AS upper
            ) AS bounds
            WHERE days.day >= $13::timestamptz AND days.day <= $15::timestamptz
        ) AS day_rows GROUP BY vehicle_key
    ) AS sums
), fleet AS MATERIALIZED (
    -- Every vehicle the engine knows (it reported, or it has an assignment), with what decides
    -- its correlation, as get_vehicle_presence decides it for one vehicle. The live tables and
    -- the assignments hold one row per device: small, read whole, looked up in hash tables.
    SELECT known.vehicle_id,
           vehicles.vehicle_key,
           known.last_seen,
           known.vehicle_id IN (SELECT vehicle_id FROM vehicle_meter_assignments)
               AS has_assignments,
           known.vehicle_id IN (SELECT meter_id FROM meter_live)
           AND known.vehicle_id NOT IN (SELECT meter_id FROM vehicle_meter_assignments)
               AS same_id_meter_usable
    FROM (
        SELECT vehicle_id, ts AS last_seen FROM vehicle_live
        UNION ALL
        SELECT DISTINCT vehicle_id, NULL::timestamptz FROM vehicle_meter_assignments
        WHERE vehicle_id NOT IN (SELECT vehicle_id FROM vehicle_live)
    ) AS known
    LEFT JOIN vehicles ON vehicles.vehicle_id = known.vehicle_id
), spans AS MATERIALIZED (
    -- The meters that fed each vehicle, clipped to the window: its assignments if it was ever
    -- assigned one, else the meter of its own id when usable (analytics.service.correlate).
    SELECT span.vehicle_id, span.meter_id, span.starts_at, span.ends_at, span.position,
           meters.meter_key,
           span.starts_at = $1::timestamptz AND span.ends_at = $2::timestamptz AS whole_window
    FROM (
        SELECT vehicle_id, meter_id,
               greatest(lower(during), $1::timestamptz) AS starts_at,
               least(coalesce(upper(during), $2::timestamptz), $2::timestamptz) AS ends_at,
               lower(during) AS position
        FROM vehicle_meter_assignments
        WHERE during && tstzrange($1::timestamptz, $2::timestamptz, '[)')
        UNION ALL
        SELECT vehicle_id, vehicle_id, $1::timestamptz, $2::timestamptz, NULL
        FROM fleet
        WHERE NOT has_assignments AND same_id_meter_usable
    ) AS span
    LEFT JOIN meters ON meters.meter_id = span.meter_id
), meter_window AS (
    -- Every meter fed into a vehicle for the whole window: its day rows' sums (day_sums), the
    -- inbox, and its partial hours, one (meter_key, ts) index range a meter (LATERAL, so never
    -- a scan; each edge branch is a one-time filter on the window's shape, so a window on
    -- whole hours never probes history).
    SELECT coalesce(days.device_key, extra.meter_key) AS meter_key,
           coalesce(days.kwh, 0) + coalesce(extra.kwh, 0) AS kwh,
           coalesce(days.readings, 0) + coalesce(extra.readings, 0) AS readings
    FROM (SELECT device_key, kwh, readings FROM day_sums WHERE kind = 'meter') AS days
    FULL JOIN (
        -- What the day rows do not hold yet or cannot: the inbox and the partial hours (few
        -- rows; added by a join, not a second aggregate over every device).
        SELECT part.meter_key, sum(part.kwh) AS kwh, sum(part.readings) AS readings
        FROM (
            SELECT meter_key, kwh_consumed_ac::numeric AS kwh, readings
            FROM meter_rollup_inbox
            WHERE ts >= $3::timestamptz AND ts < $4::timestamptz
            UNION ALL
            SELECT fed.meter_key, edge.kwh, edge.readings
            FROM (SELECT DISTINCT meter_key FROM spans WHERE whole_window) AS fed
            CROSS JOIN LATERAL (
                -- A device without a register reading in the edge books its intervals: summed
                -- straight from the rows; only one that sent a register is booked (a sub-plan
                -- the CASE runs for it alone).
                SELECT CASE WHEN raw.registers = 0 THEN raw.kwh
                            ELSE (SELECT sum(booked.kwh)
                                  FROM booked_meter_readings(fed.meter_key, $1::timestamptz, coalesce($3::timestamptz, $2::timestamptz),
                                            $18::double precision) AS booked)
                       END AS kwh,
                       raw.readings
                FROM (SELECT sum(kwh_consumed_ac::numeric) AS kwh, count(*) AS readings,
                             count(kwh_register_ac) AS registers
                      FROM meter_readings
                      WHERE meter_key = fed.meter_key AND ts >= $1::timestamptz AND ts < coalesce($3::timestamptz, $2::timestamptz)) AS raw
            ) AS edge
            WHERE $1::timestamptz < coalesce($3::timestamptz, $2::timestamptz)
            UNION ALL
            SELECT fed.meter_key, edge.kwh, edge.readings
            FROM (SELECT DISTINCT meter_key FROM spans WHERE whole_window) AS fed
            CROSS JOIN LATERAL (
                -- A device without a register reading in the edge books its intervals: summed
                -- straight from the rows; only one that sent a register is booked (a sub-plan
                -- the CASE runs for it alone).
                SELECT CASE WHEN raw.registers = 0 THEN raw.kwh
                            ELSE (SELECT sum(booked.kwh)
                                  FROM booked_meter_readings(fed.meter_key, $4::timestamptz, $2::timestamptz,
                                            $18::double precision) AS booked)
                       END AS kwh,
                       raw.readings
                FROM (SELECT sum(kwh_consumed_ac::numeric) AS kwh, count(*) AS readings,
                             count(kwh_register_ac) AS registers
                      FROM meter_readings
                      WHERE meter_key = fed.meter_key AND ts >= $4::timestamptz AND ts < $2::timestamptz) AS raw
            ) AS edge
            WHERE $4::timestamptz < $2::timestamptz
        ) AS part
        GROUP BY part.meter_key
    ) AS extra ON extra.meter_key = days.device_key
), span_sums AS (
    -- A span that starts or ends inside the window (an assignment change): its own whole
    -- hours from the meter's day rows and the inbox, its partial hours from history.
    SELECT span.vehicle_id, sum(part.kwh) AS kwh, sum(part.readings) AS readings
    FROM spans AS span
    CROSS JOIN LATERAL (
        SELECT CASE WHEN date_bin('1 hour', span.starts_at, '2000-01-01 00:00+00') = span.starts_at
                    THEN span.starts_at
                    ELSE date_bin('1 hour', span.starts_at, '2000-01-01 00:00+00') + interval '1 hour'
               END AS first_hour,
               date_bin('1 hour', span.ends_at, '2000-01-01 00:00+00') AS end_hour
    ) AS bare
    CROSS JOIN LATERAL (
        -- Where the partial hours before the first whole one end (the span's end when it
        -- holds no whole hour): each history branch below runs only for a range not empty.
        SELECT bare.*,
               CASE WHEN bare.first_hour < bare.end_hour THEN bare.first_hour
                    ELSE span.ends_at END AS head_end
    ) AS hours
    CROSS JOIN LATERAL (
        SELECT days.kwh_consumed_ac[bounds.lower + 1] - coalesce(days.kwh_consumed_ac[bounds.upper + 1], 0)
                   AS kwh,
               days.readings[bounds.lower + 1] - coalesce(days.readings[bounds.upper + 1], 0) AS readings
        FROM meter_rollup_days AS days
        CROSS JOIN LATERAL (
            SELECT CASE WHEN days.day = date_bin('1 day', hours.first_hour, '2000-01-01 00:00+00')
                        THEN extract(hour FROM hours.first_hour AT TIME ZONE 'UTC')::integer
                        ELSE 0 END AS lower,
                   CASE WHEN days.day = date_bin('1 day', hours.end_hour - interval '1 hour',
                                                 '2000-01-01 00:00+00')
                        THEN extract(hour FROM (hours.end_hour - interval '1 hour')
                                               AT TIME ZONE 'UTC')::integer + 1
                        ELSE 24 END AS upper
        ) AS bounds
        WHERE hours.first_hour < hours.end_hour
          AND days.meter_key = span.meter_key
          AND days.day >= date_bin('1 day', hours.first_hour, '2000-01-01 00:00+00')
          AND days.day < hours.end_hour
          -- The window's own days (a span is inside the window): a bound the planner can prune
          -- partitions with before the statement runs, where the span's bounds are per row.
          AND days.day >= $13::timestamptz AND days.day <= $15::timestamptz
        UNION ALL
        SELECT kwh_consumed_ac::numeric, readings
        FROM meter_rollup_inbox
        WHERE hours.first_hour < hours.end_hour
          AND meter_key = span.meter_key
          AND ts >= hours.first_hour AND ts < hours.end_hour
        UNION ALL
        SELECT kwh, 1
        FROM booked_meter_readings(span.meter_key, greatest(span.starts_at, $1::timestamptz),
                                   least(hours.head_end, $2::timestamptz), $18::double precision)
        WHERE span.starts_at < hours.head_end
        UNION ALL
        SELECT kwh, 1
        FROM booked_meter_readings(span.meter_key, greatest(hours.end_hour, $1::timestamptz),
                                   least(span.ends_at, $2::timestamptz), $18::double precision)
        WHERE hours.first_hour < hours.end_hour AND hours.end_hour < span.ends_at
    ) AS part
    WHERE NOT span.whole_window AND span.meter_key IS NOT NULL
    GROUP BY span.vehicle_id
), meter_sums AS (
    -- A vehicle has at most one span over the whole window (its assignments never overlap),
    -- so the whole-window join gives at most one row a vehicle; partial spans add to it.
    SELECT coalesce(whole.vehicle_id, span_sums.vehicle_id) AS vehicle_id,
           coalesce(whole.kwh, 0) + coalesce(span_sums.kwh, 0) AS kwh,
           coalesce(whole.readings, 0) + coalesce(span_sums.readings, 0) AS readings
    FROM (
        SELECT span.vehicle_id, meter_window.kwh, meter_window.readings
        FROM spans AS span
        JOIN meter_window ON meter_window.meter_key = span.meter_key
        WHERE span.whole_window
    ) AS whole
    FULL JOIN span_sums ON span_sums.vehicle_id = whole.vehicle_id
), vehicle_window AS (
    -- Every vehicle's DC and count over the window, the same way as meter_window (the
    -- temperatures only for the page's rows: page_temperatures).
    SELECT coalesce(days.device_key, extra.vehicle_key) AS vehicle_key,
           coalesce(days.kwh, 0) + coalesce(extra.kwh, 0) AS kwh,
           coalesce(days.readings, 0) + coalesce(extra.readings, 0) AS readings
    FROM (SELECT device_key, kwh, readings FROM day_sums WHERE kind = 'vehicle') AS days
    FULL JOIN (
        -- What the day rows do not hold yet or cannot: the inbox and the partial hours (few
        -- rows; added by a join, not a second aggregate over every device).
        SELECT part.vehicle_key, sum(part.kwh) AS kwh, sum(part.readings) AS readings
        FROM (
            SELECT vehicle_key, kwh_delivered_dc::numeric AS kwh, readings
            FROM vehicle_rollup_inbox
            WHERE ts >= $3::timestamptz AND ts < $4::timestamptz
            UNION ALL
            SELECT fleet.vehicle_key, edge.kwh, edge.readings
            FROM fleet
            CROSS JOIN LATERAL (
                -- A device without a register reading in the edge books its intervals: summed
                -- straight from the rows; only one that sent a register is booked (a sub-plan
                -- the CASE runs for it alone).
                SELECT CASE WHEN raw.registers = 0 THEN raw.kwh
                            ELSE (SELECT sum(booked.kwh)
                                  FROM booked_vehicle_readings(fleet.vehicle_key, $1::timestamptz, coalesce($3::timestamptz, $2::timestamptz),
                                            $19::double precision) AS booked)
                       END AS kwh,
                       raw.readings
                FROM (SELECT sum(kwh_delivered_dc::numeric) AS kwh, count(*) AS readings,
                             count(kwh_register_dc) AS registers
                      FROM vehicle_readings
                      WHERE vehicle_key = fleet.vehicle_key AND ts >= $1::timestamptz AND ts < coalesce($3::timestamptz, $2::timestamptz)) AS raw
            ) AS edge
            WHERE $1::timestamptz < coalesce($3::timestamptz, $2::timestamptz)
              AND fleet.vehicle_key IS NOT NULL
            UNION ALL
            SELECT fleet.vehicle_key, edge.kwh, edge.readings
            FROM fleet
            CROSS JOIN LATERAL (
                -- A device without a register reading in the edge books its intervals: summed
                -- straight from the rows; only one that sent a register is booked (a sub-plan
                -- the CASE runs for it alone).
                SELECT CASE WHEN raw.registers = 0 THEN raw.kwh
                            ELSE (SELECT sum(booked.kwh)
                                  FROM booked_vehicle_readings(fleet.vehicle_key, $4::timestamptz, $2::timestamptz,
                                            $19::double precision) AS booked)
                       END AS kwh,
                       raw.readings
                FROM (SELECT sum(kwh_delivered_dc::numeric) AS kwh, count(*) AS readings,
                             count(kwh_register_dc) AS registers
                      FROM vehicle_readings
                      WHERE vehicle_key = fleet.vehicle_key AND ts >= $4::timestamptz AND ts < $2::timestamptz) AS raw
            ) AS edge
            WHERE $4::timestamptz < $2::timestamptz AND fleet.vehicle_key IS NOT NULL
        ) AS part
        GROUP BY part.vehicle_key
    ) AS extra ON extra.vehicle_key = days.device_key
), unsettled AS MATERIALIZED (
    -- The window's hours whose stored split may be behind history: around readings still in
    -- the rollup inbox (vehicle_energy_touched, as the fold will queue them) and in pending
    -- vehicle-days. Few (the readings of the last fold interval); computed below from history.
    SELECT DISTINCT touched.vehicle_key, hour.hour
    FROM (
        SELECT t.vehicle_key, t.lo, t.hi
        FROM (SELECT array_agg(meter_key) AS keys, array_agg(ts) AS ts
              FROM meter_rollup_inbox) AS batch
        CROSS JOIN LATERAL vehicle_energy_touched('meter', batch.keys, batch.ts, $20::integer) AS t
        UNION ALL
        SELECT t.vehicle_key, t.lo, t.hi
        FROM (SELECT array_agg(vehicle_key) AS keys, array_agg(ts) AS ts
              FROM vehicle_rollup_inbox) AS batch
        CROSS JOIN LATERAL vehicle_energy_touched('vehicle', batch.keys, batch.ts, $20::integer) AS t
        UNION ALL
        SELECT vehicle_key, lo, hi FROM vehicle_energy_pending
    ) AS touched
    CROSS JOIN LATERAL generate_series(
        date_bin('1 hour', greatest(touched.lo, $1::timestamptz), '2000-01-01 00:00+00'),
        least(touched.hi, $2::timestamptz) - interval '1 microsecond', interval '1 hour') AS hour (hour)
    WHERE touched.lo < $2::timestamptz AND touched.hi > $1::timestamptz
), recomputed AS MATERIALIZED (
    -- The unsettled hours as the folder will compute them (one computation a vehicle, over
    -- the hours from its first unsettled one to its last).
    SELECT runs.vehicle_key, hours.*
    FROM (
        SELECT unsettled.vehicle_key, vehicles.vehicle_id, min(unsettled.hour) AS first_hour,
               max(unsettled.hour) + interval '1 hour' AS end_hour
        FROM unsettled
        JOIN vehicles ON vehicles.vehicle_key = unsettled.vehicle_key
        GROUP BY unsettled.vehicle_key, vehicles.vehicle_id
    ) AS runs
    CROSS JOIN LATERAL vehicle_energy_hours_of(runs.vehicle_id, runs.first_hour, runs.end_hour,
                                               $20::integer, $18::double precision,
                                               $19::double precision, $21::double precision)
        AS hours
    WHERE EXISTS (SELECT FROM unsettled
                  WHERE unsettled.vehicle_key = runs.vehicle_key AND unsettled.hour = hours.hour)
), corrections AS (
    -- What the unsettled whole hours change in the day rows: their computation minus what is
    -- stored.
    SELECT vehicle_key, sum(standby_ac) AS standby_ac, sum(charging_minutes) AS charging_minutes
    FROM (
        SELECT vehicle_key, standby_ac, charging_minutes
        FROM recomputed
        WHERE hour >= $3::timestamptz AND hour < $4::timestamptz
        UNION ALL
        SELECT stored.vehicle_key, -stored.standby_ac, -stored.charging_minutes
        FROM unsettled
        JOIN vehicle_energy_hours AS stored
            ON stored.vehicle_key = unsettled.vehicle_key AND stored.hour = unsettled.hour
        WHERE unsettled.hour >= $3::timestamptz AND unsettled.hour < $4::timestamptz
    ) AS change
    GROUP BY vehicle_key
), edge_hours AS MATERIALIZED (
    -- The hours the window holds only a part of (none on whole hours), with the part's minutes
    -- [lo, hi) when both window edges fall on whole minutes.
    SELECT hour,
           greatest(0, floor(extract(epoch FROM $1::timestamptz - hour) / 60))::integer AS lo,
           least(60, ceil(extract(epoch FROM $2::timestamptz - hour) / 60))::integer AS hi
    FROM generate_series(date_bin('1 hour', $1::timestamptz, '2000-01-01 00:00+00'),
                         $2::timestamptz - interval '1 microsecond', interval '1 hour') AS hour
    WHERE NOT coalesce(hour >= $3::timestamptz AND hour < $4::timestamptz, false)
), edge_rows AS MATERIALIZED (
    -- The stored hour rows of the partial hours (at most two hours of every vehicle: read by
    -- the hour alone, so the join below never meets the rest of the window's hours).
    SELECT stored.vehicle_key, stored.hour, stored.standby_ac_from, stored.charging_minutes_from
    FROM vehicle_energy_hours AS stored
    WHERE stored.hour = ANY (ARRAY(SELECT hour FROM edge_hours))
      AND date_bin('1 minute', $1::timestamptz, '2000-01-01 00:00+00') = $1::timestamptz
      AND date_bin('1 minute', $2::timestamptz, '2000-01-01 00:00+00') = $2::timestamptz
), edges AS MATERIALIZED (
    -- Every vehicle's standby AC and charging minutes in the partial hours. A window to the
    -- minute reads them from the hour rows' running totals by minute (the stored row, or the
    -- recomputed one when unsettled): one subtraction a vehicle and partial hour. A window with
    -- seconds computes them from history, vehicle by vehicle (each branch is a one-time filter
    -- on the window's shape).
    SELECT fleet.vehicle_id,
           coalesce(recomputed.standby_ac_from[part.lo + 1] - recomputed.standby_ac_from[part.hi + 1],
                    stored.standby_ac_from[part.lo + 1] - stored.standby_ac_from[part.hi + 1], 0)
               AS standby_ac,
           coalesce(recomputed.charging_minutes_from[part.lo + 1]
                        - recomputed.charging_minutes_from[part.hi + 1],
                    stored.charging_minutes_from[part.lo + 1]
                        - stored.charging_minutes_from[part.hi + 1], 0) AS charging_minutes
    FROM fleet
    CROSS JOIN edge_hours AS part
    LEFT JOIN unsettled
        ON unsettled.vehicle_key = fleet.vehicle_key AND unsettled.hour = part.hour
    LEFT JOIN recomputed
        ON recomputed.vehicle_key = fleet.vehicle_key AND recomputed.hour = part.hour
    LEFT JOIN edge_rows AS stored
        ON stored.vehicle_key = fleet.vehicle_key AND stored.hour = part.hour
       AND unsettled.hour IS NULL
    WHERE date_bin('1 minute', $1::timestamptz, '2000-01-01 00:00+00') = $1::timestamptz
      AND date_bin('1 minute', $2::timestamptz, '2000-01-01 00:00+00') = $2::timestamptz
      AND fleet.vehicle_key IS NOT NULL
    UNION ALL
    SELECT fleet.vehicle_id, hours.standby_ac, hours.charging_minutes
    FROM fleet
    CROSS JOIN LATERAL vehicle_energy_hours_of(fleet.vehicle_id, $1::timestamptz,
                                               coalesce($3::timestamptz, $2::timestamptz),
                                               $20::integer, $18::double precision,
                                               $19::double precision, $21::double precision)
        AS hours
    WHERE $1::timestamptz < coalesce($3::timestamptz, $2::timestamptz)
      AND (date_bin('1 minute', $1::timestamptz, '2000-01-01 00:00+00') <> $1::timestamptz
           OR date_bin('1 minute', $2::timestamptz, '2000-01-01 00:00+00') <> $2::timestamptz)
    UNION ALL
    SELECT fleet.vehicle_id, hours.standby_ac, hours.charging_minutes
    FROM fleet
    CROSS JOIN LATERAL vehicle_energy_hours_of(fleet.vehicle_id, $4::timestamptz,
                                               $2::timestamptz, $20::integer,
                                               $18::double precision, $19::double precision,
                                               $21::double precision) AS hours
    WHERE $4::timestamptz < $2::timestamptz
      AND (date_bin('1 minute', $1::timestamptz, '2000-01-01 00:00+00') <> $1::timestamptz
           OR date_bin('1 minute', $2::timestamptz, '2000-01-01 00:00+00') <> $2::timestamptz)
), edge_sums AS (
    SELECT vehicle_id, sum(standby_ac) AS standby_ac, sum(charging_minutes) AS charging_minutes
    FROM edges
    GROUP BY vehicle_id
), judged AS (
    -- The charging split: standby AC and charging minutes from the day rows, the unsettled
    -- hours' corrections and the partial hours; charging AC is the rest of the AC, and all DC
    -- is charging DC (a minute with DC charges).
    SELECT sums.*, sums.ac - sums.standby_ac AS charging_ac, sums.dc AS charging_dc,
           sums.charging_minutes > 0 AND sums.ac - sums.standby_ac > 0 AS meaningful
    FROM (
        SELECT fleet.vehicle_id, fleet.vehicle_key, fleet.last_seen, fleet.has_assignments,
               fleet.same_id_meter_usable,
               coalesce(meter_sums.kwh, 0) AS ac,
               coalesce(vehicle_window.kwh, 0) AS dc,
               coalesce(meter_sums.readings, 0)::bigint AS meter_points,
               coalesce(vehicle_window.readings, 0)::bigint AS vehicle_points,
               coalesce(charging_days.kwh, 0) + coalesce(corrections.standby_ac, 0)
                   + coalesce(edge_sums.standby_ac, 0) AS standby_ac,
               (coalesce(charging_days.readings, 0)
                + coalesce(corrections.charging_minutes, 0)
                + coalesce(edge_sums.charging_minutes, 0))::bigint AS charging_minutes
        FROM fleet
        LEFT JOIN meter_sums ON meter_sums.vehicle_id = fleet.vehicle_id
        LEFT JOIN vehicle_window ON vehicle_window.vehicle_key = fleet.vehicle_key
        LEFT JOIN day_sums AS charging_days
            ON charging_days.kind = 'charging' AND charging_days.device_key = fleet.vehicle_key
        LEFT JOIN corrections ON corrections.vehicle_key = fleet.vehicle_key
        LEFT JOIN edge_sums ON edge_sums.vehicle_id = fleet.vehicle_id
    ) AS sums
), thresholds AS (
    -- The threshold each vehicle is judged against (analytics.charging.threshold_for): the
    -- flat one, or in power-class mode ($22) that of the class ($23 upper bounds in kW, the
    -- last null; $24 thresholds, null: the flat one; $25 names) of its charging minutes'
    -- average AC power, compared exactly (AC × 60 against bound × minutes).
    SELECT judged.*,
           CASE WHEN class.position IS NULL THEN $5::numeric
                ELSE coalesce(($24::numeric[])[class.position], $5::numeric) END AS threshold,
           coalesce(($25::text[])[class.position], 'flat') AS threshold_rule
    FROM judged
    -- A sub-plan only in power-class mode and only for a vehicle judged on its charging.
    CROSS JOIN LATERAL (
        SELECT CASE WHEN $22::boolean AND judged.meaningful THEN (
                   SELECT c.position
                   FROM unnest($23::numeric[]) WITH ORDINALITY AS c (up_to, position)
                   WHERE c.up_to IS NULL
                      OR judged.charging_ac * 60 <= c.up_to * judged.charging_minutes
                   ORDER BY c.position
                   LIMIT 1)
               END AS position
    ) AS class
), verdicts AS MATERIALIZED (
    -- The status as analytics.service judges it, exactly (DC against threshold × AC),
    -- and the sort key: the sort's value in numeric (the efficiency to at least 16 significant
    -- digits, beyond what its float answer shows; lastSeen in epoch seconds), negated for
    -- descending order; null (last either way) where the answer is null.
    -- The charging minutes are judged when they drew AC; the whole window otherwise.
    SELECT thresholds.*,
           CASE WHEN vehicle_points = 0 OR meter_points = 0 OR ac <= 0 THEN 'insufficient-data'
                WHEN meaningful AND charging_dc > charging_ac THEN 'implausible'
                WHEN meaningful AND charging_dc < threshold * charging_ac THEN 'underperforming'
                WHEN meaningful THEN 'ok'
                WHEN dc > ac THEN 'implausible'
                WHEN dc < $5::numeric * ac THEN 'underperforming'
                ELSE 'ok' END AS status,
           CASE WHEN $9::boolean THEN -sort_value ELSE sort_value END AS sort_key
    FROM thresholds
    CROSS JOIN LATERAL (
        SELECT CASE $8::text
                   WHEN 'efficiency' THEN CASE WHEN ac > 0 THEN dc / ac END
                   WHEN 'energyLossKwh' THEN CASE WHEN meter_points > 0 THEN ac - dc END
                   WHEN 'energyConsumedAc' THEN ac
                   WHEN 'lastSeen' THEN extract(epoch FROM last_seen)
               END AS sort_value
    ) AS sorted_by
), summary AS (
    SELECT count(*) AS vehicles,
           count(*) FILTER (WHERE status = 'ok') AS ok,
           count(*) FILTER (WHERE status = 'underperforming') AS underperforming,
           count(*) FILTER (WHERE status = 'implausible') AS implausible,
           count(*) FILTER (WHERE status = 'insufficient-data') AS insufficient_data,
           coalesce(sum(ac), 0) AS total_ac,
           coalesce(sum(dc), 0) AS total_dc,
           sum(ac - dc) FILTER (WHERE meter_points > 0) AS total_loss,
           (SELECT count(*) FROM vehicle_live WHERE ts < $6::timestamptz) AS silent,
           -- Vehicles by efficiency bin: bin 0 below the first edge, bin i in [edge i, edge
           -- i+1), the last at or above the last edge; exact (the efficiency to 40 decimals).
           (SELECT array_agg(coalesce(binned.vehicles, 0) ORDER BY bin.number)
            FROM generate_series(0, cardinality($17::numeric[])) AS bin (number)
            LEFT JOIN (SELECT width_bucket(dc::numeric(1000, 40) / ac, $17::numeric[]) AS number,
                              count(*) AS vehicles
                       FROM verdicts WHERE ac > 0 GROUP BY 1) AS binned
                ON binned.number = bin.number) AS efficiency_bins
    FROM verdicts
), page AS (
    -- Nulls last in either order, ties by vehicle id ascending (descending only when sorting
    -- by vehicle id, descending); ids in code-point order, whatever the database's collation.
    -- ORDER BY … LIMIT keeps only the page's rows while sorting (a top-N sort).
    SELECT verdicts.*,
           row_number() OVER (
               ORDER BY sort_key ASC NULLS LAST,
                        CASE WHEN $8::text = 'vehicleId' AND $9::boolean THEN NULL
                             ELSE vehicle_id COLLATE "C" END ASC,
                        CASE WHEN $8::text = 'vehicleId' AND $9::boolean
                             THEN vehicle_id COLLATE "C" END DESC
           ) AS position
    FROM (
        SELECT *
        FROM verdicts
        WHERE ($7::text[] IS NULL OR status = ANY ($7::text[]))
          AND ($11::text IS NULL
               OR ($10::numeric IS NOT NULL
                   AND (sort_key > $10::numeric
                        OR sort_key IS NULL
                        OR (sort_key = $10::numeric
                            AND vehicle_id COLLATE "C" > $11::text COLLATE "C")))
               OR ($10::numeric IS NULL AND sort_key IS NULL
                   AND CASE WHEN $8::text = 'vehicleId' AND $9::boolean
                            THEN vehicle_id COLLATE "C" < $11::text COLLATE "C"
                            ELSE vehicle_id COLLATE "C" > $11::text COLLATE "C" END))
        ORDER BY sort_key ASC NULLS LAST,
                 CASE WHEN $8::text = 'vehicleId' AND $9::boolean THEN NULL
                      ELSE vehicle_id COLLATE "C" END ASC,
                 CASE WHEN $8::text = 'vehicleId' AND $9::boolean
                      THEN vehicle_id COLLATE "C" END DESC
        LIMIT $12::bigint
    ) AS verdicts
), page_temperatures AS (
    -- The battery temperatures of the page's vehicles only (no sort or summary needs them):
    -- their day rows, inbox and partial hours, as vehicle_window reads the DC.
    SELECT part.vehicle_key, sum(part.temp) AS temp
    FROM (
        SELECT days.vehicle_key,
               days.battery_temp_sum[bounds.lower + 1] - coalesce(days.battery_temp_sum[bounds.upper + 1], 0)
                   AS temp
        FROM vehicle_rollup_days AS days
        CROSS JOIN LATERAL (
            SELECT CASE WHEN days.day = $13::timestamptz THEN $14::integer ELSE 0 END AS lower,
                   CASE WHEN days.day = $15::timestamptz THEN $16::integer ELSE 24 END AS upper
        ) AS bounds
        WHERE days.day >= $13::timestamptz AND days.day <= $15::timestamptz
          AND days.vehicle_key IN (SELECT vehicle_key FROM page)
        UNION ALL
        SELECT vehicle_key, battery_temp::numeric
        FROM vehicle_rollup_inbox
        WHERE ts >= $3::timestamptz AND ts < $4::timestamptz
          AND vehicle_key IN (SELECT vehicle_key FROM page)
        UNION ALL
        SELECT page.vehicle_key, edge.temp
        FROM page
        CROSS JOIN LATERAL (
            SELECT sum(battery_temp::numeric) AS temp
            FROM vehicle_readings
            WHERE vehicle_key = page.vehicle_key
              AND ts >= $1::timestamptz AND ts < coalesce($3::timestamptz, $2::timestamptz)
        ) AS edge
        WHERE $1::timestamptz < coalesce($3::timestamptz, $2::timestamptz)
          AND page.vehicle_key IS NOT NULL
        UNION ALL
        SELECT page.vehicle_key, edge.temp
        FROM page
        CROSS JOIN LATERAL (
            SELECT sum(battery_temp::numeric) AS temp
            FROM vehicle_readings
            WHERE vehicle_key = page.vehicle_key AND ts >= $4::timestamptz AND ts < $2::timestamptz
        ) AS edge
        WHERE $4::timestamptz < $2::timestamptz AND page.vehicle_key IS NOT NULL
    ) AS part
    GROUP BY part.vehicle_key
), page_split AS (
    -- For the page's rows only: the charging split's other numbers (standby, sessions) and the
    -- data quality, added up over the window's hours: the stored ones, the unsettled ones
    -- recomputed, and the partial hours from history. A session counts where it starts, and
    -- once more where the window's first charging reading continues one begun before it. A
    -- vehicle that never reported (assigned a meter only) has no stored hours: its window is
    -- computed whole.
    SELECT page.vehicle_id,
           sum(part.standby_ac) AS standby_ac,
           sum(part.standby_minutes)::bigint AS standby_minutes,
           (coalesce(sum(part.session_starts), 0)
            + CASE WHEN (array_agg(part.continues ORDER BY part.hour)
                             FILTER (WHERE part.charging_readings > 0))[1]
                   THEN 1 ELSE 0 END)::bigint AS sessions,
           sum(part.ac_interval_readings)::bigint AS ac_interval_readings,
           sum(part.ac_register_readings)::bigint AS ac_register_readings,
           sum(part.dc_interval_readings)::bigint AS dc_interval_readings,
           sum(part.dc_register_readings)::bigint AS dc_register_readings,
           sum(part.ac_gaps + part.dc_gaps)::bigint AS gaps,
           sum(part.ac_gap_minutes + part.dc_gap_minutes) AS gap_minutes,
           sum(part.ac_resets + part.dc_resets)::bigint AS resets,
           sum(part.ac_glitches + part.dc_glitches)::bigint AS glitches,
           sum(part.ac_rejected_deltas + part.dc_rejected_deltas)::bigint AS rejected_deltas,
           sum(part.ac_reconciled_interval) - sum(part.ac_reconciled_register)
               AS ac_reconciliation_kwh,
           sum(part.dc_reconciled_interval) - sum(part.dc_reconciled_register)
               AS dc_reconciliation_kwh
    FROM page
    CROSS JOIN LATERAL (
        SELECT hour, charging_ac, charging_dc, charging_minutes, charging_readings, session_starts,
               continues, standby_ac, standby_minutes, ac_interval_readings, ac_register_readings,
               ac_gaps, ac_gap_minutes, ac_resets, ac_glitches, ac_rejected_deltas,
               ac_reconciled_interval, ac_reconciled_register, dc_interval_readings,
               dc_register_readings, dc_gaps, dc_gap_minutes, dc_resets, dc_glitches,
               dc_rejected_deltas, dc_reconciled_interval, dc_reconciled_register
        FROM vehicle_energy_hours AS stored
        WHERE stored.vehicle_key = page.vehicle_key
          AND stored.hour >= $3::timestamptz AND stored.hour < $4::timestamptz
          AND NOT EXISTS (SELECT FROM unsettled
                          WHERE unsettled.vehicle_key = stored.vehicle_key
                            AND unsettled.hour = stored.hour)
        UNION ALL
        SELECT hour, charging_ac, charging_dc, charging_minutes, charging_readings, session_starts,
               continues, standby_ac, standby_minutes, ac_interval_readings, ac_register_readings,
               ac_gaps, ac_gap_minutes, ac_resets, ac_glitches, ac_rejected_deltas,
               ac_reconciled_interval, ac_reconciled_register, dc_interval_readings,
               dc_register_readings, dc_gaps, dc_gap_minutes, dc_resets, dc_glitches,
               dc_rejected_deltas, dc_reconciled_interval, dc_reconciled_register
        FROM recomputed
        WHERE recomputed.vehicle_key = page.vehicle_key
          AND recomputed.hour >= $3::timestamptz AND recomputed.hour < $4::timestamptz
        UNION ALL
        SELECT hour, charging_ac, charging_dc, charging_minutes, charging_readings, session_starts,
               continues, standby_ac, standby_minutes, ac_interval_readings, ac_register_readings,
               ac_gaps, ac_gap_minutes, ac_resets, ac_glitches, ac_rejected_deltas,
               ac_reconciled_interval, ac_reconciled_register, dc_interval_readings,
               dc_register_readings, dc_gaps, dc_gap_minutes, dc_resets, dc_glitches,
               dc_rejected_deltas, dc_reconciled_interval, dc_reconciled_register
        FROM vehicle_energy_hours_of(page.vehicle_id, $1::timestamptz,
                                     coalesce($3::timestamptz, $2::timestamptz), $20::integer,
                                     $18::double precision, $19::double precision,
                                     $21::double precision)
        WHERE $1::timestamptz < coalesce($3::timestamptz, $2::timestamptz)
          AND page.vehicle_key IS NOT NULL
        UNION ALL
        SELECT hour, charging_ac, charging_dc, charging_minutes, charging_readings, session_starts,
               continues, standby_ac, standby_minutes, ac_interval_readings, ac_register_readings,
               ac_gaps, ac_gap_minutes, ac_resets, ac_glitches, ac_rejected_deltas,
               ac_reconciled_interval, ac_reconciled_register, dc_interval_readings,
               dc_register_readings, dc_gaps, dc_gap_minutes, dc_resets, dc_glitches,
               dc_rejected_deltas, dc_reconciled_interval, dc_reconciled_register
        FROM vehicle_energy_hours_of(page.vehicle_id, $4::timestamptz, $2::timestamptz,
                                     $20::integer, $18::double precision,
                                     $19::double precision, $21::double precision)
        WHERE $4::timestamptz < $2::timestamptz AND page.vehicle_key IS NOT NULL
        UNION ALL
        SELECT hour, charging_ac, charging_dc, charging_minutes, charging_readings, session_starts,
               continues, standby_ac, standby_minutes, ac_interval_readings, ac_register_readings,
               ac_gaps, ac_gap_minutes, ac_resets, ac_glitches, ac_rejected_deltas,
               ac_reconciled_interval, ac_reconciled_register, dc_interval_readings,
               dc_register_readings, dc_gaps, dc_gap_minutes, dc_resets, dc_glitches,
               dc_rejected_deltas, dc_reconciled_interval, dc_reconciled_register
        FROM vehicle_energy_hours_of(page.vehicle_id, $1::timestamptz, $2::timestamptz,
                                     $20::integer, $18::double precision,
                                     $19::double precision, $21::double precision)
        WHERE page.vehicle_key IS NULL
    ) AS part
    GROUP BY page.vehicle_id
), page_facts AS (
    -- For the page's rows only: the meters in order of first use, and the minutes they were
    -- expected to report (completeness).
    SELECT vehicle_id,
           array_agg(meter_id ORDER BY first_use NULLS FIRST, meter_id) AS meter_ids,
           sum(seconds) / 60 AS expected_minutes
    FROM (
        SELECT vehicle_id, meter_id, min(position) AS first_use,
               sum(extract(epoch FROM ends_at - starts_at)) AS seconds
        FROM spans
        WHERE vehicle_id IN (SELECT vehicle_id FROM page)
        GROUP BY vehicle_id, meter_id
    ) AS by_meter
    GROUP BY vehicle_id
)
SELECT summary.*,
       page.vehicle_id, page.last_seen, page.has_assignments, page.same_id_meter_usable,
       page.ac, page.dc, page.meter_points, page.vehicle_points,
       round(page_temperatures.temp / nullif(page.vehicle_points, 0), 2) AS average_battery_temp,
       page.status, page.sort_key, page.charging_ac, page.charging_dc, page.charging_minutes,
       page.threshold, page.threshold_rule,
       -- A vehicle that never reported has no day rows: its page_split is its whole window.
       CASE WHEN page.vehicle_key IS NULL THEN page_split.standby_ac ELSE page.standby_ac END
           AS standby_ac,
       page_split.standby_minutes,
       page_split.sessions, page_split.ac_interval_readings, page_split.ac_register_readings,
       page_split.dc_interval_readings, page_split.dc_register_readings, page_split.gaps,
       page_split.gap_minutes, page_split.resets, page_split.glitches,
       page_split.rejected_deltas, page_split.ac_reconciliation_kwh,
       page_split.dc_reconciliation_kwh,
       coalesce(page_facts.meter_ids, '{}') AS meter_ids,
       page_facts.expected_minutes
FROM summary
LEFT JOIN page ON true
LEFT JOIN page_facts ON page_facts.vehicle_id = page.vehicle_id
LEFT JOIN page_temperatures ON page_temperatures.vehicle_key = page.vehicle_key
LEFT JOIN page_split ON page_split.vehicle_id = page.vehicle_id
ORDER BY page.position;