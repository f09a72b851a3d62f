"""The simulate and demo commands' options, durations, planning rules, verdicts and demo folder."""

from __future__ import annotations

import os
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from energy_ingest.cli.simulate import simulate
from energy_ingest.simulator.command import RunOptions, SimulationAborted, parse_duration, plan
from energy_ingest.simulator.demo import MARKER, DemoFailed, prepare_folder
from energy_ingest.simulator.detection import (
    Detection,
    Quality,
    Verdict,
    expected_status,
    found_quality,
)
from energy_ingest.simulator.fleet import Charger, FleetSpec, build_fleet, share_count
from energy_ingest.simulator.mess import MessRates
from energy_ingest.simulator.options import FLEET_DEFAULTS, run_options
from energy_ingest.simulator.simulation import VehicleTruth
from energy_ingest.wire import is_device_id

NOW = datetime(2026, 11, 27, 12, 0, 40, tzinfo=UTC)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("24h", timedelta(hours=24)),
        ("90m", timedelta(minutes=90)),
        ("1d12h", timedelta(days=1, hours=12)),
        ("1.5h", timedelta(minutes=90)),
        ("PT2H", timedelta(hours=2)),
    ],
)
def test_durations_are_read_compact_or_iso(text: str, expected: timedelta) -> None:
    assert parse_duration(text) == expected


def test_a_malformed_duration_says_how_to_write_one() -> None:
    with pytest.raises(ValueError, match="like 24h"):
        parse_duration("tomorrow")


def test_backfill_ends_at_the_current_minute() -> None:
    simulation = plan(RunOptions(duration=timedelta(hours=2)), NOW)
    assert simulation.end == NOW.replace(second=0)
    assert simulation.minutes == 120


def test_realtime_starts_in_the_past_by_the_time_the_speedup_saves() -> None:
    simulation = plan(RunOptions(duration=timedelta(hours=1), realtime=True, speedup=60), NOW)
    # 60 simulated minutes take 1 real minute: the clock starts 59 minutes back.
    assert simulation.start == NOW.replace(second=0) - timedelta(minutes=59)


@pytest.mark.parametrize(
    ("options", "message"),
    [
        (RunOptions(duration=timedelta(seconds=20)), "at least one minute"),
        (RunOptions(duration=timedelta(days=30)), "at most 29 days"),
        (RunOptions(duration=timedelta(hours=1), start=NOW - timedelta(minutes=30)), "future"),
        (RunOptions(duration=timedelta(hours=1), start=NOW - timedelta(days=31)), "older"),
    ],
)
def test_runs_the_engine_would_refuse_are_refused_up_front(
    options: RunOptions, message: str
) -> None:
    with pytest.raises(SimulationAborted, match=message):
        plan(options, NOW)


def test_shares_round_but_pick_at_least_one() -> None:
    assert share_count(0.02, 1_000) == 20
    assert share_count(0.02, 20) == 1
    assert share_count(0.0, 20) == 0
    assert share_count(1.0, 7) == 7


def test_device_ids_are_valid_and_distinct() -> None:
    fleet = build_fleet(FleetSpec(vehicles=150, change_share=0.1, prefix="fleet.A"), 60)
    ids = [v.vehicle_id for v in fleet.vehicles] + [c.meter_id for c in fleet.chargers]
    assert len(set(ids)) == len(ids) == 150 + 150 + 15
    assert all(is_device_id(device_id) for device_id in ids)
    assert fleet.vehicles[0].vehicle_id == "fleet.A-v0001"


def _truth(dc: float, ac: float, *, points: int = 10) -> VehicleTruth:
    charger = Charger("m", "ac", 11.0, 0.9, False, 230.0)
    return VehicleTruth(
        "v", False, [charger], dc_sent=dc, ac_sent=ac, vehicle_points=points, meter_points=points
    )


@pytest.mark.parametrize(
    ("dc", "ac", "points", "status"),
    [
        (9.0, 10.0, 10, "ok"),
        (8.0, 10.0, 10, "underperforming"),
        (11.0, 10.0, 10, "implausible"),
        (0.0, 0.0, 10, "insufficient-data"),
        (1.0, 1.0, 0, "insufficient-data"),
    ],
)
def test_expected_status_follows_the_engines_rule(
    dc: float, ac: float, points: int, status: str
) -> None:
    assert expected_status(_truth(dc, ac, points=points), 0.85) == status


def _verdict(vehicle_id: str, *, faulty: bool, status: str, lost: bool = False) -> Verdict:
    return Verdict(
        vehicle_id=vehicle_id,
        meter_ids=("m",),
        faulty=faulty,
        charger_efficiencies=(0.8 if faulty else 0.9,),
        charged=True,
        data_lost=lost,
        expected_status=status,
        status=status,
        efficiency=0.8 if faulty else 0.9,
        energy_ac=10.0,
        energy_dc=9.0,
        average_battery_temp=20.0,
    )


def test_the_confusion_matrix_judges_only_vehicles_whose_data_arrived() -> None:
    detection = Detection(
        verdicts=(
            _verdict("a", faulty=True, status="underperforming"),
            _verdict("b", faulty=True, status="ok"),
            _verdict("c", faulty=False, status="underperforming"),
            _verdict("d", faulty=False, status="ok"),
            _verdict("e", faulty=False, status="underperforming", lost=True),
        ),
        threshold=0.85,
    )
    assert (detection.true_positives, detection.false_negatives) == (1, 1)
    assert (detection.false_positives, detection.true_negatives) == (1, 1)
    assert [v.vehicle_id for v in detection.data_lost] == ["e"]
    assert not detection.exact


