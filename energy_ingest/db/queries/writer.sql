-- Group-commit writer: one transaction per batch of readings from many requests.
-- Every batch is COPYed (binary) into a per-connection staging table, then moved into history
-- and live with set-based statements; nothing on this path runs once per reading.

-- name: create_staging_tables
-- Temporary, so staging costs no WAL; ON COMMIT DELETE ROWS empties them at every commit.
-- Staging carries both the device key (for history) and the id (for live). Values stay double
-- precision here: live keeps exactly what the device sent.
CREATE TEMPORARY TABLE IF NOT EXISTS meter_staging (
    seq             integer          NOT NULL,
    ts              timestamptz      NOT NULL,
    kwh_consumed_ac double precision,
    voltage         double precision NOT NULL,
    kwh_register_ac double precision,
    meter_key       integer          NOT NULL,
    meter_id        text             NOT NULL
) ON COMMIT DELETE ROWS;
CREATE TEMPORARY TABLE IF NOT EXISTS vehicle_staging (
    seq              integer          NOT NULL,
    ts               timestamptz      NOT NULL,
    soc              double precision NOT NULL,
    kwh_delivered_dc double precision,
    battery_temp     double precision NOT NULL,
    kwh_register_dc  double precision,
    vehicle_key      integer          NOT NULL,
    vehicle_id       text             NOT NULL
) ON COMMIT DELETE ROWS;

-- name: register_meters
-- Ids the writer has not cached; sorted so concurrent writers lock in one order. Runs in its
-- own short transaction: a key is harmless even if the batch later fails. NOT EXISTS drops
-- the ids that already exist before the insert: ON CONFLICT alone would still draw an
-- identity value for each of them, and a re-send loop could exhaust the int4 key. ON CONFLICT
-- stays for the race with another writer registering the same new id.
INSERT INTO meters (meter_id)
SELECT new.meter_id FROM unnest($1::text[]) AS new (meter_id)
WHERE NOT EXISTS (SELECT FROM meters AS m WHERE m.meter_id = new.meter_id)
ORDER BY new.meter_id
ON CONFLICT (meter_id) DO NOTHING;

-- name: get_meter_keys
SELECT meter_id AS device_id, meter_key AS device_key
FROM meters
WHERE meter_id = ANY($1::text[]);

-- name: register_vehicles
-- Same as register_meters.
INSERT INTO vehicles (vehicle_id)
SELECT new.vehicle_id FROM unnest($1::text[]) AS new (vehicle_id)
WHERE NOT EXISTS (SELECT FROM vehicles AS v WHERE v.vehicle_id = new.vehicle_id)
ORDER BY new.vehicle_id
ON CONFLICT (vehicle_id) DO NOTHING;

-- name: get_vehicle_keys
SELECT vehicle_id AS device_id, vehicle_key AS device_key
FROM vehicles
WHERE vehicle_id = ANY($1::text[]);

