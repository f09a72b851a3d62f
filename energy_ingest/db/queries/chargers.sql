-- Chargers speaking OCPP: connector status and transactions. Every statement is a primary-key
-- write or lookup of one charge point's rows.

-- name: upsert_charger_connector
-- $1 charge point, $2 connector, $3 status, $4 error code, $5 when the status began.
-- A status older than the one kept (a charger re-sending its queue after a reconnect) is not
-- applied: the newest status wins whatever order the messages arrive in.
INSERT INTO charger_connectors AS kept (charge_point_id, connector_id, status, error_code, status_at)
VALUES ($1, $2, $3, $4, $5)
ON CONFLICT (charge_point_id, connector_id) DO UPDATE
SET status = excluded.status, error_code = excluded.error_code,
    status_at = excluded.status_at, received_at = now()
WHERE kept.status_at IS NULL OR excluded.status_at IS NULL OR excluded.status_at >= kept.status_at;

-- name: insert_charger_transaction
-- $1 charge point, $2 connector, $3 id tag, $4 register at the start (kWh), $5 start time.
INSERT INTO charger_transactions
    (charge_point_id, connector_id, id_tag, meter_start_kwh, started_at)
VALUES ($1, $2, $3, $4, $5)
RETURNING transaction_id;

-- name: stop_charger_transaction
-- $1 charge point, $2 transaction, $3 register at the stop (kWh), $4 stop time; the connector
-- the transaction ran on, or no row for a transaction this charge point never started here.
-- A repeated stop (the charger retrying after a lost answer) keeps the first stop's values.
UPDATE charger_transactions
SET meter_stop_kwh = coalesce(meter_stop_kwh, $3), stopped_at = coalesce(stopped_at, $4)
WHERE charge_point_id = $1 AND transaction_id = $2
RETURNING connector_id;

