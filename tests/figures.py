"""Figures a test measures (acknowledged readings, 503s, recovery times) and prints at the end.

Reported, never asserted: timings on a shared machine are facts of one run, not thresholds.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest

Figures = dict[str, float | int | str]
RecordFigures = Callable[[Figures], None]

_FIGURES = pytest.StashKey[dict[str, dict[str, Figures]]]()


def _section(nodeid: str) -> str:
    # tests/faults/test_x.py::name → "faults"
    parts = nodeid.split("::", 1)[0].split("/")
    return parts[1] if len(parts) > 2 else parts[0]


@pytest.fixture
def record_figures(
    request: pytest.FixtureRequest, record_property: Callable[[str, object], None]
) -> RecordFigures:
    """Store a test's figures: as junit properties, and for the summary printed at the end."""

    def record(figures: Figures) -> None:
        for name, value in figures.items():
            record_property(name, value)
        sections = request.config.stash.setdefault(_FIGURES, {})
        sections.setdefault(_section(request.node.nodeid), {})[request.node.nodeid] = figures
        print(f"{request.node.name}: {figures}")

    return record


def print_figures(terminalreporter: pytest.TerminalReporter) -> None:
    """The pytest_terminal_summary hook's body: one section per test folder."""
    for section, tests in terminalreporter.config.stash.get(_FIGURES, {}).items():
        terminalreporter.section(f"{section} tests: figures")
        width = max(len(name) for values in tests.values() for name in values) + 1
        for nodeid, values in tests.items():
            terminalreporter.write_line(nodeid.rsplit("::", 1)[-1])
            for name, value in values.items():
                shown = f"{value:.2f}" if isinstance(value, float) else str(value)
                terminalreporter.write_line(f"    {name:<{width}} {shown}")
