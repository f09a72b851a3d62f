-- Charging against standby, and the data quality, for every vehicle of a fleet answer.
--
-- The per-vehicle answer splits a window's AC into the minutes the vehicle took DC (charging)
-- and the rest (standby), and judges the charging efficiency; a fleet answer must judge every
-- vehicle the same way without reading 14.4 M readings a day. The split is a join of two
-- devices' readings by minute (the vehicle's DC decides whether a minute charges, its feeding
-- meter's AC in that minute is charging or standby), so it cannot be added up by the writer
-- reading by reading like the sums: a vehicle reading arriving after its meter's changes the
-- meter's minute. It is kept per vehicle and hour instead, recomputed from history whenever a
-- reading could change it, by the rollup folder.
--
-- One definition serves every answer: vehicle_energy_readings() says, for each reading of a
-- vehicle and of the meters feeding it, whether its minute charges, which session it belongs
-- to and what the register rules booked; vehicle_energy_hours_of() adds that up per hour. The
-- per-vehicle answer and the sessions endpoint read the readings, the fleet answer reads hours
-- kept in vehicle_energy_hours (and, for the sums every row is judged by, running totals per
-- day in vehicle_rollup_days), recomputing at read time only what the folder has not yet: the
-- hours near readings still in the rollup inbox, and the pending ones.
--
-- Hour-additive by construction: a reading counts in the hour of its own timestamp, whatever
-- the window; a minute's charging state is that of all the vehicle's readings of the minute
-- (the nearest whole UTC minute), also those just outside the window; a charging minute is
-- counted at its first DC reading, a standby minute at its meter's first reading; a session is
-- counted where its first reading lies, and a window counts one more when its first charging
-- reading belongs to a session begun before it.

-- The meters that fed a vehicle over [p_from, p_to), clipped to it, as
-- analytics.service.correlate finds them: its assignments when it was ever assigned one, else
-- the meter of its own id when that meter has reported and feeds nobody by assignment.
CREATE FUNCTION meter_feed(p_vehicle_id text, p_from timestamptz, p_to timestamptz)
RETURNS TABLE (meter_id text, meter_key integer, starts_at timestamptz, ends_at timestamptz)
LANGUAGE sql STABLE PARALLEL SAFE
AS $$
SELECT a.meter_id, m.meter_key,
       greatest(lower(a.during), p_from), least(coalesce(upper(a.during), p_to), p_to)
FROM vehicle_meter_assignments AS a
LEFT JOIN meters AS m ON m.meter_id = a.meter_id
WHERE a.vehicle_id = p_vehicle_id AND a.during && tstzrange(p_from, p_to, '[)')
UNION ALL
SELECT m.meter_id, m.meter_key, p_from, p_to
FROM meters AS m
WHERE m.meter_id = p_vehicle_id
  AND NOT EXISTS (SELECT FROM vehicle_meter_assignments AS a WHERE a.vehicle_id = p_vehicle_id)
  AND NOT EXISTS (SELECT FROM vehicle_meter_assignments AS a WHERE a.meter_id = p_vehicle_id)
  AND EXISTS (SELECT FROM meter_live AS l WHERE l.meter_id = p_vehicle_id)
$$;