-- name: insert_meter_readings
-- ON CONFLICT DO NOTHING skips retries and conflicts without aborting the batch; they are
-- classified afterwards. ORDER BY the primary key so concurrent batches take index locks in
-- one order and each partition's B-tree is filled left to right.
-- The rollup inbox gets exactly the rows stored (RETURNING): a duplicate or a conflict is never
-- counted, and they commit with the readings. An append to a heap without an index; the folder
-- (writer/rollups.py) adds it up into the rollups later, and readers add it meanwhile.
-- A reading without a register books its interval value whatever its neighbours: it goes to
-- the inbox here. One with a register books what its register chain says: book_meter_registers.
-- The live upsert rides along (one round trip less a batch). Data-modifying CTEs run to
-- completion though nothing reads them.
-- Answers how many rows were stored, and how many of them carry a register.
WITH stored AS (
    INSERT INTO meter_readings (ts, received_at, kwh_consumed_ac, voltage, meter_key,
                                kwh_register_ac)
    SELECT ts, now(), kwh_consumed_ac, voltage, meter_key, kwh_register_ac
    FROM meter_staging
    ORDER BY meter_key, ts
    ON CONFLICT (meter_key, ts) DO NOTHING
    RETURNING meter_key, ts, kwh_consumed_ac, kwh_register_ac
), inboxed AS (
    INSERT INTO meter_rollup_inbox (ts, kwh_consumed_ac, meter_key)
    SELECT ts, kwh_consumed_ac, meter_key FROM stored WHERE kwh_register_ac IS NULL
), live AS (
    -- The live state moves with the rows stored, as the device sent them (staging's doubles):
    -- a duplicate or a conflict changes nothing. DISTINCT ON keeps each meter's newest stored
    -- reading of the batch; ORDER BY meter_id makes concurrent batches lock live rows in one
    -- order, after their history rows (the sort takes all of `stored` first), so they cannot
    -- deadlock. The WHERE clause lets the live state only move forward in time: a late reading
    -- never replaces a newer one.
    INSERT INTO meter_live (ts, received_at, kwh_consumed_ac, voltage, meter_id, kwh_register_ac)
    SELECT DISTINCT ON (s.meter_id) s.ts, now(), s.kwh_consumed_ac, s.voltage, s.meter_id,
           s.kwh_register_ac
    FROM meter_staging AS s
    JOIN stored USING (meter_key, ts)
    ORDER BY s.meter_id, s.ts DESC
    ON CONFLICT (meter_id) DO UPDATE
    SET ts = EXCLUDED.ts,
        received_at = EXCLUDED.received_at,
        kwh_consumed_ac = EXCLUDED.kwh_consumed_ac,
        voltage = EXCLUDED.voltage,
        kwh_register_ac = EXCLUDED.kwh_register_ac
    WHERE meter_live.ts < EXCLUDED.ts
)
SELECT count(*) AS stored, count(kwh_register_ac) AS registers FROM stored;

-- name: lock_meter_registers
-- One batch at a time books a meter's register readings, and the next statement (a new
-- snapshot) sees every reading committed before it: two batches with neighbouring readings of
-- one meter never both book against a chain that lacks the other's. In key order: no deadlock.
SELECT count(pg_advisory_xact_lock(hashtext('energy_ingest.meter_registers'), meter_key))
FROM (SELECT DISTINCT meter_key FROM meter_staging WHERE kwh_register_ac IS NOT NULL
      ORDER BY meter_key) AS devices;

