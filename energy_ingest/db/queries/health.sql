-- Readiness probe.

-- name: check_database
SELECT 1;
