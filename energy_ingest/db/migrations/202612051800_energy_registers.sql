-- Registers as well as intervals: a reading may carry the device's cumulative register (kWh
-- since installation) instead of, or as well as, the energy of its interval. Both are stored
-- as sent; the energy a reading books is derived (book_readings below) and kept in the rollups.
--
-- Nullable columns added at the end cost nothing on disk while null (a row with a null gets a
-- null bitmap, which fits in the 24-byte header's padding for up to 8 columns): an interval
-- reading stays the size it was, a register-only reading too (the interval is null instead),
-- a reading with both carries 8 bytes more (12 with the alignment after the int4 key).
ALTER TABLE meter_readings
    ALTER COLUMN kwh_consumed_ac DROP NOT NULL,
    ADD COLUMN kwh_register_ac double precision;
ALTER TABLE vehicle_readings
    ALTER COLUMN kwh_delivered_dc DROP NOT NULL,
    ADD COLUMN kwh_register_dc double precision;

ALTER TABLE meter_live
    ALTER COLUMN kwh_consumed_ac DROP NOT NULL,
    ADD COLUMN kwh_register_ac double precision;
ALTER TABLE vehicle_live
    ALTER COLUMN kwh_delivered_dc DROP NOT NULL,
    ADD COLUMN kwh_register_dc double precision;

-- The inbox becomes a ledger of what readings book: a new reading's row counts 1 reading and
-- books its energy; a register reading also corrects what its neighbours booked before it came
-- (a late reading splits a delta in two, a glitch is recognised once the next reading returns),
-- with rows that count 0 readings. The fold and every reader add `readings`, not rows.
-- A correction carries no battery temperature.
ALTER TABLE meter_rollup_inbox ADD COLUMN readings smallint NOT NULL DEFAULT 1;
ALTER TABLE vehicle_rollup_inbox
    ALTER COLUMN battery_temp DROP NOT NULL,
    ADD COLUMN readings smallint NOT NULL DEFAULT 1;

-- History with the device ids spelled out, registers included.
CREATE OR REPLACE VIEW meter_reading_history AS
SELECT m.meter_id, r.ts, r.kwh_consumed_ac, r.voltage, r.received_at, r.kwh_register_ac
FROM meter_readings AS r
JOIN meters AS m USING (meter_key);

CREATE OR REPLACE VIEW vehicle_reading_history AS
SELECT v.vehicle_id, r.ts, r.soc::numeric::double precision AS soc, r.kwh_delivered_dc,
       r.battery_temp::numeric::double precision AS battery_temp, r.received_at,
       r.kwh_register_dc
FROM vehicle_readings AS r
JOIN vehicles AS v USING (vehicle_key);

-- ---------------------------------------------------------------------------------------------
-- What each reading books. Input: one device's readings (parallel arrays: timestamps, interval
-- values, register values; either value may be null), in any order. Output: one row a reading.
--
-- A reading without a register books its interval value. Registers form a chain of the
-- device's readings that carry one; for a register reading r with predecessors p1, p2 and
-- successor n1 in that chain, and consistent(a, b) meaning 0 <= b − a <= max_kw × the hours
-- between them (what the device could physically deliver):
--   * no p1: r is the register's base; it books its interval value if it has one, else 0;
--   * p1 was a glitch (p1 inconsistent after p2, r consistent after p2): r books r − p2;
--   * r inconsistent after p1 but n1 consistent after p1: r is a glitch (a backward step, or a
--     jump over the cap, that the next reading takes back): it books 0 and changes no base;
--   * r consistent after p1: r books r − p1, however long the gap (nothing is lost);
--   * r below p1 (and not a glitch): a reset; it books 0 and the count goes on from r;
--   * r above p1 by more than the cap (and not a glitch): a rejected delta; it books 0, never
--     the impossible energy, and the count goes on from r.
-- The newest reading has no n1 yet: a backward step there books 0 either way and is called a
-- reset until the next reading tells (a return makes it a glitch: re-derived then).
-- Sums are numeric: each float8 is the decimal it was sent as, so deltas are exact.
-- `event`: null, 'glitch', 'reset' or 'rejected'. `register_kwh`: the booked register delta of a
-- reading that also sent its interval (what reconciliation compares), else null.
-- `elapsed_seconds`: since the device's previous reading of any kind (gaps).
-- ---------------------------------------------------------------------------------------------
CREATE FUNCTION book_readings(
    p_ts timestamptz[], p_interval double precision[], p_register double precision[],
    p_max_kw double precision
) RETURNS TABLE (
    ts timestamptz, kwh numeric, source text, event text, elapsed_seconds double precision,
    interval_kwh numeric, register_kwh numeric
)
LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE
AS $$
DECLARE
    n integer := coalesce(array_length(p_ts, 1), 0);
    i integer;
    reg numeric;
    delta numeric;
    base numeric;          -- the register value the count goes on from
    base_ts timestamptz;
    next_i integer;        -- the chain's next register reading after i
    per_hour numeric := p_max_kw::numeric;