-- name: book_meter_registers
-- What this batch's register readings book, and what they change in their neighbours' booking
-- (a late reading splits a delta; the reading after a backward step tells a glitch from a
-- reset): the chain around them is booked without and with them (book_readings) and the
-- difference goes to the inbox, the new readings' rows counting 1 reading, corrections 0.
-- Around each meter's new readings: 4 readings before the first and 4 after the last, enough
-- for the booking to settle on both sides (a verdict looks one register reading ahead). The
-- batch's interval-only readings are in the inbox already: part of "without" as well.
-- The common case is settled without that: a meter's one new reading, the newest it has, whose
-- step fits after the two register readings before it (so the previous one was booked as a
-- plain step, whatever came before it, and nothing it booked can change): it books its step.
-- $1: the cap of a meter's power (kW).
WITH own AS (
    -- The register readings this transaction stored (a duplicate or a conflict books nothing).
    SELECT s.meter_key, min(s.ts) AS first_ts, max(s.ts) AS last_ts, count(*) AS readings,
           min(s.kwh_register_ac)::numeric AS register,
           min(s.kwh_consumed_ac)::numeric AS interval_kwh
    FROM meter_staging AS s
    JOIN meter_readings AS h
        ON h.meter_key = s.meter_key AND h.ts = s.ts AND h.xmin = pg_current_xact_id()::xid
    WHERE s.kwh_register_ac IS NOT NULL
    GROUP BY s.meter_key
), quick AS MATERIALIZED (
    SELECT own.meter_key, own.last_ts AS ts,
           CASE WHEN previous.p1_ts IS NULL THEN coalesce(own.interval_kwh, 0)
                ELSE own.register - previous.p1 END AS kwh
    FROM own
    CROSS JOIN LATERAL (
        SELECT (array_agg(last_two.ts ORDER BY last_two.ts DESC))[1] AS p1_ts,
               (array_agg(last_two.reg ORDER BY last_two.ts DESC))[1] AS p1,
               (array_agg(last_two.ts ORDER BY last_two.ts DESC))[2] AS p2_ts,
               (array_agg(last_two.reg ORDER BY last_two.ts DESC))[2] AS p2
        FROM (SELECT h.ts, h.kwh_register_ac::numeric AS reg FROM meter_readings AS h
              WHERE h.meter_key = own.meter_key AND h.ts < own.first_ts
              ORDER BY h.ts DESC LIMIT 2) AS last_two
    ) AS previous
    WHERE own.readings = 1
      AND NOT EXISTS (SELECT FROM meter_readings AS h
                      WHERE h.meter_key = own.meter_key AND h.ts > own.last_ts)
      AND (previous.p1_ts IS NULL
           OR (previous.p1 IS NOT NULL
               AND own.register - previous.p1
                   BETWEEN 0 AND $1 * extract(epoch FROM own.last_ts - previous.p1_ts) / 3600
               AND (previous.p2_ts IS NULL
                    OR previous.p1 - previous.p2
                       BETWEEN 0 AND $1 * extract(epoch FROM previous.p1_ts - previous.p2_ts)
                                     / 3600)))
), span AS (
    SELECT own.meter_key,
           coalesce((SELECT min(ts) FROM (SELECT h.ts FROM meter_readings AS h
                                          WHERE h.meter_key = own.meter_key
                                            AND h.ts < own.first_ts
                                          ORDER BY h.ts DESC LIMIT 4) AS before_first),
                    own.first_ts) AS lo,
           coalesce((SELECT max(ts) FROM (SELECT h.ts FROM meter_readings AS h
                                          WHERE h.meter_key = own.meter_key
                                            AND h.ts > own.last_ts
                                          ORDER BY h.ts LIMIT 4) AS after_last),
                    own.last_ts) AS hi
    FROM own
    WHERE own.meter_key NOT IN (SELECT meter_key FROM quick)
), chain AS MATERIALIZED (
    SELECT span.meter_key, h.ts, h.kwh_consumed_ac, h.kwh_register_ac,
           h.xmin = pg_current_xact_id()::xid AND h.kwh_register_ac IS NOT NULL AS new
    FROM span
    JOIN meter_readings AS h ON h.meter_key = span.meter_key AND h.ts BETWEEN span.lo AND span.hi
), booked AS (
    SELECT per_meter.meter_key, with_new.ts, with_new.kwh
    FROM (SELECT meter_key, array_agg(ts ORDER BY ts) AS ts,
                 array_agg(kwh_consumed_ac ORDER BY ts) AS iv,
                 array_agg(kwh_register_ac ORDER BY ts) AS reg
          FROM chain GROUP BY meter_key) AS per_meter
    CROSS JOIN LATERAL book_readings(per_meter.ts, per_meter.iv, per_meter.reg, $1) AS with_new
), booked_before AS (
    SELECT per_meter.meter_key, without_new.ts, without_new.kwh
    FROM (SELECT meter_key, array_agg(ts ORDER BY ts) AS ts,
                 array_agg(kwh_consumed_ac ORDER BY ts) AS iv,
                 array_agg(kwh_register_ac ORDER BY ts) AS reg
          FROM chain WHERE NOT new GROUP BY meter_key) AS per_meter
    CROSS JOIN LATERAL book_readings(per_meter.ts, per_meter.iv, per_meter.reg, $1)
        AS without_new
)
INSERT INTO meter_rollup_inbox (ts, kwh_consumed_ac, meter_key, readings)
SELECT ts, kwh, meter_key, 1 FROM quick
UNION ALL
SELECT booked.ts, booked.kwh - coalesce(booked_before.kwh, 0), booked.meter_key,
       CASE WHEN chain.new THEN 1 ELSE 0 END
FROM booked
JOIN chain USING (meter_key, ts)
LEFT JOIN booked_before USING (meter_key, ts)
WHERE chain.new OR booked.kwh <> booked_before.kwh;

