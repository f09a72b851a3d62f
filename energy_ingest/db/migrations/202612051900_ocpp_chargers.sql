-- Chargers that speak OCPP: the live status of each connector, and the transactions the engine
-- issues ids for. Both keyed by the charge point's id, so a cluster distributes them by it.

-- One row per connector (connector 0 is the charge point itself): StatusNotification keeps it.
CREATE TABLE charger_connectors (
    charge_point_id text NOT NULL,
    connector_id integer NOT NULL CHECK (connector_id >= 0),
    status text NOT NULL,
    error_code text NOT NULL,
    -- When the charger says the status began (its clock), and when the engine heard of it.
    status_at timestamptz,
    received_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (charge_point_id, connector_id)
);

-- A StopTransaction names only the transaction: the row says which connector's meter its
-- meterStop and transactionData belong to, across engine restarts and between engines.
-- The id is OCPP 1.6's transactionId, an integer on the wire: a sequence of int4 (two billion
-- transactions) rather than bigint, which chargers with a 32-bit field would truncate.
CREATE SEQUENCE charger_transaction_ids AS integer;
CREATE TABLE charger_transactions (
    charge_point_id text NOT NULL,
    transaction_id integer NOT NULL DEFAULT nextval('charger_transaction_ids'),
    connector_id integer NOT NULL CHECK (connector_id >= 1),
    id_tag text NOT NULL,
    meter_start_kwh double precision NOT NULL,
    started_at timestamptz NOT NULL,
    meter_stop_kwh double precision,
    stopped_at timestamptz,
    PRIMARY KEY (charge_point_id, transaction_id)
);
ALTER SEQUENCE charger_transaction_ids OWNED BY charger_transactions.transaction_id;
