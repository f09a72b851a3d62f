-- Fleet performance: every vehicle's efficiency over one window, from the hourly rollups.
-- Whole hours come from meter_rollups / vehicle_rollups (one (device, hour) index range per
-- piece); only the partial hours at the window's edges and at assignment boundaries are read
-- from history, each as one (device, ts) index range of at most an hour. Nothing scans history.

-- name: list_fleet_vehicles
-- The fleet is every vehicle the engine knows, by the per-vehicle endpoint's rule: it has
-- reported (live row) or has been assigned a meter. The same-id fallback needs a meter of that
-- id that has reported and that no assignment gives to anybody (as get_vehicle_presence).
-- The live tables and the assignments are one row per device: small, read whole.
WITH fleet AS (
    SELECT vehicle_id FROM vehicle_live
    UNION
    SELECT vehicle_id FROM vehicle_meter_assignments
)
SELECT fleet.vehicle_id,
       live.ts AS last_seen,
       EXISTS (SELECT 1 FROM vehicle_meter_assignments AS a WHERE a.vehicle_id = fleet.vehicle_id)
           AS has_assignments,
       EXISTS (SELECT 1 FROM meter_live AS m WHERE m.meter_id = fleet.vehicle_id)
       AND NOT EXISTS (SELECT 1 FROM vehicle_meter_assignments AS a
                       WHERE a.meter_id = fleet.vehicle_id)
           AS same_id_meter_usable
FROM fleet
LEFT JOIN vehicle_live AS live ON live.vehicle_id = fleet.vehicle_id
ORDER BY fleet.vehicle_id;

-- name: list_fleet_assignments_in_window
-- Every assignment overlapping [$1, $2), clipped to it, in each vehicle's order (as
-- list_assignments_in_window does for one vehicle).
SELECT vehicle_id,
       meter_id,
       greatest(lower(during), $1::timestamptz) AS clipped_from,
       least(coalesce(upper(during), $2::timestamptz), $2::timestamptz) AS clipped_to
FROM vehicle_meter_assignments
WHERE during && tstzrange($1::timestamptz, $2::timestamptz, '[)')
ORDER BY vehicle_id, lower(during);

-- name: count_silent_vehicles
-- Vehicles whose newest reading is older than $1: one pass over the live table.
SELECT count(*) FROM vehicle_live WHERE ts < $1;

-- name: sum_fleet_meter_pieces
-- $1..$5 are parallel arrays of pieces: the owner (a row number of the answer), the meter id,
-- [start, end), and whether the piece is whole hours (read from meter_rollups by hour) or a
-- partial hour (read from meter_readings by ts). The branch a piece does not take is a
-- one-time filter on the piece's own flag: it never runs. Each branch is one range of a
-- (meter_key, hour|ts) primary key, pruned to the piece's days when the scan starts. Sums per
-- owner, exact numeric.
SELECT piece.owner,
       coalesce(sum(part.data_points), 0)::bigint AS data_points,
       coalesce(sum(part.kwh_consumed_ac), 0) AS kwh_consumed_ac
FROM unnest($1::integer[], $2::text[], $3::timestamptz[], $4::timestamptz[], $5::boolean[])
    AS piece (owner, meter_id, starts_at, ends_at, whole)
CROSS JOIN LATERAL (
    SELECT sum(readings) AS data_points, sum(kwh_consumed_ac) AS kwh_consumed_ac
    FROM meter_rollups
    WHERE piece.whole
      AND meter_key = (SELECT meter_key FROM meters WHERE meters.meter_id = piece.meter_id)
      AND hour >= piece.starts_at AND hour < piece.ends_at
    UNION ALL
    SELECT count(*), sum(kwh_consumed_ac::numeric)
    FROM meter_readings
    WHERE NOT piece.whole
      AND meter_key = (SELECT meter_key FROM meters WHERE meters.meter_id = piece.meter_id)
      AND ts >= piece.starts_at AND ts < piece.ends_at
) AS part
GROUP BY piece.owner;

-- name: sum_fleet_meter_window_hours
-- Every meter's whole hours of the window, [$1, $2), in one pass over the rollups of those
-- hours (the window's day partitions of meter_rollups, never history): the common case of a
-- meter assigned for the whole window. Hash-aggregated by key, then named.
SELECT meters.meter_id,
       sum(hours.readings)::bigint AS data_points,
       sum(hours.kwh_consumed_ac) AS kwh_consumed_ac
FROM meter_rollups AS hours
JOIN meters USING (meter_key)
WHERE hours.hour >= $1 AND hours.hour < $2
GROUP BY meters.meter_id;

-- name: sum_fleet_vehicle_window
-- Every vehicle over the window: whole hours [$1, $2) in one pass over the rollups of those
-- hours, plus the partial hours at the window's edges ($3, $4: parallel arrays of [start, end),
-- empty for a window on whole hours), each one (vehicle_key, ts) index range of history per
-- vehicle. The average temperature is the per-vehicle endpoint's round(avg(battery_temp::
-- numeric), 2): avg over numeric is exactly the numeric sum divided by the count.
WITH parts AS (
    SELECT vehicle_key, sum(readings) AS data_points, sum(kwh_delivered_dc) AS kwh_delivered_dc,
           sum(battery_temp_sum) AS battery_temp_sum
    FROM vehicle_rollups
    WHERE hour >= $1 AND hour < $2
    GROUP BY vehicle_key
    UNION ALL
    SELECT vehicles.vehicle_key, edge_sums.*
    FROM unnest($3::timestamptz[], $4::timestamptz[]) AS edge (starts_at, ends_at)
    CROSS JOIN vehicles
    CROSS JOIN LATERAL (
        SELECT count(*), sum(kwh_delivered_dc::numeric), sum(battery_temp::numeric)
        FROM vehicle_readings
        WHERE vehicle_key = vehicles.vehicle_key
          AND ts >= edge.starts_at AND ts < edge.ends_at
    ) AS edge_sums
)
SELECT vehicles.vehicle_id,
       coalesce(sum(parts.data_points), 0)::bigint AS data_points,
       coalesce(sum(parts.kwh_delivered_dc), 0) AS kwh_delivered_dc,
       round(sum(parts.battery_temp_sum) / nullif(sum(parts.data_points), 0), 2)
           AS average_battery_temp
FROM parts
JOIN vehicles USING (vehicle_key)
GROUP BY vehicles.vehicle_id;