-- name: insert_vehicle_readings
-- Same shape and reasons as insert_meter_readings. The temperature sums add the stored real
-- (RETURNING gives the row as stored), as the per-vehicle average reads it.
WITH stored AS (
    INSERT INTO vehicle_readings (ts, received_at, kwh_delivered_dc, soc, battery_temp, vehicle_key,
                                  kwh_register_dc)
    SELECT ts, now(), kwh_delivered_dc, sensor_real(soc), sensor_real(battery_temp), vehicle_key,
           kwh_register_dc
    FROM vehicle_staging
    ORDER BY vehicle_key, ts
    ON CONFLICT (vehicle_key, ts) DO NOTHING
    RETURNING vehicle_key, ts, kwh_delivered_dc, battery_temp, kwh_register_dc
), inboxed AS (
    INSERT INTO vehicle_rollup_inbox (ts, kwh_delivered_dc, battery_temp, vehicle_key)
    SELECT ts, kwh_delivered_dc, battery_temp, vehicle_key FROM stored
    WHERE kwh_register_dc IS NULL
), live AS (
    INSERT INTO vehicle_live (ts, received_at, soc, kwh_delivered_dc, battery_temp, vehicle_id,
                              kwh_register_dc)
    SELECT DISTINCT ON (s.vehicle_id) s.ts, now(), s.soc, s.kwh_delivered_dc, s.battery_temp,
           s.vehicle_id, s.kwh_register_dc
    FROM vehicle_staging AS s
    JOIN stored USING (vehicle_key, ts)
    ORDER BY s.vehicle_id, s.ts DESC
    ON CONFLICT (vehicle_id) DO UPDATE
    SET ts = EXCLUDED.ts,
        received_at = EXCLUDED.received_at,
        soc = EXCLUDED.soc,
        kwh_delivered_dc = EXCLUDED.kwh_delivered_dc,
        battery_temp = EXCLUDED.battery_temp,
        kwh_register_dc = EXCLUDED.kwh_register_dc
    WHERE vehicle_live.ts < EXCLUDED.ts
)
SELECT count(*) AS stored, count(kwh_register_dc) AS registers FROM stored;

-- name: lock_vehicle_registers
-- Same as lock_meter_registers.
SELECT count(pg_advisory_xact_lock(hashtext('energy_ingest.vehicle_registers'), vehicle_key))
FROM (SELECT DISTINCT vehicle_key FROM vehicle_staging WHERE kwh_register_dc IS NOT NULL
      ORDER BY vehicle_key) AS devices;

-- name: book_vehicle_registers
-- Same as book_meter_registers; a new reading's row carries its stored temperature, a
-- correction none. $1: the cap of a vehicle's DC power (kW).
WITH own AS (
    SELECT s.vehicle_key, min(s.ts) AS first_ts, max(s.ts) AS last_ts, count(*) AS readings,
           min(s.kwh_register_dc)::numeric AS register,
           min(s.kwh_delivered_dc)::numeric AS interval_kwh,
           min(h.battery_temp) AS battery_temp
    FROM vehicle_staging AS s
    JOIN vehicle_readings AS h
        ON h.vehicle_key = s.vehicle_key AND h.ts = s.ts AND h.xmin = pg_current_xact_id()::xid
    WHERE s.kwh_register_dc IS NOT NULL
    GROUP BY s.vehicle_key
), quick AS MATERIALIZED (
    SELECT own.vehicle_key, own.last_ts AS ts, own.battery_temp,
           CASE WHEN previous.p1_ts IS NULL THEN coalesce(own.interval_kwh, 0)
                ELSE own.register - previous.p1 END AS kwh
    FROM own
    CROSS JOIN LATERAL (
        SELECT (array_agg(last_two.ts ORDER BY last_two.ts DESC))[1] AS p1_ts,
               (array_agg(last_two.reg ORDER BY last_two.ts DESC))[1] AS p1,
               (array_agg(last_two.ts ORDER BY last_two.ts DESC))[2] AS p2_ts,
               (array_agg(last_two.reg ORDER BY last_two.ts DESC))[2] AS p2
        FROM (SELECT h.ts, h.kwh_register_dc::numeric AS reg FROM vehicle_readings AS h
              WHERE h.vehicle_key = own.vehicle_key AND h.ts < own.first_ts
              ORDER BY h.ts DESC LIMIT 2) AS last_two
    ) AS previous
    WHERE own.readings = 1
      AND NOT EXISTS (SELECT FROM vehicle_readings AS h
                      WHERE h.vehicle_key = own.vehicle_key AND h.ts > own.last_ts)
      AND (previous.p1_ts IS NULL
           OR (previous.p1 IS NOT NULL
               AND own.register - previous.p1
                   BETWEEN 0 AND $1 * extract(epoch FROM own.last_ts - previous.p1_ts) / 3600
               AND (previous.p2_ts IS NULL
                    OR previous.p1 - previous.p2
                       BETWEEN 0 AND $1 * extract(epoch FROM previous.p1_ts - previous.p2_ts)
                                     / 3600)))
), span AS (
    SELECT own.vehicle_key,
           coalesce((SELECT min(ts) FROM (SELECT h.ts FROM vehicle_readings AS h
                                          WHERE h.vehicle_key = own.vehicle_key
                                            AND h.ts < own.first_ts
                                          ORDER BY h.ts DESC LIMIT 4) AS before_first),
                    own.first_ts) AS lo,
           coalesce((SELECT max(ts) FROM (SELECT h.ts FROM vehicle_readings AS h
                                          WHERE h.vehicle_key = own.vehicle_key
                                            AND h.ts > own.last_ts
                                          ORDER BY h.ts LIMIT 4) AS after_last),
                    own.last_ts) AS hi
    FROM own
    WHERE own.vehicle_key NOT IN (SELECT vehicle_key FROM quick)
), chain AS MATERIALIZED (
    SELECT span.vehicle_key, h.ts, h.kwh_delivered_dc, h.kwh_register_dc, h.battery_temp,
           h.xmin = pg_current_xact_id()::xid AND h.kwh_register_dc IS NOT NULL AS new
    FROM span
    JOIN vehicle_readings AS h
        ON h.vehicle_key = span.vehicle_key AND h.ts BETWEEN span.lo AND span.hi
), booked AS (
    SELECT per_vehicle.vehicle_key, with_new.ts, with_new.kwh
    FROM (SELECT vehicle_key, array_agg(ts ORDER BY ts) AS ts,
                 array_agg(kwh_delivered_dc ORDER BY ts) AS iv,
                 array_agg(kwh_register_dc ORDER BY ts) AS reg
          FROM chain GROUP BY vehicle_key) AS per_vehicle
    CROSS JOIN LATERAL book_readings(per_vehicle.ts, per_vehicle.iv, per_vehicle.reg, $1)
        AS with_new
), booked_before AS (
    SELECT per_vehicle.vehicle_key, without_new.ts, without_new.kwh
    FROM (SELECT vehicle_key, array_agg(ts ORDER BY ts) AS ts,
                 array_agg(kwh_delivered_dc ORDER BY ts) AS iv,
                 array_agg(kwh_register_dc ORDER BY ts) AS reg
          FROM chain WHERE NOT new GROUP BY vehicle_key) AS per_vehicle
    CROSS JOIN LATERAL book_readings(per_vehicle.ts, per_vehicle.iv, per_vehicle.reg, $1)
        AS without_new
)
INSERT INTO vehicle_rollup_inbox (ts, kwh_delivered_dc, battery_temp, vehicle_key, readings)
SELECT ts, kwh, battery_temp, vehicle_key, 1 FROM quick
UNION ALL
SELECT booked.ts, booked.kwh - coalesce(booked_before.kwh, 0),
       CASE WHEN chain.new THEN chain.battery_temp END, booked.vehicle_key,
       CASE WHEN chain.new THEN 1 ELSE 0 END
