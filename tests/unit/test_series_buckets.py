"""The series' buckets: aligned starts, local midnights across DST, the 2,000-bucket limit."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from energy_ingest.analytics.series import MAX_BUCKETS, bucket_window
from energy_ingest.analytics.service import Window
from energy_ingest.errors import ValidationFailed


def utc(year: int, month: int, day: int, hour: int = 0, minute: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=UTC)


def test_a_window_cut_inside_buckets_is_split_at_its_own_start() -> None:
    window = Window(utc(2026, 1, 1, 10, 7), utc(2026, 1, 1, 10, 31))

    buckets = bucket_window(window, "15m", ZoneInfo("UTC"))

    assert buckets.starts == [
        utc(2026, 1, 1, 10, 0),
        utc(2026, 1, 1, 10, 15),
        utc(2026, 1, 1, 10, 30),
    ]
    assert buckets.thresholds == [window.start, utc(2026, 1, 1, 10, 15), utc(2026, 1, 1, 10, 30)]


def test_a_midnight_that_does_not_exist_starts_its_day_at_the_first_real_moment() -> None:
    # Chile moved its clocks from 00:00 to 01:00 on 2026-09-06: that day began at 01:00 -03.
    zone = ZoneInfo("America/Santiago")
    window = Window(utc(2026, 9, 5, 4), utc(2026, 9, 8, 3))

    starts = bucket_window(window, "1d", zone).starts

    assert starts == [utc(2026, 9, 5, 4), utc(2026, 9, 6, 4), utc(2026, 9, 7, 3)]
    assert starts[2] - starts[1] == timedelta(hours=23)


def test_spring_forward_gives_a_23_hour_day() -> None:
    zone = ZoneInfo("Europe/Berlin")  # summer time from 2026-03-29 02:00
    window = Window(utc(2026, 3, 28, 12), utc(2026, 3, 31))

    starts = bucket_window(window, "1d", zone).starts

    assert starts == [
        utc(2026, 3, 27, 23),
        utc(2026, 3, 28, 23),
        utc(2026, 3, 29, 22),
        utc(2026, 3, 30, 22),
    ]
    assert [later - earlier for earlier, later in itertools.pairwise(starts)] == [
        timedelta(hours=24),
        timedelta(hours=23),
        timedelta(hours=24),
    ]


@pytest.mark.parametrize(("step", "minutes"), [("1m", 1), ("5m", 5), ("15m", 15), ("1h", 60)])
def test_at_most_max_buckets(step: str, minutes: int) -> None:
    start = utc(2026, 1, 1)
    fits = Window(start, start + timedelta(minutes=minutes * MAX_BUCKETS))
    beyond = Window(start, fits.end + timedelta(microseconds=1))

    assert len(bucket_window(fits, step, ZoneInfo("UTC")).starts) == MAX_BUCKETS
    with pytest.raises(ValidationFailed) as refused:
        bucket_window(beyond, step, ZoneInfo("UTC"))
    assert [problem.field for problem in refused.value.problems] == ["step"]
