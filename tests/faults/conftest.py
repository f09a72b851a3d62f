"""Figures of the fault tests: recorded per test and printed together at the end of the run."""

from __future__ import annotations

from collections.abc import Callable

import pytest

Figures = dict[str, float | int | str]
RecordFigures = Callable[[Figures], None]

_FIGURES = pytest.StashKey[dict[str, Figures]]()


@pytest.fixture
def record_figures(
    request: pytest.FixtureRequest, record_property: Callable[[str, object], None]
) -> RecordFigures:
    """Store a test's figures: as junit properties, and for the summary printed at the end."""

    def record(figures: Figures) -> None:
        for name, value in figures.items():
            record_property(name, value)
        request.config.stash.setdefault(_FIGURES, {})[request.node.nodeid] = figures
        print(f"{request.node.name}: {figures}")

    return record


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    figures = terminalreporter.config.stash.get(_FIGURES, {})
    if not figures:
        return
    terminalreporter.section("fault tests: figures")
    for nodeid, values in figures.items():
        terminalreporter.write_line(nodeid.rsplit("::", 1)[-1])
        for name, value in values.items():
            shown = f"{value:.2f}" if isinstance(value, float) else str(value)
            terminalreporter.write_line(f"    {name:<44} {shown}")
