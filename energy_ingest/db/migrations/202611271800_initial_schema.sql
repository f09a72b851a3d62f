-- Hot/cold storage of meter (AC) and vehicle (DC) readings, and the vehicle↔meter assignments.

-- btree_gist lets one GiST exclusion constraint mix text equality with range overlap.
CREATE EXTENSION IF NOT EXISTS btree_gist;

-- ---------------------------------------------------------------------------------------------
-- Device dictionaries: history stores a 4-byte key instead of the text id. At 28.8 M readings
-- a day the id is the widest column of the row and of the primary key; the key keeps a
-- reading (row + index entry) under 100 bytes.
-- ---------------------------------------------------------------------------------------------
CREATE TABLE meters (
    meter_key integer GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    meter_id  text    NOT NULL UNIQUE
);

CREATE TABLE vehicles (
    vehicle_key integer GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    vehicle_id  text    NOT NULL UNIQUE
);

-- ---------------------------------------------------------------------------------------------
-- History ("cold"): append-only, one partition per UTC day of the reading's own timestamp.
-- The primary key (device key, ts) is the only index: it de-duplicates retries and serves
-- every per-device time-range scan. Columns are ordered widest first so no alignment padding
-- is wasted. Energy stays double precision (it is billed and summed); state of charge and
-- battery temperature are sensor values with far fewer than real's 6 significant digits.
-- ---------------------------------------------------------------------------------------------
CREATE TABLE meter_readings (
    ts              timestamptz      NOT NULL,
    received_at     timestamptz      NOT NULL,
    kwh_consumed_ac double precision NOT NULL,
    voltage         double precision NOT NULL,
    meter_key       integer          NOT NULL,
    PRIMARY KEY (meter_key, ts)
) PARTITION BY RANGE (ts);

CREATE TABLE vehicle_readings (
    ts               timestamptz      NOT NULL,
    received_at      timestamptz      NOT NULL,
    kwh_delivered_dc double precision NOT NULL,
    soc              real             NOT NULL,
    battery_temp     real             NOT NULL,
    vehicle_key      integer          NOT NULL,
    PRIMARY KEY (vehicle_key, ts)
) PARTITION BY RANGE (ts);

-- Sensor values enter history as real. A value too small for real (|x| < 1e-37, far below
-- any sensor's resolution) is stored as 0 rather than failing its whole batch with underflow.
CREATE FUNCTION sensor_real(value double precision) RETURNS real
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE
RETURN CASE WHEN abs(value) < 1e-37 THEN 0 ELSE value END;

-- What an operator (or an auditor) queries: history with the device ids spelled out.
CREATE VIEW meter_reading_history AS
SELECT m.meter_id, r.ts, r.kwh_consumed_ac, r.voltage, r.received_at
FROM meter_readings AS r
JOIN meters AS m USING (meter_key);

CREATE VIEW vehicle_reading_history AS
SELECT v.vehicle_id, r.ts, r.soc::numeric::double precision AS soc, r.kwh_delivered_dc,
       r.battery_temp::numeric::double precision AS battery_temp, r.received_at
FROM vehicle_readings AS r
JOIN vehicles AS v USING (vehicle_key);

-- ---------------------------------------------------------------------------------------------
-- Live ("hot"): one row per device, updated in place. Only the primary key is indexed and it
-- never changes, so every update can be a HOT update; fillfactor leaves room on each page for
-- the new row version to land beside the old one.
-- ---------------------------------------------------------------------------------------------
CREATE TABLE meter_live (
    ts              timestamptz      NOT NULL,
    received_at     timestamptz      NOT NULL,
    kwh_consumed_ac double precision NOT NULL,
    voltage         double precision NOT NULL,
    meter_id        text             PRIMARY KEY
) WITH (fillfactor = 70, autovacuum_vacuum_scale_factor = 0.05);

CREATE TABLE vehicle_live (
    ts               timestamptz      NOT NULL,
    received_at      timestamptz      NOT NULL,
    soc              double precision NOT NULL,
    kwh_delivered_dc double precision NOT NULL,
    battery_temp     double precision NOT NULL,
    vehicle_id       text             PRIMARY KEY
) WITH (fillfactor = 70, autovacuum_vacuum_scale_factor = 0.05);

-- ---------------------------------------------------------------------------------------------
-- Correlation: which meter fed which vehicle, when. `during` is a half-open [from, to) range;
-- an open upper bound is the current assignment. The two exclusion constraints are the whole
-- rule: a vehicle never has two overlapping assignments, a meter never feeds two vehicles at once.
-- ---------------------------------------------------------------------------------------------
CREATE TABLE vehicle_meter_assignments (
    id         bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    vehicle_id text      NOT NULL,
    meter_id   text      NOT NULL,
    during     tstzrange NOT NULL CHECK (NOT isempty(during) AND lower(during) IS NOT NULL),
    created_at timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT vehicle_has_one_meter_at_a_time
        EXCLUDE USING gist (vehicle_id WITH =, during WITH &&),
    CONSTRAINT meter_feeds_one_vehicle_at_a_time
        EXCLUDE USING gist (meter_id WITH =, during WITH &&)
);
