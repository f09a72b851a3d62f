-- History out: `energy-ingest export` streams these through COPY (…) TO STDOUT, so neither the
-- server nor the client ever holds more than a page of rows. asyncpg wraps each block in
-- COPY ( … ) and inlines the arguments, so no block ends with a semicolon.
-- Every row is written the way the API writes a reading: the id, each value as the decimal that
-- was sent, the timestamp in the wire format (wire.format_timestamp: UTC, milliseconds and Z,
-- microseconds only when the reading carried them). The CSV header and the JSON keys are the
-- JSON field names, so an export is a file `energy-ingest import` takes as it is.
-- Order: each device's readings in time order, devices in the order the engine first saw them
-- (the primary key's order): each day's partition is read through its (device, ts) index and
-- the days are merged, so nothing is sorted, whatever the window.
-- The device filter is a literal by the time the server plans the statement (asyncpg inlines
-- the arguments), so with a device the NULL test folds away and the read is one index range.

-- name: set_shortest_float_output
-- float8 and real are written as the shortest decimal that reads back as the same value
-- (PostgreSQL 12+ with extra_float_digits > 0, its default): the decimal a device sent, e.g.
-- 31.2 for a real, never 31.2000007629. Set for the session, whatever the server's own setting.
SET extra_float_digits = 1;

-- name: export_meter_readings_csv
SELECT m.meter_id AS "meterId",
       r.kwh_consumed_ac AS "kwhConsumedAc",
       r.voltage AS "voltage",
       to_char(r.ts AT TIME ZONE 'UTC',
               CASE WHEN extract(microseconds FROM r.ts AT TIME ZONE 'UTC')::bigint % 1000 = 0
                    THEN 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"'
                    ELSE 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"' END) AS "timestamp",
       r.kwh_register_ac AS "kwhRegisterAc"
FROM meter_readings AS r
JOIN meters AS m USING (meter_key)
WHERE r.ts >= $1::timestamptz AND r.ts < $2::timestamptz
  AND ($3::text IS NULL OR m.meter_id = $3::text)
ORDER BY r.meter_key, r.ts

-- name: export_meter_readings_jsonl
-- One JSON object a line, built as text: ids are of A-Z a-z 0-9 . _ : - only and numbers are
-- finite, so nothing needs escaping (in JSON, or in COPY's text format). An energy field the
-- reading did not send (null) is left out, as the device left it out.
SELECT '{"meterId":"' || m.meter_id || '"'
       || coalesce(',"kwhConsumedAc":' || r.kwh_consumed_ac::text, '')
       || coalesce(',"kwhRegisterAc":' || r.kwh_register_ac::text, '')
       || ',"voltage":' || r.voltage::text
       || ',"timestamp":"'
       || to_char(r.ts AT TIME ZONE 'UTC',
                  CASE WHEN extract(microseconds FROM r.ts AT TIME ZONE 'UTC')::bigint % 1000 = 0
                       THEN 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"'
                       ELSE 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"' END)
       || '"}'
FROM meter_readings AS r
JOIN meters AS m USING (meter_key)
WHERE r.ts >= $1::timestamptz AND r.ts < $2::timestamptz
  AND ($3::text IS NULL OR m.meter_id = $3::text)
ORDER BY r.meter_key, r.ts

-- name: export_vehicle_readings_csv
-- soc and battery_temp are real in history: their shortest decimal is the one the device sent
-- (what the API reads back through numeric, for up to 6 significant digits) and, unlike
-- numeric's 6 digits, always reads back as the same real, so a re-import is a duplicate.
SELECT v.vehicle_id AS "vehicleId",
       r.soc AS "soc",
       r.kwh_delivered_dc AS "kwhDeliveredDc",
       r.battery_temp AS "batteryTemp",
       to_char(r.ts AT TIME ZONE 'UTC',
               CASE WHEN extract(microseconds FROM r.ts AT TIME ZONE 'UTC')::bigint % 1000 = 0
                    THEN 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"'
                    ELSE 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"' END) AS "timestamp",
       r.kwh_register_dc AS "kwhRegisterDc"
FROM vehicle_readings AS r
JOIN vehicles AS v USING (vehicle_key)
WHERE r.ts >= $1::timestamptz AND r.ts < $2::timestamptz
  AND ($3::text IS NULL OR v.vehicle_id = $3::text)
ORDER BY r.vehicle_key, r.ts

-- name: export_vehicle_readings_jsonl
-- Same as export_meter_readings_jsonl, with the reals of export_vehicle_readings_csv.
SELECT '{"vehicleId":"' || v.vehicle_id
       || '","soc":' || r.soc::text
       || coalesce(',"kwhDeliveredDc":' || r.kwh_delivered_dc::text, '')
       || coalesce(',"kwhRegisterDc":' || r.kwh_register_dc::text, '')
       || ',"batteryTemp":' || r.battery_temp::text
       || ',"timestamp":"'
       || to_char(r.ts AT TIME ZONE 'UTC',
                  CASE WHEN extract(microseconds FROM r.ts AT TIME ZONE 'UTC')::bigint % 1000 = 0
                       THEN 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"'
                       ELSE 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"' END)
       || '"}'
FROM vehicle_readings AS r
JOIN vehicles AS v USING (vehicle_key)
WHERE r.ts >= $1::timestamptz AND r.ts < $2::timestamptz
  AND ($3::text IS NULL OR v.vehicle_id = $3::text)
ORDER BY r.vehicle_key, r.ts
