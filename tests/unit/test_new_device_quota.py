"""The per-key quota of new devices: a token bucket a minute deep."""

from __future__ import annotations

from energy_ingest.writer.quota import NewDeviceQuota


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_a_whole_minute_of_quota_may_come_at_once_then_it_refills_at_its_rate() -> None:
    clock = Clock()
    quota = NewDeviceQuota(60, clock=clock)
    assert quota.take("key", 60) is None
    assert quota.take("key", 1) == 1  # one a second
    assert quota.take("key", 10) == 10
    clock.now += 5
    assert quota.take("key", 5) is None
    assert quota.take("key", 1) == 1


def test_each_key_has_its_own_bucket_and_none_is_one_shared_bucket() -> None:
    quota = NewDeviceQuota(3, clock=Clock())
    assert quota.take("a", 3) is None
    assert quota.take("a", 1) == 20
    assert quota.take("b", 3) is None
    assert quota.take(None, 2) is None
    assert quota.take(None, 2) == 20  # one left: the second comes in 20 s


def test_a_refusal_spends_nothing_and_more_than_a_minute_of_quota_waits_a_minute() -> None:
    quota = NewDeviceQuota(10, clock=Clock())
    assert quota.take("a", 11) == 60
    assert quota.take("a", 10) is None