def test_the_demo_wipes_its_own_folder(tmp_path: Path) -> None:
    folder = tmp_path / "demo"
    database = prepare_folder(folder)
    assert database == folder / "postgres"
    (folder / "postgres").mkdir()
    (folder / "postgres" / "left-over").write_text("x")
    (folder / MARKER).write_text("999999999 999999998")  # a demo killed hard
    prepare_folder(folder)
    assert not (folder / "postgres").exists()
    assert (folder / MARKER).read_text() == str(os.getpid())


def test_the_demo_refuses_to_wipe_a_folder_that_is_not_a_demo(tmp_path: Path) -> None:
    (tmp_path / "precious.txt").write_text("keep me")
    with pytest.raises(DemoFailed, match="not a demo folder"):
        prepare_folder(tmp_path)
    assert (tmp_path / "precious.txt").exists()


# The commands are invoked without the `energy-ingest` group, whose callback sets up the
# process's logging and environment for real runs.


def test_simulate_needs_one_mode() -> None:
    result = CliRunner().invoke(simulate, [])
    assert result.exit_code == 2
    assert "--backfill SPAN or --realtime" in result.output


def test_simulate_takes_every_option_from_the_environment() -> None:
    env = {
        "EIE_SIM_URL": "http://127.0.0.1:9",  # nothing listens there
        "EIE_SIM_BACKFILL": "2h",
        "EIE_SIM_VEHICLES": "3",
        "EIE_SIM_PREFIX": "env",
    }
    result = CliRunner().invoke(simulate, [], env=env)
    assert result.exit_code == 1
    assert "no ready engine answers at http://127.0.0.1:9" in result.output


def test_simulate_refuses_a_prefix_that_makes_bad_ids() -> None:
    result = CliRunner().invoke(simulate, ["--backfill", "1h", "--prefix", "a b"])
    assert result.exit_code == 2
    assert "--prefix" in result.output


def test_expected_status_judges_charging_minutes_when_the_engine_does() -> None:
    truth = _truth(9.0, 10.5)  # whole window: 0.857, ok
    truth.charging_ac, truth.standby_ac = 10.0, 0.5
    assert expected_status(truth, 0.85) == "ok"
    assert expected_status(truth, 0.85, charging=True) == "ok"
    assert expected_status(truth, 0.91, charging=True) == "underperforming"
    truth.charging_ac = 8.0  # DC booked in minutes whose AC went to standby
    assert expected_status(truth, 0.85, charging=True) == "implausible"


def _answer(**quality: Any) -> dict[str, Any]:
    block = {
        "acSource": "register",
        "dcSource": "interval",
        "gaps": 2,
        "gapMinutes": 17.5,
        "resets": 1,
        "glitches": 3,
        "rejectedDeltas": 1,
        "reconciliationKwh": None,
    }
    return {"dataQuality": {**block, **quality}}


def test_the_engines_data_quality_is_compared_with_what_was_injected() -> None:
    injected = Quality(
        resets=1,
        glitches=3,
        rejected_deltas=1,
        gaps=2,
        gap_minutes=17.5,
        ac_source="register",
        dc_source="interval",
    )
    assert found_quality({"status": "ok"}) is None
    found = found_quality(_answer())
    assert found is not None
    assert injected.differences(found) == ()
    # The engine answers gap minutes to 2 decimals.
    rounded = found_quality(_answer(gapMinutes=17.5 + 0.004))
    assert rounded is not None
    assert injected.differences(rounded) == ()
    wrong = found_quality(
        _answer(glitches=2, gapMinutes=17.51, reconciliationKwh=0.5, dcSource="mixed")
    )
    assert wrong is not None
    assert injected.differences(wrong) == (
        "glitches",
        "gap_minutes",
        "reconciliation_kwh",
        "dc_source",
    )
    # Charging and standby are compared only when the engine splits them.
    split = Quality(charging_ac=10.0, standby_ac=0.25)
    assert split.differences(Quality()) == ()
    assert split.differences(Quality(charging_ac=10.0, standby_ac=0.5)) == ("standby_ac",)
    assert (injected + split).glitches == 3
    assert (injected + split).standby_ac == 0.25


def test_the_energy_options_reach_the_fleet_and_the_mess() -> None:
    options = {
        **FLEET_DEFAULTS,
        "energy_fields": "mixed",
        "register_share": 0.3,
        "reset_rate": 0.01,
        "glitch_rate": 0.02,
        "spike_rate": 0.03,
        "standby": True,
        "gap_seconds": 300.0,
    }
    run = run_options(options, duration=timedelta(hours=1), realtime=False, url="http://x/")
    assert (run.spec.energy_fields, run.spec.register_share, run.spec.standby) == (
        "mixed",
        0.3,
        True,
    )
    assert (run.mess.reset, run.mess.glitch, run.mess.spike) == (0.01, 0.02, 0.03)
    assert plan(run, NOW).gap_seconds == 300.0
    fleet = build_fleet(run.spec, 60)
    fields = {v.fields for v in fleet.vehicles} | {c.fields for c in fleet.chargers}
    assert fields == {"interval", "register", "both"}
    assert all(charger.standby_kw > 0 for charger in fleet.chargers)


def test_simulate_reads_the_energy_options_from_the_environment() -> None:
    env = {
        "EIE_SIM_URL": "http://127.0.0.1:9",
        "EIE_SIM_BACKFILL": "1h",
        "EIE_SIM_ENERGY_FIELDS": "registers",  # not a choice
    }
    result = CliRunner().invoke(simulate, [], env=env)
    assert result.exit_code == 2
    assert "--energy-fields" in result.output
    with pytest.raises(ValueError, match="add up to more than 1"):
        MessRates(reset=0.5, glitch=0.4, spike=0.2)
