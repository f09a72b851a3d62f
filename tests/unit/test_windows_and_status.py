"""Analytics windows and the efficiency status, without a database."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from energy_ingest.analytics.service import classify, resolve_window
from energy_ingest.errors import ValidationFailed
from energy_ingest.wire import format_timestamp

NOW = datetime(2026, 11, 27, 12, 0, tzinfo=UTC)
SPAN = timedelta(days=31)


def test_the_default_window_is_the_24_hours_ending_now() -> None:
    window = resolve_window(None, None, NOW, SPAN)
    assert (window.start, window.end) == (NOW - timedelta(hours=24), NOW)


def test_the_default_window_ends_now_cut_to_whole_milliseconds() -> None:
    # The period is written in milliseconds: the window is exactly what the answer says.
    window = resolve_window(None, None, NOW.replace(microsecond=123_456), SPAN)
    assert window.end == NOW.replace(microsecond=123_000)
    assert format_timestamp(window.end) == "2026-11-27T12:00:00.123Z"
    assert window.end - window.start == timedelta(hours=24)


def test_a_lone_from_or_to_gets_a_24_hour_window() -> None:
    start = NOW - timedelta(days=3)
    assert resolve_window(start, None, NOW, SPAN).end == start + timedelta(hours=24)
    assert resolve_window(None, start, NOW, SPAN).start == start - timedelta(hours=24)


def test_from_must_precede_to() -> None:
    with pytest.raises(ValidationFailed) as raised:
        resolve_window(NOW, NOW, NOW, SPAN)
    assert raised.value.problems[0].field == "from"


def test_the_span_is_limited() -> None:
    with pytest.raises(ValidationFailed) as raised:
        resolve_window(NOW - timedelta(days=32), NOW, NOW, SPAN)
    assert raised.value.problems[0].rule == "max_span"


@pytest.mark.parametrize(
    ("ac", "dc", "points", "expected"),
    [
        (10.0, 9.0, (5, 5), "ok"),
        (10.0, 8.5, (5, 5), "ok"),
        (10.0, 8.4, (5, 5), "underperforming"),
        (10.0, 10.5, (5, 5), "implausible"),
        (0.0, 1.0, (5, 5), "insufficient-data"),
        (10.0, 9.0, (0, 5), "insufficient-data"),
        (10.0, 9.0, (5, 0), "insufficient-data"),
    ],
)
def test_status(ac: float, dc: float, points: tuple[int, int], expected: str) -> None:
    assert classify(Decimal(str(ac)), Decimal(str(dc)), points[0], points[1], 0.85) == expected


def test_timestamps_go_out_as_javascript_does_unless_finer() -> None:
    assert format_timestamp(datetime(2026, 2, 9, 13, 30, tzinfo=UTC)) == "2026-02-09T13:30:00.000Z"
    moment = datetime(2026, 2, 9, 13, 30, 0, 123456, tzinfo=UTC)
    assert format_timestamp(moment) == "2026-02-09T13:30:00.123456Z"


def test_durations_are_read_as_seconds_or_iso_8601(monkeypatch: pytest.MonkeyPatch) -> None:
    from energy_ingest.config import Settings

    monkeypatch.setenv("EIE_MAX_CLOCK_SKEW", "300")
    monkeypatch.setenv("EIE_MAX_BACKFILL", "P7D")
    settings = Settings()
    assert settings.max_clock_skew == timedelta(minutes=5)
    assert settings.max_backfill == timedelta(days=7)
