"""The bench report: server-log condensing, and the storage targets and rows."""

from __future__ import annotations

import json
from typing import Any

import orjson

from bench.report import bytes_split, condense_log, log_problems, targets


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


def _storage(per_reading: float, heap: float | None = None) -> dict[str, dict[str, float]]:
    figures: dict[str, float] = {
        "readings": 1000,
        "partitions": 1,
        "bytes_per_reading": per_reading,
    }
    if heap is not None:
        figures |= {"heap_bytes_per_reading": heap, "index_bytes_per_reading": per_reading - heap}
    return {"meter_readings": figures, "vehicle_readings": figures}


def test_storage_targets_cover_the_open_day_and_the_register_columns() -> None:
    report = {
        "options": {},
        "engine_storage": _storage(112.7, heap=68.3),
        "registers": {
            "variants": {
                "interval": {"meter_readings": 112.9, "vehicle_readings": 112.9},
                "register": {"meter_readings": 99.0, "vehicle_readings": 113.0},
                "both": {"meter_readings": 121.2, "vehicle_readings": 121.2},
            }
        },
    }
    found = {target: (measured, met) for target, measured, met in targets(report)}
    assert found[
        "≤ 100 B per reading, meter_readings (written by the engine through HTTP, open day)"
    ] == ("112.7 B", False)
    assert found["≤ 100 B per reading, meter_readings (register only, open day)"] == (
        "99.0 B",
        True,
    )
    assert found["≤ 100 B per reading, vehicle_readings (register only, open day)"] == (
        "113.0 B",
        False,
    )
    assert found["≤ 100 B per reading, vehicle_readings (both fields, open day)"] == (
        "121.2 B",
        False,
    )


def test_storage_rows_say_where_the_bytes_go_when_the_report_has_it() -> None:
    assert bytes_split(_storage(112.7, heap=68.3)["meter_readings"]) == " (rows 68.3 + index 44.4)"
    assert bytes_split(_storage(112.7)["meter_readings"]) == ""
