-- Vehicle ↔ meter assignments. The exclusion constraints on the table are the rule; these
-- statements only end and start assignments inside one transaction per change.

-- name: lock_vehicle_assignments
-- Serialises changes to one vehicle's assignments (read current, end it, start the next).
SELECT pg_advisory_xact_lock(hashtextextended('energy_ingest.assignment:' || $1, 0));

-- name: lock_meter_assignments
-- Taken after the vehicle's lock, for each meter a change touches (the one it ends, the one
-- it starts) in sorted order: two changes touching the same meter queue here instead of
-- meeting inside the exclusion constraint's index, where they can deadlock.
SELECT pg_advisory_xact_lock(hashtextextended('energy_ingest.meter_assignment:' || $1, 0));

-- name: get_current_assignment
SELECT id, vehicle_id, meter_id, lower(during) AS starts_at, upper(during) AS ends_at
FROM vehicle_meter_assignments
WHERE vehicle_id = $1 AND upper_inf(during);

-- name: end_assignment
UPDATE vehicle_meter_assignments
SET during = tstzrange(lower(during), $2::timestamptz, '[)')
WHERE id = $1
RETURNING id, vehicle_id, meter_id, lower(during) AS starts_at, upper(during) AS ends_at;

-- name: insert_assignment
INSERT INTO vehicle_meter_assignments (vehicle_id, meter_id, during)
VALUES ($1, $2, tstzrange($3::timestamptz, NULL, '[)'))
RETURNING id, vehicle_id, meter_id, lower(during) AS starts_at, upper(during) AS ends_at;

-- name: list_vehicle_assignments
SELECT id, vehicle_id, meter_id, lower(during) AS starts_at, upper(during) AS ends_at
FROM vehicle_meter_assignments
WHERE vehicle_id = $1
ORDER BY lower(during);

-- name: find_meter_clash
-- For the 409 message: who holds this meter somewhere in [$2, ∞).
SELECT vehicle_id, lower(during) AS starts_at, upper(during) AS ends_at
FROM vehicle_meter_assignments
WHERE meter_id = $1 AND during && tstzrange($2::timestamptz, NULL, '[)')
ORDER BY lower(during)
LIMIT 1;

-- name: find_vehicle_clash
-- For the 409 message: the vehicle's assignment that overlaps [$2, ∞).
SELECT meter_id, lower(during) AS starts_at, upper(during) AS ends_at
FROM vehicle_meter_assignments
WHERE vehicle_id = $1 AND during && tstzrange($2::timestamptz, NULL, '[)')
ORDER BY lower(during)
LIMIT 1;

-- name: queue_vehicle_energy_for_assignment
-- Before an assignment change of vehicle $1 from $3 (meter $2 when one starts, null when the
-- current one ends): queues the vehicle-days whose charging split the change can alter
-- (vehicle_energy_pending; the folder computes them again, readers meanwhile from history).
-- The vehicle's days from $3 on; all its days when it was correlated by the same-id rule until
-- now (its first assignment ends that for every window); and all days of the vehicle named
-- like the meter when that meter fed it by the same-id rule (a meter assigned to anybody feeds
-- its namesake no more). Runs in the change's transaction, before it: the queue and the change
-- are seen together.
WITH same_id AS (
    SELECT candidate.vehicle_id
    FROM (SELECT $1::text AS vehicle_id UNION SELECT $2::text WHERE $2::text IS NOT NULL)
        AS candidate
    WHERE NOT EXISTS (SELECT FROM vehicle_meter_assignments AS a
                      WHERE a.vehicle_id = candidate.vehicle_id)
      AND NOT EXISTS (SELECT FROM vehicle_meter_assignments AS a
                      WHERE a.meter_id = candidate.vehicle_id)
      AND EXISTS (SELECT FROM meter_live WHERE meter_live.meter_id = candidate.vehicle_id)
), affected AS (
    SELECT vehicle_id, '-infinity'::timestamptz AS since FROM same_id
    UNION ALL
    SELECT $1::text, $3::timestamptz
), history AS (
    SELECT least((SELECT min(day) FROM vehicle_rollup_days),
                 (SELECT min(day) FROM meter_rollup_days)) AS first_day,
           greatest((SELECT max(day) FROM vehicle_rollup_days),
                    (SELECT max(day) FROM meter_rollup_days)) + interval '1 day' AS end_day
)
SELECT queue_vehicle_energy(array_agg(vehicles.vehicle_key),
                            array_agg(greatest(affected.since - interval '1 minute',
                                               history.first_day)),
                            array_agg(history.end_day), NULL)
FROM affected
JOIN vehicles ON vehicles.vehicle_id = affected.vehicle_id
CROSS JOIN history
WHERE history.first_day IS NOT NULL;
