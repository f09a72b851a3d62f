"""OCPP 1.6J central system: chargers' MeterValues become meter readings (see endpoint.py)."""
