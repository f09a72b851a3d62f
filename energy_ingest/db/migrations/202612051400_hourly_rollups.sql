-- Hourly rollups of history, kept per device: what fleet answers read instead of raw readings.
--
-- One row per (device key, UTC hour) with the hour's reading count and exact sums. The writer
-- adds to them in the transaction that stores the readings, from the rows its insert actually
-- stored (RETURNING), so duplicates and conflicts are never counted and an acknowledged reading
-- is in every answer at once. A late reading adds to its own hour, whatever day that is.
-- Assignments are not rolled up: a fleet answer attributes whole hours from meter rollups and
-- the partial hours at assignment or window edges from raw readings, so a retroactive
-- assignment change needs no rewrite here.
--
-- Partitioned by UTC day like history and created/dropped with it (same partition names,
-- `_pYYYYMMDD`), so retention drops a day's rollups with its readings and the tables
-- distribute by device like history. Sums are numeric: each float8 reading becomes the decimal
-- it was sent as and numeric adds exactly, so an hour's sum plus raw edges equals the raw sum.
CREATE TABLE meter_rollups (
    hour            timestamptz NOT NULL,
    kwh_consumed_ac numeric     NOT NULL,
    readings        integer     NOT NULL,
    meter_key       integer     NOT NULL,
    PRIMARY KEY (meter_key, hour)
) PARTITION BY RANGE (hour);

-- battery_temp_sum adds the stored real temperatures as numeric (as the per-vehicle average
-- does); battery_temp is NOT NULL in history, so the average is battery_temp_sum / readings.
CREATE TABLE vehicle_rollups (
    hour             timestamptz NOT NULL,
    kwh_delivered_dc numeric     NOT NULL,
    battery_temp_sum numeric     NOT NULL,
    battery_temp_min real        NOT NULL,
    battery_temp_max real        NOT NULL,
    readings         integer     NOT NULL,
    vehicle_key      integer     NOT NULL,
    PRIMARY KEY (vehicle_key, hour)
) PARTITION BY RANGE (hour);

-- Back-fill: a partition for every day history has, then that day's rollups from its readings.
DO $$
DECLARE
    day_partition record;
    day_start timestamptz;
BEGIN
    FOR day_partition IN
        SELECT child.relname AS partition_name, parent.relname AS parent_name
        FROM pg_inherits
        JOIN pg_class AS parent ON parent.oid = pg_inherits.inhparent
        JOIN pg_class AS child ON child.oid = pg_inherits.inhrelid
        JOIN pg_namespace AS ns ON ns.oid = parent.relnamespace
        WHERE parent.relname IN ('meter_readings', 'vehicle_readings')
          AND ns.nspname = current_schema()
          AND child.relname ~ '_p[0-9]{8}$'
    LOOP
        day_start := to_timestamp(right(day_partition.partition_name, 8) || ' +00', 'YYYYMMDD TZH');
        EXECUTE format(
            'CREATE TABLE IF NOT EXISTS %I PARTITION OF %I FOR VALUES FROM (%L) TO (%L)'
            ' WITH (fillfactor = 70)',
            replace(day_partition.partition_name, '_readings_p', '_rollups_p'),
            replace(day_partition.parent_name, '_readings', '_rollups'),
            day_start, day_start + interval '1 day');
    END LOOP;
END
$$;

INSERT INTO meter_rollups (hour, kwh_consumed_ac, readings, meter_key)
SELECT date_trunc('hour', ts, 'UTC'), sum(kwh_consumed_ac::numeric), count(*), meter_key
FROM meter_readings
GROUP BY meter_key, date_trunc('hour', ts, 'UTC');

INSERT INTO vehicle_rollups (hour, kwh_delivered_dc, battery_temp_sum, battery_temp_min,
                             battery_temp_max, readings, vehicle_key)
SELECT date_trunc('hour', ts, 'UTC'), sum(kwh_delivered_dc::numeric), sum(battery_temp::numeric),
       min(battery_temp), max(battery_temp), count(*), vehicle_key
FROM vehicle_readings
GROUP BY vehicle_key, date_trunc('hour', ts, 'UTC');
