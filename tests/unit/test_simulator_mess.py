"""The simulator's mess (jitter, retries, late, silence) at its rates, and its determinism."""

from __future__ import annotations

import itertools
from collections import Counter, defaultdict
from datetime import UTC, datetime, timedelta

import orjson
import pytest

from energy_ingest.simulator.fleet import FleetSpec, build_fleet
from energy_ingest.simulator.mess import LATE_MINUTES, SILENCE_MINUTES, MessRates
from energy_ingest.simulator.runner import realtime_start
from energy_ingest.simulator.simulation import FleetSimulation, minute_floor

START = datetime(2026, 11, 20, 6, 0, tzinfo=UTC)


def _deliveries(simulation: FleetSimulation) -> list[tuple[int, bytes]]:
    """(minute delivered, exact JSON bytes) of every reading sent, retries included."""
    return [
        (minute.index, orjson.dumps(reading))
        for minute in simulation
        for reading in [*minute.meters, *minute.vehicles]
    ]


def _minute_of(reading: dict[str, object]) -> datetime:
    stamp = datetime.fromisoformat(str(reading["timestamp"]).replace("Z", "+00:00"))
    return (stamp + timedelta(seconds=30)).replace(second=0, microsecond=0)


def test_the_same_seed_gives_the_same_readings_byte_for_byte() -> None:
    spec = FleetSpec(vehicles=15, faulty_share=0.1, change_share=0.1, seed=42)
    mess = MessRates(jitter=0.5, retry=0.05, late=0.05, silence=0.01)
    first = _deliveries(FleetSimulation(build_fleet(spec, 180), mess, START))
    second = _deliveries(FleetSimulation(build_fleet(spec, 180), mess, START))
    assert first == second
    other = FleetSpec(vehicles=15, faulty_share=0.1, change_share=0.1, seed=43)
    assert _deliveries(FleetSimulation(build_fleet(other, 180), mess, START)) != first


def test_iterating_a_simulation_again_starts_over() -> None:
    simulation = FleetSimulation(build_fleet(FleetSpec(vehicles=5), 60), MessRates(), START)
    assert _deliveries(simulation) == _deliveries(simulation)


def test_the_mess_does_not_change_the_physics() -> None:
    spec = FleetSpec(vehicles=10, seed=5)
    clean = FleetSimulation(build_fleet(spec, 300), MessRates(0, 0, 0, 0, 0), START)
    messy = FleetSimulation(build_fleet(spec, 300), MessRates(0.5, 3, 0.1, 0.1, 0.0), START)
    list(clean)
    list(messy)
    for vehicle_id, truth in clean.truths.items():
        assert messy.truths[vehicle_id].dc_true == truth.dc_true
        assert messy.truths[vehicle_id].ac_true == truth.ac_true


def test_mess_rates_are_roughly_honoured() -> None:
    rates = MessRates(jitter=0.3, max_jitter_seconds=3, retry=0.04, late=0.06, silence=0.05)
    simulation = FleetSimulation(build_fleet(FleetSpec(vehicles=40), 8 * 60), rates, START)
    deliveries = list(simulation)
    counts = simulation.counts
    assert counts.taken == 8 * 60 * len(simulation.fleet.chargers + simulation.fleet.vehicles)
    delivered = counts.unique_delivered
    assert counts.jittered / delivered == pytest.approx(0.3, rel=0.05)
    assert counts.retries / delivered == pytest.approx(0.04, rel=0.1)
    assert counts.late / delivered == pytest.approx(0.06, rel=0.1)
    # Silence comes in outages of 5–60 minutes, so its share varies more than the others'.
    assert counts.lost / counts.taken == pytest.approx(0.05, rel=0.4)

    # What was sent says the same: retries are identical payloads sent twice, late ones
    # arrive after newer readings, jittered ones are off the whole minute by whole seconds.
    sent = Counter(orjson.dumps(r) for m in deliveries for r in [*m.meters, *m.vehicles])
    assert sum(n - 1 for n in sent.values()) == counts.retries
    assert max(sent.values()) == 2
    assert len(sent) == delivered
    late = sum(
        1
        for minute in deliveries[:-1]
        for reading in [*minute.meters, *minute.vehicles]
        if (minute.at - _minute_of(reading)) >= timedelta(minutes=LATE_MINUTES[0])
    )
    assert late > 0.9 * counts.late
    seconds = Counter(
        str(r["timestamp"])[17:23] for m in deliveries for r in [*m.meters, *m.vehicles]
    )
    assert set(seconds) <= {"00.000", "01.000", "02.000", "03.000", "57.000", "58.000", "59.000"}


def test_silent_devices_go_quiet_for_minutes_at_a_time() -> None:
    rates = MessRates(jitter=0.0, retry=0.0, late=0.0, silence=0.05)
    simulation = FleetSimulation(build_fleet(FleetSpec(vehicles=20), 600), rates, START)
    heard: dict[str, list[int]] = defaultdict(list)
    for minute in simulation:
        for reading in minute.vehicles:
            heard[str(reading["vehicleId"])].append(minute.index)
    gaps = [
        later - earlier - 1
        for minutes in heard.values()
        for earlier, later in itertools.pairwise(minutes)
        if later - earlier > 1
    ]
    assert gaps
    assert all(SILENCE_MINUTES[0] <= gap <= 2 * SILENCE_MINUTES[1] for gap in gaps)


def test_late_and_retried_readings_owed_at_the_end_are_flushed_in_a_final_minute() -> None:
    rates = MessRates(retry=0.2, late=0.2, silence=0.0)
    simulation = FleetSimulation(build_fleet(FleetSpec(vehicles=5), 30), rates, START)
    minutes = list(simulation)
    assert [m.final for m in minutes].count(True) == 1
    assert minutes[-1].final
    assert minutes[-1].index == 30
    assert minutes[-1].readings > 0
    assert sum(m.readings for m in minutes) == simulation.counts.deliveries


@pytest.mark.parametrize(("minutes", "speedup"), [(60, 1.0), (60, 60.0), (24 * 60, 1_000.0)])
def test_real_time_never_sends_a_reading_from_the_future(minutes: int, speedup: float) -> None:
    now = datetime(2026, 11, 27, 12, 0, 30, tzinfo=UTC)
    start = minute_floor(realtime_start(now, minutes, speedup))
    assert now - start <= timedelta(minutes=minutes)  # never older than the run
    for index in range(minutes + 1):
        sent_at = now + timedelta(seconds=index * 60 / speedup)
        taken_at = start + timedelta(minutes=index)
        assert taken_at <= sent_at
    # …and it catches up: the last minute is taken within a minute of when it is sent.
    assert now + timedelta(minutes=minutes) / speedup - (
        start + timedelta(minutes=minutes)
    ) < timedelta(minutes=1)


def test_mess_rates_are_checked() -> None:
    with pytest.raises(ValueError, match="retry"):
        MessRates(retry=1.5)
    with pytest.raises(ValueError, match="silence"):
        MessRates(silence=1.0)
    with pytest.raises(ValueError, match="jitter"):
        MessRates(max_jitter_seconds=45)