BEGIN
    FOR i IN 1 .. n LOOP
        ts := p_ts[i];
        interval_kwh := p_interval[i]::numeric;
        elapsed_seconds := CASE WHEN i > 1 THEN extract(epoch FROM p_ts[i] - p_ts[i - 1]) END;
        event := NULL;
        register_kwh := NULL;
        IF p_register[i] IS NULL THEN
            kwh := coalesce(interval_kwh, 0);
            source := 'interval';
        ELSIF base IS NULL THEN
            base := p_register[i]::numeric;
            base_ts := p_ts[i];
            kwh := coalesce(interval_kwh, 0);
            source := CASE WHEN interval_kwh IS NULL THEN 'register' ELSE 'interval' END;
        ELSE
            reg := p_register[i]::numeric;
            delta := reg - base;
            source := 'register';
            IF delta >= 0 AND delta <= per_hour * extract(epoch FROM p_ts[i] - base_ts) / 3600 THEN
                kwh := delta;
                register_kwh := CASE WHEN interval_kwh IS NOT NULL THEN delta END;
                base := reg;
                base_ts := p_ts[i];
            ELSE
                kwh := 0;
                next_i := i + 1;
                WHILE next_i <= n AND p_register[next_i] IS NULL LOOP
                    next_i := next_i + 1;
                END LOOP;
                IF next_i <= n
                   AND p_register[next_i]::numeric - base >= 0
                   AND p_register[next_i]::numeric - base
                       <= per_hour * extract(epoch FROM p_ts[next_i] - base_ts) / 3600 THEN
                    -- the next reading takes the step back: a glitch; the base stays
                    event := CASE WHEN delta < 0 THEN 'glitch' ELSE 'rejected' END;
                ELSE
                    event := CASE WHEN delta < 0 THEN 'reset' ELSE 'rejected' END;
                    base := reg;
                    base_ts := p_ts[i];
                END IF;
            END IF;
        END IF;
        RETURN NEXT;
    END LOOP;
END
$$;

-- One meter's readings in [p_from, p_to) as they book: the window's readings with the three
-- before it (where the count of its first reading goes on from) and the one after it (its last
-- reading's n1), each one ordered probe of the (meter_key, ts) primary key.
CREATE FUNCTION booked_meter_readings(
    p_key integer, p_from timestamptz, p_to timestamptz, p_max_kw double precision
) RETURNS TABLE (
    ts timestamptz, kwh numeric, source text, event text, elapsed_seconds double precision,
    interval_kwh numeric, register_kwh numeric
)
LANGUAGE sql STABLE PARALLEL SAFE
AS $$
SELECT booked.*
FROM (
    SELECT array_agg(c.ts ORDER BY c.ts) AS ts, array_agg(c.kwh_consumed_ac ORDER BY c.ts) AS iv,
           array_agg(c.kwh_register_ac ORDER BY c.ts) AS reg
    FROM (
        (SELECT r.ts, r.kwh_consumed_ac, r.kwh_register_ac FROM meter_readings AS r
         WHERE r.meter_key = p_key AND r.ts < p_from ORDER BY r.ts DESC LIMIT 3)
        UNION ALL
        (SELECT r.ts, r.kwh_consumed_ac, r.kwh_register_ac FROM meter_readings AS r
         WHERE r.meter_key = p_key AND r.ts >= p_from AND r.ts < p_to)
        UNION ALL
        (SELECT r.ts, r.kwh_consumed_ac, r.kwh_register_ac FROM meter_readings AS r
         WHERE r.meter_key = p_key AND r.ts >= p_to ORDER BY r.ts LIMIT 1)
    ) AS c
) AS context
CROSS JOIN LATERAL book_readings(context.ts, context.iv, context.reg, p_max_kw) AS booked
WHERE booked.ts >= p_from AND booked.ts < p_to
$$;

CREATE FUNCTION booked_vehicle_readings(
    p_key integer, p_from timestamptz, p_to timestamptz, p_max_kw double precision
) RETURNS TABLE (
    ts timestamptz, kwh numeric, source text, event text, elapsed_seconds double precision,
    interval_kwh numeric, register_kwh numeric
)
LANGUAGE sql STABLE PARALLEL SAFE
AS $$
SELECT booked.*
FROM (
    SELECT array_agg(c.ts ORDER BY c.ts) AS ts, array_agg(c.kwh_delivered_dc ORDER BY c.ts) AS iv,
           array_agg(c.kwh_register_dc ORDER BY c.ts) AS reg
    FROM (
        (SELECT r.ts, r.kwh_delivered_dc, r.kwh_register_dc FROM vehicle_readings AS r
         WHERE r.vehicle_key = p_key AND r.ts < p_from ORDER BY r.ts DESC LIMIT 3)
        UNION ALL
        (SELECT r.ts, r.kwh_delivered_dc, r.kwh_register_dc FROM vehicle_readings AS r
         WHERE r.vehicle_key = p_key AND r.ts >= p_from AND r.ts < p_to)
        UNION ALL
        (SELECT r.ts, r.kwh_delivered_dc, r.kwh_register_dc FROM vehicle_readings AS r
         WHERE r.vehicle_key = p_key AND r.ts >= p_to ORDER BY r.ts LIMIT 1)
    ) AS c
) AS context
CROSS JOIN LATERAL book_readings(context.ts, context.iv, context.reg, p_max_kw) AS booked
WHERE booked.ts >= p_from AND booked.ts < p_to
$$;
