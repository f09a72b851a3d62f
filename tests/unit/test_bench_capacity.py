"""The capacity model computes from the figures it is given, and prints them."""

from __future__ import annotations

import math

import pytest

from bench.capacity import PATHS, Assumptions, Figures, need, report


def _figures(engine: float, postgres: float, broker: float) -> Figures:
    return Figures(
        cpu_per_reading={
            path: {"engine": engine, "postgres": postgres, "broker": broker} for path in PATHS
        },
        bytes_per_reading_open=120.0,
        bytes_per_reading_closed=100.0,
        bytes_per_hourly_row=200.0,
        bytes_per_day_row=1000.0,
        sources=["synthetic figures"],
    )


def test_needs_follow_the_figures() -> None:
    assume = Assumptions(burst_seconds=10, utilization=0.5, cores_per_machine=8)
    figures = _figures(engine=1e-5, postgres=2e-5, broker=1e-6)
    n = need(1_000, "mqtt single", figures, assume)
    assert n.average_readings_per_second == pytest.approx(2_000 / 60)
    assert n.burst_readings_per_second == pytest.approx(200)
    assert n.engine_cores == pytest.approx(200 * 1e-5 / 0.5)
    assert n.postgres_cores == pytest.approx(200 * 2e-5 / 0.5)
    assert n.broker_cores == pytest.approx(200 * 1e-6 / 0.5)
    per_day = 2_000 * 1440 * 100.0 + 2_000 * (24 * 200.0 + 1000.0)
    assert n.disk_per_day_bytes == pytest.approx(per_day)
    assert n.disk_per_year_bytes == pytest.approx(per_day * 365 + 2_000 * 1440 * 20.0)
    # Twice the CPU a reading: twice the cores; ten times the fleet: ten times everything.
    doubled = need(1_000, "mqtt single", _figures(2e-5, 4e-5, 2e-6), assume)
    assert doubled.engine_cores == pytest.approx(2 * n.engine_cores)
    bigger = need(10_000, "mqtt single", figures, assume)
    assert bigger.disk_per_day_bytes == pytest.approx(10 * n.disk_per_day_bytes)
    assert bigger.engine_machines == math.ceil(bigger.engine_cores / 8)


def test_database_nodes_are_enough_for_cores_and_for_disk() -> None:
    assume = Assumptions(cores_per_machine=4, disk_per_node_bytes=1e9)
    n = need(10_000, "http batch", _figures(1e-5, 1e-3, 0.0), assume)
    assert n.database_nodes_for_cpu == math.ceil(n.postgres_cores / 4)
    assert n.database_nodes_for_disk == math.ceil(n.disk_per_year_bytes / 1e9)
    assert n.database_nodes == max(n.database_nodes_for_cpu, n.database_nodes_for_disk)


def test_the_report_names_its_sources_and_every_path() -> None:
    text = report(_figures(1e-5, 2e-5, 1e-6), Assumptions(), [100_000])
    assert "synthetic figures" in text
    for path in PATHS:
        assert f"| 100,000 | {path} |" in text
    assert "| 100,000 |" in text
