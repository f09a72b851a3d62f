"""Liveness and readiness probes, the front door and the Prometheus exposition."""
