"""Energy Ingestion Engine: meter (AC) and vehicle (DC) telemetry, hot/cold storage, efficiency."""

__version__ = "0.1.0"
