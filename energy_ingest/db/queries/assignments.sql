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
