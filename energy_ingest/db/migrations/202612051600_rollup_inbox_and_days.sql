-- Rollups, second shape: the writer appends to an inbox, a folder moves it into the rollups,
-- and a day level answers a fleet window in one row a device and day.
--
-- Why: upserting the hourly rollups inside every write transaction cost a quarter of ingest
-- throughput (one row update per reading at one reading per device and batch), and a 24-hour
-- fleet answer still read 24 rows a device (240,000 for 10,000 meters), a 7-day one 168.
--
-- The inbox: the writer copies, in the transaction that stores the readings, the rows it stored
-- (RETURNING: duplicates and conflicts never counted) with only what the rollups add up: an
-- append to a heap without an index, about a tenth of what storing the reading costs. The
-- folder (energy_ingest.writer.rollups) moves the inbox into the hourly rollups and the day
-- rows in one transaction, so a reader's snapshot sees every reading either in the inbox or in
-- the rollups, never in both and never in neither: readers add the inbox (the readings of the
-- last second or so) to the rollups, and an acknowledged reading is in every fleet answer at
-- once. Keyed by device like everything else that grows with the fleet.
CREATE TABLE meter_rollup_inbox (
    ts              timestamptz      NOT NULL,
    kwh_consumed_ac double precision NOT NULL,
    meter_key       integer          NOT NULL
);

CREATE TABLE vehicle_rollup_inbox (
    ts               timestamptz      NOT NULL,
    kwh_delivered_dc double precision NOT NULL,
    battery_temp     real             NOT NULL,
    vehicle_key      integer          NOT NULL
);

-- The day level: one row per (device, UTC day) whose arrays hold running totals of the day's
-- hours to its end: element i (1-based) is the sum of hours i−1 … 23, so element 1 is the day's
-- total and hours [a, b) of the day add up to element a+1 minus element b+1 (element 25 is null:
-- nothing). Any window of whole hours is one subtraction a device and day at most: 2 rows a
-- device for 24 hours, 8 for 7 days — and the days inside the window read element 1, the
-- cheapest to reach in an array of variable-width numerics. Kept by the folder with the hourly
-- rows, never by the writer; partitioned by the same UTC days as history (the partition key
-- `day` is the day's UTC midnight) and dropped with it.
CREATE TABLE meter_rollup_days (
    day             timestamptz NOT NULL,
    kwh_consumed_ac numeric[]   NOT NULL,
    readings        integer[]   NOT NULL,
    meter_key       integer     NOT NULL,
    PRIMARY KEY (meter_key, day)
) PARTITION BY RANGE (day);

CREATE TABLE vehicle_rollup_days (
    day              timestamptz NOT NULL,
    kwh_delivered_dc numeric[]   NOT NULL,
    battery_temp_sum numeric[]   NOT NULL,
    readings         integer[]   NOT NULL,
    vehicle_key      integer     NOT NULL,
    PRIMARY KEY (vehicle_key, day)
) PARTITION BY RANGE (day);

-- Back-fill: a day partition for every day the hourly rollups have, then every device-day.
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
        WHERE parent.relname IN ('meter_rollups', 'vehicle_rollups')
          AND ns.nspname = current_schema()
          AND child.relname ~ '_p[0-9]{8}$'
    LOOP
        day_start := to_timestamp(right(day_partition.partition_name, 8) || ' +00', 'YYYYMMDD TZH');
        EXECUTE format(
            'CREATE TABLE IF NOT EXISTS %I PARTITION OF %I FOR VALUES FROM (%L) TO (%L)'
            ' WITH (fillfactor = 70)',
            replace(day_partition.partition_name, '_rollups_p', '_rollup_days_p'),
            replace(day_partition.parent_name, '_rollups', '_rollup_days'),
            day_start, day_start + interval '1 day');
    END LOOP;
END
$$;

INSERT INTO meter_rollup_days (day, kwh_consumed_ac, readings, meter_key)
SELECT day, array_agg(kwh ORDER BY slot), array_agg(readings::integer ORDER BY slot), meter_key
FROM (
    SELECT device.meter_key, device.day, slot,
           sum(coalesce(hours.kwh_consumed_ac, 0)) OVER running AS kwh,
           sum(coalesce(hours.readings, 0)) OVER running AS readings
    FROM (SELECT DISTINCT meter_key, date_bin('1 day', hour, '2000-01-01 00:00+00') AS day
          FROM meter_rollups) AS device
    CROSS JOIN generate_series(0, 23) AS slot
    LEFT JOIN meter_rollups AS hours
        ON hours.meter_key = device.meter_key AND hours.hour = device.day + slot * interval '1 hour'
    WINDOW running AS (PARTITION BY device.meter_key, device.day ORDER BY slot DESC)
) AS slots
GROUP BY meter_key, day;

INSERT INTO vehicle_rollup_days (day, kwh_delivered_dc, battery_temp_sum, readings, vehicle_key)
SELECT day, array_agg(kwh ORDER BY slot), array_agg(temp ORDER BY slot),
       array_agg(readings::integer ORDER BY slot), vehicle_key
FROM (
    SELECT device.vehicle_key, device.day, slot,
           sum(coalesce(hours.kwh_delivered_dc, 0)) OVER running AS kwh,
           sum(coalesce(hours.battery_temp_sum, 0)) OVER running AS temp,
           sum(coalesce(hours.readings, 0)) OVER running AS readings
    FROM (SELECT DISTINCT vehicle_key, date_bin('1 day', hour, '2000-01-01 00:00+00') AS day
          FROM vehicle_rollups) AS device
    CROSS JOIN generate_series(0, 23) AS slot
    LEFT JOIN vehicle_rollups AS hours
        ON hours.vehicle_key = device.vehicle_key
       AND hours.hour = device.day + slot * interval '1 hour'
    WINDOW running AS (PARTITION BY device.vehicle_key, device.day ORDER BY slot DESC)
) AS slots
GROUP BY vehicle_key, day;