FROM booked
JOIN chain USING (vehicle_key, ts)
LEFT JOIN booked_before USING (vehicle_key, ts)
WHERE chain.new OR booked.kwh <> booked_before.kwh;

-- name: classify_skipped_meter_readings
-- Runs only when the insert stored fewer rows than were staged. A row whose xmin is this
-- transaction's is one we just stored; any other match is an earlier reading of the same
-- (meter, timestamp): identical values make the new one a duplicate, different ones a conflict.
-- A new statement sees rows that concurrent batches committed while our insert waited on them.
SELECT s.seq,
       (h.kwh_consumed_ac IS NOT DISTINCT FROM s.kwh_consumed_ac AND h.voltage = s.voltage
        AND h.kwh_register_ac IS NOT DISTINCT FROM s.kwh_register_ac) AS identical
FROM meter_staging AS s
JOIN meter_readings AS h ON h.meter_key = s.meter_key AND h.ts = s.ts
WHERE h.xmin <> pg_current_xact_id()::xid;

-- name: classify_skipped_vehicle_readings
-- Same reasoning as classify_skipped_meter_readings. History keeps soc and battery_temp as
-- real, so the re-sent values are compared as real too (31.2 is not 31.2::real as a double).
-- Same-shape with insert_vehicle_readings: both go through sensor_real.
SELECT s.seq,
       (h.soc = sensor_real(s.soc)
        AND h.kwh_delivered_dc IS NOT DISTINCT FROM s.kwh_delivered_dc
        AND h.battery_temp = sensor_real(s.battery_temp)
        AND h.kwh_register_dc IS NOT DISTINCT FROM s.kwh_register_dc) AS identical
FROM vehicle_staging AS s
JOIN vehicle_readings AS h ON h.vehicle_key = s.vehicle_key AND h.ts = s.ts
WHERE h.xmin <> pg_current_xact_id()::xid;
