"""The bench's server-log condensing: access lines counted and dropped, problems kept."""

from __future__ import annotations

import json
from typing import Any

import orjson

from bench.report import condense_log, log_problems


def _entry(logger: str, level: str = "info", message: str = "request") -> dict[str, Any]:
    return {
        "time": "2026-12-05T12:00:00.000+00:00",
        "level": level,
        "logger": logger,
        "message": message,
        "pid": 4242,
    }


def _compact(entry: dict[str, Any]) -> str:
    """As the engine writes it (orjson: no space after the colons)."""
    return orjson.dumps(entry).decode()


def _spaced(entry: dict[str, Any]) -> str:
    """As json.dumps writes it (the engine's fallback encoder)."""
    return json.dumps(entry)


def test_condense_log_drops_and_counts_access_lines_of_both_loggers_in_both_spacings() -> None:
    error = _compact(_entry("energy_ingest.writer", "error", "flush failed"))
    warning = _spaced(_entry("uvicorn.error", "warning", "Invalid HTTP request received."))
    started = _compact(_entry("uvicorn.error", message="Application startup complete."))
    text = "\n".join(
        [
            "===== engine, 1 worker =====",
            started,
            _compact(_entry("energy_ingest.access")),
            _compact(_entry("energy_ingest.access")),
            _spaced(_entry("energy_ingest.access")),
            _compact(_entry("uvicorn.access")),
            error,
            "===== naive =====",
            _spaced(_entry("uvicorn.access")),
            "2026-12-05 12:00:00,000 INFO 4242 energy_ingest.access: GET /healthz 200",
            "2026-12-05 12:00:00,000 INFO 4242 uvicorn.access: 127.0.0.1 GET /healthz 200",
            warning,
            "Traceback (most recent call last):",
        ]
    )

    condensed, access = condense_log(text)

    assert access == {
        "engine, 1 worker: energy_ingest.access": 3,
        "engine, 1 worker: uvicorn.access": 1,
        "naive: uvicorn.access": 2,
        "naive: energy_ingest.access": 1,
    }
    assert condensed.splitlines() == [
        "===== engine, 1 worker =====",
        started,
        error,
        "===== naive =====",
        warning,
        "Traceback (most recent call last):",
    ]
    assert "access" not in condensed


def test_log_problems_finds_json_errors_and_warnings_in_either_spacing() -> None:
    error = _compact(_entry("energy_ingest.writer", "error", "flush failed"))
    warning = _spaced(_entry("uvicorn.error", "warning", "Invalid HTTP request received."))
    critical = _compact(_entry("energy_ingest", "critical", "giving up"))
    text_error = "2026-12-05 12:00:00,000 ERROR 4242 energy_ingest.app: boom"
    text = "\n".join(
        [
            _compact(_entry("uvicorn.error", message="Application startup complete.")),
            _compact(_entry("energy_ingest.access")),
            error,
            warning,
            critical,
            text_error,
            "2026-12-05 12:00:00,000 INFO 4242 energy_ingest.app: started",
        ]
    )

    assert log_problems(text) == [error, warning, critical, text_error]
