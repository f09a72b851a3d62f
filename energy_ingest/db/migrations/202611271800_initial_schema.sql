-- Hot/cold storage of meter (AC) and vehicle (DC) readings, and the vehicle↔meter assignments.

-- btree_gist lets one GiST exclusion constraint mix text equality with range overlap.
CREATE EXTENSION IF NOT EXISTS btree_gist;

-- ---------------------------------------------------------------------------------------------
-- History ("cold"): append-only, one partition per UTC day of the reading's own timestamp.
-- The primary key (device, ts) is the only index: it de-duplicates retries and serves every
-- per-device time-range scan. Columns are ordered 8-byte first so no alignment padding is
-- wasted, the variable-length id last.
-- ---------------------------------------------------------------------------------------------
CREATE TABLE meter_readings (
    ts              timestamptz      NOT NULL,
    received_at     timestamptz      NOT NULL,
    kwh_consumed_ac double precision NOT NULL,
    voltage         double precision NOT NULL,
    meter_id        text             NOT NULL,
    PRIMARY KEY (meter_id, ts)
) PARTITION BY RANGE (ts);

CREATE TABLE vehicle_readings (
    ts               timestamptz      NOT NULL,
    received_at      timestamptz      NOT NULL,
    soc              double precision NOT NULL,
    kwh_delivered_dc double precision NOT NULL,
    battery_temp     double precision NOT NULL,
    vehicle_id       text             NOT NULL,
    PRIMARY KEY (vehicle_id, ts)
) PARTITION BY RANGE (ts);

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
