-- Current state of each device: one primary-key lookup, never a history scan.

-- name: get_meter_live
SELECT meter_id, kwh_consumed_ac, voltage, kwh_register_ac, ts, received_at
FROM meter_live
WHERE meter_id = $1;

-- name: get_vehicle_live
SELECT vehicle_id, soc, kwh_delivered_dc, battery_temp, kwh_register_dc, ts, received_at
FROM vehicle_live
WHERE vehicle_id = $1;

-- name: list_silent_devices
-- Devices whose newest reading is older than $1, and devices in an open assignment that have
-- never reported (last_seen null), of the kinds in $2; one page in the order (last_seen, nulls
-- first, kind, device_id), after the cursor ($3: whether there is one; $4, $5, $6: the last
-- row of the previous page, $4 null when that row had never reported), $7 rows.
-- The live tables hold one row per device (20,000 for the fleet) and are read whole: an index
-- on ts would change with every reading and end the HOT updates that keep them small. The
-- assignments' open rows are few of a small table; "no live row" is a primary-key probe.
-- A meter (and a vehicle) has at most one open assignment: open ranges always overlap.
WITH devices AS (
    SELECT 'meter' AS kind, meter_id AS device_id, ts AS last_seen
    FROM meter_live
    WHERE ts < $1 AND 'meter' = ANY ($2::text[])
    UNION ALL
    SELECT 'meter', assignment.meter_id, NULL::timestamptz
    FROM vehicle_meter_assignments AS assignment
    WHERE upper_inf(assignment.during) AND 'meter' = ANY ($2::text[])
      AND NOT EXISTS (SELECT 1 FROM meter_live WHERE meter_live.meter_id = assignment.meter_id)
    UNION ALL
    SELECT 'vehicle', vehicle_id, ts
    FROM vehicle_live
    WHERE ts < $1 AND 'vehicle' = ANY ($2::text[])
    UNION ALL
    SELECT 'vehicle', assignment.vehicle_id, NULL::timestamptz
    FROM vehicle_meter_assignments AS assignment
    WHERE upper_inf(assignment.during) AND 'vehicle' = ANY ($2::text[])
      AND NOT EXISTS (
          SELECT 1 FROM vehicle_live WHERE vehicle_live.vehicle_id = assignment.vehicle_id
      )
)
SELECT kind, device_id, last_seen
FROM devices
WHERE NOT $3::boolean
   OR ($4::timestamptz IS NULL
       AND (last_seen IS NOT NULL OR (kind, device_id) > ($5::text, $6::text)))
   OR last_seen > $4::timestamptz
   OR (last_seen = $4::timestamptz AND (kind, device_id) > ($5::text, $6::text))
ORDER BY last_seen ASC NULLS FIRST, kind, device_id
LIMIT $7;

-- name: list_charger_connectors
-- The connectors of charge point $1 that sent a StatusNotification (OCPP), by connector id: a
-- primary-key range of one charge point's rows.
SELECT connector_id, status, error_code, status_at, received_at
FROM charger_connectors
WHERE charge_point_id = $1
ORDER BY connector_id;

-- name: list_meters_live
-- The newest reading of each meter in $1 (a charger's connectors): primary-key probes. Kept
-- apart from the connectors' statement: on a cluster the two tables are distributed by
-- different ids, and a join of them would not be co-located.
SELECT meter_id, kwh_consumed_ac, voltage, kwh_register_ac, ts, received_at
FROM meter_live
WHERE meter_id = ANY ($1::text[]);
