-- Current state of each device: one primary-key lookup, never a history scan.

-- name: get_meter_live
SELECT meter_id, kwh_consumed_ac, voltage, ts, received_at
FROM meter_live
WHERE meter_id = $1;

-- name: get_vehicle_live
SELECT vehicle_id, soc, kwh_delivered_dc, battery_temp, ts, received_at
FROM vehicle_live
WHERE vehicle_id = $1;
