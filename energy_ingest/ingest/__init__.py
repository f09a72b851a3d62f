"""Ingestion of meter and vehicle readings: validation, the HTTP endpoints, the answers."""