-- Every reading in [p_from, p_to) of the vehicle (side 'vehicle') and of the meters feeding it
-- (side 'meter'), as the register rules book it (booked_*_readings, p_*_max_kw their caps),
-- with the charging state of its minute. A minute is the whole UTC minute nearest the
-- reading's timestamp; it charges when the vehicle's readings of that minute book DC > 0. The
-- readings are read from (p_gap_minutes + 2) minutes before the window, so every session
-- running into it is seen from its last charging minute before it, and 30 s after it, so a
-- minute at the window's end is judged by all its readings.
--   first_of_minute: a vehicle reading that is the minute's first with DC > 0 (a charging
--     minute is counted there), or a meter reading that is the minute's first (a standby
--     minute is counted there when the minute does not charge);
--   session, session_start: for a reading that charges (vehicle DC > 0, or meter AC in a
--     charging minute), its session's number and the timestamp of the session's first reading.
--     A session is a run of charging minutes at most p_gap_minutes apart, fed by one meter
--     (the feed at the minute's first DC reading): another meter starts another session.
CREATE FUNCTION vehicle_energy_readings(
    p_vehicle_id text, p_from timestamptz, p_to timestamptz, p_gap_minutes integer,
    p_meter_max_kw double precision, p_vehicle_max_kw double precision
) RETURNS TABLE (
    side text, ts timestamptz, minute timestamptz, kwh numeric, charging boolean,
    first_of_minute boolean, session bigint, session_start timestamptz, meter_id text,
    source text, event text, elapsed_seconds double precision, interval_kwh numeric,
    register_kwh numeric
)
LANGUAGE sql STABLE PARALLEL SAFE
AS $$
WITH bounds AS (
    SELECT p_from - make_interval(mins => p_gap_minutes + 2) AS lo,
           p_to + interval '30 seconds' AS hi
), feed AS MATERIALIZED (
    SELECT feed.*
    FROM bounds CROSS JOIN LATERAL meter_feed(p_vehicle_id, bounds.lo, bounds.hi) AS feed
), vehicle AS MATERIALIZED (
    SELECT booked.*,
           date_bin('1 minute', booked.ts + interval '30 seconds', '2000-01-01 00:00+00') AS minute
    FROM bounds
    JOIN vehicles ON vehicles.vehicle_id = p_vehicle_id
    CROSS JOIN LATERAL booked_vehicle_readings(vehicles.vehicle_key, bounds.lo, bounds.hi,
                                               p_vehicle_max_kw) AS booked
), meter AS MATERIALIZED (
    SELECT booked.*, feed.meter_id,
           date_bin('1 minute', booked.ts + interval '30 seconds', '2000-01-01 00:00+00') AS minute
    FROM feed
    CROSS JOIN LATERAL booked_meter_readings(feed.meter_key, feed.starts_at, feed.ends_at,
                                             p_meter_max_kw) AS booked
    WHERE feed.meter_key IS NOT NULL
), meter_minute AS (
    SELECT meter.minute, min(meter.ts) AS first_ts FROM meter GROUP BY meter.minute
), charging_minute AS (
    SELECT vehicle.minute, min(vehicle.ts) AS first_ts
    FROM vehicle WHERE vehicle.kwh > 0 GROUP BY vehicle.minute
), attributed AS (
    SELECT c.minute, c.first_ts,
           least(c.first_ts, mm.first_ts) AS first_reading,
           (SELECT feed.meter_id FROM feed
            WHERE c.first_ts >= feed.starts_at AND c.first_ts < feed.ends_at
            LIMIT 1) AS meter_id
    FROM charging_minute AS c
    LEFT JOIN meter_minute AS mm ON mm.minute = c.minute
), marked AS (
    SELECT attributed.*,
           CASE WHEN lag(attributed.minute) OVER by_minute IS NULL
                  OR attributed.minute - lag(attributed.minute) OVER by_minute
                     > make_interval(mins => p_gap_minutes + 1)
                  OR attributed.meter_id IS DISTINCT FROM lag(attributed.meter_id) OVER by_minute
                THEN 1 ELSE 0 END AS starts
    FROM attributed
    WINDOW by_minute AS (ORDER BY attributed.minute)
), numbered AS (
    SELECT marked.*, sum(marked.starts) OVER (ORDER BY marked.minute) AS session
    FROM marked
), sessions AS (
    SELECT numbered.*, min(numbered.first_reading) OVER (PARTITION BY numbered.session)
               AS session_start
    FROM numbered
)
SELECT 'vehicle', v.ts, v.minute, v.kwh, s.minute IS NOT NULL,
       v.kwh > 0 AND v.ts = s.first_ts,
       CASE WHEN v.kwh > 0 THEN s.session END, CASE WHEN v.kwh > 0 THEN s.session_start END,
       s.meter_id, v.source, v.event, v.elapsed_seconds, v.interval_kwh, v.register_kwh
FROM vehicle AS v
LEFT JOIN sessions AS s ON s.minute = v.minute
WHERE v.ts >= p_from AND v.ts < p_to
UNION ALL
SELECT 'meter', m.ts, m.minute, m.kwh, s.minute IS NOT NULL,
       m.ts = mm.first_ts, s.session, s.session_start, m.meter_id,
       m.source, m.event, m.elapsed_seconds, m.interval_kwh, m.register_kwh
FROM meter AS m
JOIN meter_minute AS mm ON mm.minute = m.minute
LEFT JOIN sessions AS s ON s.minute = m.minute
WHERE m.ts >= p_from AND m.ts < p_to
$$;

-- vehicle_energy_readings added up per UTC hour (of each reading's own timestamp; the hours at
-- the window's edges only over their part inside it): what vehicle_energy_hours keeps. The
-- AC side's data quality is its meters' readings', the DC side's the vehicle's; a gap is a
-- reading more than p_gap_seconds after the device's previous one (gap minutes: the minutes
-- it missed, one reading a minute). `continues`: the hour's first charging reading belongs to
-- a session begun before the hour (or before p_from). `standby_ac_from` and
-- `charging_minutes_from`: running totals of the two to the hour's end by the minute of each
-- reading's timestamp (element i: minutes i−1 … 59; 61 elements, the last 0), so a part of the
-- hour between whole minutes is one subtraction: what a fleet window to the minute judges its
-- partial hours by. PL/pgSQL, so it is never inlined into
-- the statements that call it for many vehicles (the fleet answer, the folder): its plan is
-- made once per session, and theirs stays small.
CREATE FUNCTION vehicle_energy_hours_of(
    p_vehicle_id text, p_from timestamptz, p_to timestamptz, p_gap_minutes integer,
    p_meter_max_kw double precision, p_vehicle_max_kw double precision,
    p_gap_seconds double precision
) RETURNS TABLE (
    hour timestamptz, charging_ac numeric, charging_dc numeric, charging_minutes integer,
    charging_readings integer, session_starts integer, continues boolean,
    standby_ac numeric, standby_minutes integer,
    ac_interval_readings integer, ac_register_readings integer, ac_gaps integer,
    ac_gap_minutes double precision, ac_resets integer, ac_glitches integer,
    ac_rejected_deltas integer, ac_reconciled_interval numeric, ac_reconciled_register numeric,
    dc_interval_readings integer, dc_register_readings integer, dc_gaps integer,
    dc_gap_minutes double precision, dc_resets integer, dc_glitches integer,
    dc_rejected_deltas integer, dc_reconciled_interval numeric, dc_reconciled_register numeric,
    standby_ac_from numeric[], charging_minutes_from integer[]
)
LANGUAGE plpgsql STABLE PARALLEL SAFE ROWS 24
AS $$
BEGIN
RETURN QUERY
SELECT r.hour,
       coalesce(sum(r.kwh) FILTER (WHERE r.side = 'meter' AND r.charging), 0),
       coalesce(sum(r.kwh) FILTER (WHERE r.side = 'vehicle'), 0),
       (count(*) FILTER (WHERE r.side = 'vehicle' AND r.first_of_minute))::integer,
       (count(*) FILTER (WHERE r.session IS NOT NULL))::integer,
       (count(DISTINCT r.session) FILTER (WHERE r.ts = r.session_start))::integer,
       coalesce((array_agg(r.session_start < greatest(r.hour, p_from) ORDER BY r.ts)
                     FILTER (WHERE r.session IS NOT NULL))[1], false),
       coalesce(sum(r.kwh) FILTER (WHERE r.side = 'meter' AND NOT r.charging), 0),
       (count(*) FILTER (WHERE r.side = 'meter' AND NOT r.charging AND r.first_of_minute))::integer,
       (count(*) FILTER (WHERE r.side = 'meter' AND r.source = 'interval'))::integer,
       (count(*) FILTER (WHERE r.side = 'meter' AND r.source = 'register'))::integer,
       (count(*) FILTER (WHERE r.side = 'meter' AND r.elapsed_seconds > p_gap_seconds))::integer,
       coalesce(sum(r.elapsed_seconds / 60 - 1)
                    FILTER (WHERE r.side = 'meter' AND r.elapsed_seconds > p_gap_seconds), 0),
       (count(*) FILTER (WHERE r.side = 'meter' AND r.event = 'reset'))::integer,
       (count(*) FILTER (WHERE r.side = 'meter' AND r.event = 'glitch'))::integer,
       (count(*) FILTER (WHERE r.side = 'meter' AND r.event = 'rejected'))::integer,
       sum(r.interval_kwh) FILTER (WHERE r.side = 'meter' AND r.register_kwh IS NOT NULL),
       sum(r.register_kwh) FILTER (WHERE r.side = 'meter'),
       (count(*) FILTER (WHERE r.side = 'vehicle' AND r.source = 'interval'))::integer,
       (count(*) FILTER (WHERE r.side = 'vehicle' AND r.source = 'register'))::integer,
       (count(*) FILTER (WHERE r.side = 'vehicle' AND r.elapsed_seconds > p_gap_seconds))::integer,
       coalesce(sum(r.elapsed_seconds / 60 - 1)
                    FILTER (WHERE r.side = 'vehicle' AND r.elapsed_seconds > p_gap_seconds), 0),
       (count(*) FILTER (WHERE r.side = 'vehicle' AND r.event = 'reset'))::integer,
       (count(*) FILTER (WHERE r.side = 'vehicle' AND r.event = 'glitch'))::integer,
       (count(*) FILTER (WHERE r.side = 'vehicle' AND r.event = 'rejected'))::integer,
       sum(r.interval_kwh) FILTER (WHERE r.side = 'vehicle' AND r.register_kwh IS NOT NULL),
       sum(r.register_kwh) FILTER (WHERE r.side = 'vehicle'),
       running_totals(array_agg(r.slot) FILTER (WHERE r.side = 'meter' AND NOT r.charging),
                      array_agg(r.kwh) FILTER (WHERE r.side = 'meter' AND NOT r.charging), 60),
       running_totals(array_agg(r.slot) FILTER (WHERE r.side = 'vehicle' AND r.first_of_minute),
                      array_agg(1::numeric)
                          FILTER (WHERE r.side = 'vehicle' AND r.first_of_minute), 60)::integer[]
FROM (
    SELECT date_bin('1 hour', readings.ts, '2000-01-01 00:00+00') AS hour,
           extract(minute FROM readings.ts AT TIME ZONE 'UTC')::integer AS slot, readings.*
    FROM vehicle_energy_readings(p_vehicle_id, p_from, p_to, p_gap_minutes, p_meter_max_kw,
                                 p_vehicle_max_kw) AS readings
) AS r
GROUP BY r.hour;
END
$$;

-- The vehicles whose hours readings of one side could change, and over which range: p_keys and
-- p_ts are device keys and timestamps of readings (p_side 'meter' or 'vehicle'), new or
-- corrected. A reading changes the booking of the reading before it and of the three after it
-- (booked_*_readings reads three readings of context before a range and one after), the
-- charging state of its minute, and the session starts up to p_gap_minutes + 1 minutes on:
-- per device, from a minute before its previous reading to a minute after the later of its
-- third next reading and p_gap_minutes + 2 minutes on. A meter's range goes to every vehicle
-- it fed over it (by assignment, or the vehicle of its id, whether or not it is usable now:
-- too wide is only more work).
CREATE FUNCTION vehicle_energy_touched(
    p_side text, p_keys integer[], p_ts timestamptz[], p_gap_minutes integer
) RETURNS TABLE (vehicle_key integer, lo timestamptz, hi timestamptz)
LANGUAGE sql STABLE PARALLEL SAFE
AS $$
WITH touch AS (
    SELECT u.device_key, min(u.ts) AS first_ts, max(u.ts) AS last_ts
    FROM unnest(p_keys, p_ts) AS u (device_key, ts)
    GROUP BY u.device_key
), meter_range AS (
    SELECT meters.meter_id,
           coalesce((SELECT r.ts FROM meter_readings AS r
                     WHERE r.meter_key = touch.device_key AND r.ts < touch.first_ts
                     ORDER BY r.ts DESC LIMIT 1), touch.first_ts) - interval '1 minute' AS lo,
           greatest((SELECT max(n.ts) FROM (SELECT r.ts FROM meter_readings AS r
                                            WHERE r.meter_key = touch.device_key
                                              AND r.ts > touch.last_ts
                                            ORDER BY r.ts LIMIT 3) AS n),
                    touch.last_ts + make_interval(mins => p_gap_minutes + 2))
               + interval '1 minute' AS hi
    FROM touch
    JOIN meters ON meters.meter_key = touch.device_key
    WHERE p_side = 'meter'
)
SELECT vehicles.vehicle_key, meter_range.lo, meter_range.hi
FROM meter_range
JOIN vehicle_meter_assignments AS a
    ON a.meter_id = meter_range.meter_id
   AND a.during && tstzrange(meter_range.lo, meter_range.hi, '[)')
JOIN vehicles ON vehicles.vehicle_id = a.vehicle_id
UNION ALL
SELECT vehicles.vehicle_key, meter_range.lo, meter_range.hi
FROM meter_range
JOIN vehicles ON vehicles.vehicle_id = meter_range.meter_id
UNION ALL
SELECT touch.device_key,
       coalesce((SELECT r.ts FROM vehicle_readings AS r
                 WHERE r.vehicle_key = touch.device_key AND r.ts < touch.first_ts
                 ORDER BY r.ts DESC LIMIT 1), touch.first_ts) - interval '1 minute',
       greatest((SELECT max(n.ts) FROM (SELECT r.ts FROM vehicle_readings AS r
                                        WHERE r.vehicle_key = touch.device_key
                                          AND r.ts > touch.last_ts
                                        ORDER BY r.ts LIMIT 3) AS n),
                touch.last_ts + make_interval(mins => p_gap_minutes + 2))
           + interval '1 minute'
FROM touch
WHERE p_side = 'vehicle'
$$;

-- [p_lo, p_hi) cut at UTC midnights: one piece a day (vehicle_energy_pending's rows).
CREATE FUNCTION utc_day_pieces(p_lo timestamptz, p_hi timestamptz)
RETURNS TABLE (day timestamptz, lo timestamptz, hi timestamptz)
LANGUAGE sql IMMUTABLE PARALLEL SAFE
AS $$
SELECT d.day, greatest(p_lo, d.day), least(p_hi, d.day + interval '1 day')
FROM generate_series(date_bin('1 day', p_lo, '2000-01-01 00:00+00'), p_hi, interval '1 day')
    AS d (day)
WHERE d.day < p_hi
$$;

-- Running totals to the end (element i: slots i−1 … p_slots_in − 1, then one 0) of values by
-- slot (0 … p_slots_in − 1): a day's hours (24), an hour's minutes (60).
CREATE FUNCTION running_totals(p_slots integer[], p_values numeric[], p_slots_in integer)
RETURNS numeric[]
LANGUAGE sql IMMUTABLE PARALLEL SAFE
AS $$
SELECT array_agg(coalesce((SELECT sum(u.value) FROM unnest(p_slots, p_values) AS u (slot, value)
                           WHERE u.slot >= i), 0) ORDER BY i)
FROM generate_series(0, p_slots_in) AS i
$$;

-- Two arrays added element by element (day rows' running totals).
CREATE FUNCTION add_arrays(p_a numeric[], p_b numeric[])
RETURNS numeric[]
LANGUAGE sql IMMUTABLE PARALLEL SAFE
AS $$
SELECT array_agg(coalesce(u.a, 0) + coalesce(u.b, 0) ORDER BY u.i)
FROM unnest(p_a, p_b) WITH ORDINALITY AS u (a, b, i)
$$;

-- The hours the folder has computed, one row per (vehicle, UTC hour) with readings, written
-- whole each time (never added to). Partitioned by UTC day like the other rollups, made and
-- dropped with history; fillfactor 70 (the partition DDL) keeps the rewrites HOT.
CREATE TABLE vehicle_energy_hours (
    hour                   timestamptz      NOT NULL,
    charging_ac            numeric          NOT NULL,
    charging_dc            numeric          NOT NULL,
    standby_ac             numeric          NOT NULL,
    ac_gap_minutes         double precision NOT NULL,
    dc_gap_minutes         double precision NOT NULL,
    ac_reconciled_interval numeric,
    ac_reconciled_register numeric,
    dc_reconciled_interval numeric,
    dc_reconciled_register numeric,
    vehicle_key            integer          NOT NULL,
    charging_minutes       integer          NOT NULL,
    charging_readings      integer          NOT NULL,
    session_starts         integer          NOT NULL,
    standby_minutes        integer          NOT NULL,
    ac_interval_readings   integer          NOT NULL,
    ac_register_readings   integer          NOT NULL,
    ac_gaps                integer          NOT NULL,
    ac_resets              integer          NOT NULL,
    ac_glitches            integer          NOT NULL,
    ac_rejected_deltas     integer          NOT NULL,
    dc_interval_readings   integer          NOT NULL,
    dc_register_readings   integer          NOT NULL,
    dc_gaps                integer          NOT NULL,
    dc_resets              integer          NOT NULL,
    dc_glitches            integer          NOT NULL,
    dc_rejected_deltas     integer          NOT NULL,
    continues              boolean          NOT NULL,
    standby_ac_from        numeric[]        NOT NULL,
    charging_minutes_from  integer[]        NOT NULL,
    PRIMARY KEY (vehicle_key, hour)
) PARTITION BY RANGE (hour);

-- What every fleet row is judged by, read for all vehicles at once: the standby AC (charging AC
-- is the rest of the AC, charging DC all the DC) and the charging minutes, as running totals to
-- the day's end in the vehicle's day row, which the fleet answer reads anyway.
ALTER TABLE vehicle_rollup_days
    ADD COLUMN standby_ac numeric[] NOT NULL DEFAULT array_fill(0::numeric, ARRAY[24]),
    ADD COLUMN charging_minutes integer[] NOT NULL DEFAULT array_fill(0, ARRAY[24]);

-- Vehicle-days whose hours the folder must compute again, over [lo, hi): readings folded from
-- the inbox (around them, as far as they can change anything), an assignment changed, or this
-- migration (every day history already holds). `version` grows with every change, so the
-- folder forgets a row only if nothing touched it while it computed. One row a vehicle and
-- day at most: keyed by vehicle like everything that grows with the fleet.
CREATE TABLE vehicle_energy_pending (
    day         timestamptz NOT NULL,
    lo          timestamptz NOT NULL,
    hi          timestamptz NOT NULL,
    version     bigint      NOT NULL DEFAULT 1,
    vehicle_key integer     NOT NULL,
    PRIMARY KEY (vehicle_key, day)
);

-- Queues vehicle-days for the folder (vehicle_energy_pending): each vehicle's [p_lo, p_hi) cut
-- at UTC midnights, merged with what is pending already (the range widened, the version
-- moved on). p_days: the days that have partitions (null: any). Rows in key order, newest day
-- first, as the folder takes them. Answers how many vehicle-days it queued or widened.
CREATE FUNCTION queue_vehicle_energy(
    p_vehicle_keys integer[], p_lo timestamptz[], p_hi timestamptz[], p_days timestamptz[]
) RETURNS integer
LANGUAGE sql VOLATILE
AS $$
WITH queued AS (
    INSERT INTO vehicle_energy_pending AS p (vehicle_key, day, lo, hi)
    SELECT range.vehicle_key, piece.day, min(piece.lo), max(piece.hi)
    FROM unnest(p_vehicle_keys, p_lo, p_hi) AS range (vehicle_key, lo, hi)
    CROSS JOIN LATERAL utc_day_pieces(range.lo, range.hi) AS piece
    WHERE p_days IS NULL OR piece.day = ANY (p_days)
    GROUP BY range.vehicle_key, piece.day
    ORDER BY range.vehicle_key, piece.day DESC
    ON CONFLICT (vehicle_key, day) DO UPDATE
    SET lo = least(p.lo, EXCLUDED.lo), hi = greatest(p.hi, EXCLUDED.hi),
        version = p.version + 1
    RETURNING 1
)
SELECT count(*)::integer FROM queued
$$;

-- Partitions for the days the other rollups have, and every vehicle-day of history pending.
DO $$
DECLARE
    day_partition record;
BEGIN
    FOR day_partition IN
        SELECT child.relname AS partition_name
        FROM pg_inherits
        JOIN pg_class AS parent ON parent.oid = pg_inherits.inhparent
        JOIN pg_class AS child ON child.oid = pg_inherits.inhrelid
        JOIN pg_namespace AS ns ON ns.oid = parent.relnamespace
        WHERE parent.relname = 'vehicle_rollup_days'
          AND ns.nspname = current_schema()
          AND child.relname ~ '_p[0-9]{8}$'
    LOOP
        EXECUTE format(
            'CREATE TABLE IF NOT EXISTS %I PARTITION OF vehicle_energy_hours'
            ' FOR VALUES FROM (%L) TO (%L) WITH (fillfactor = 70)',
            replace(day_partition.partition_name, 'vehicle_rollup_days_p', 'vehicle_energy_hours_p'),
            to_timestamp(right(day_partition.partition_name, 8) || ' +00', 'YYYYMMDD TZH'),
            to_timestamp(right(day_partition.partition_name, 8) || ' +00', 'YYYYMMDD TZH')
                + interval '1 day');
    END LOOP;
END
$$;

-- Every vehicle-day the rollups hold (a vehicle's readings, or a meter's feeding it: the
-- folder's computation finds the meters), from the day rows: one row a vehicle and day.
INSERT INTO vehicle_energy_pending (vehicle_key, day, lo, hi)
SELECT vehicle_key, day, day, day + interval '1 day' FROM vehicle_rollup_days
UNION
SELECT vehicles.vehicle_key, days.day, days.day, days.day + interval '1 day'
FROM meter_rollup_days AS days
JOIN meters ON meters.meter_key = days.meter_key
JOIN vehicle_meter_assignments AS a ON a.meter_id = meters.meter_id
JOIN vehicles ON vehicles.vehicle_id = a.vehicle_id
WHERE a.during && tstzrange(days.day, days.day + interval '1 day', '[)')
ON CONFLICT DO NOTHING;
