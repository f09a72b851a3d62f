"""The fuzz tests' fixtures, and their figures printed together at the end of the run."""

from __future__ import annotations

import asyncio
import tempfile
from collections.abc import Callable, Iterator

import httpx
import pytest
from hypothesis.configuration import set_hypothesis_home_dir

from tests.fuzz.contract import Fuzzer

Figures = dict[str, float | int | str]
RecordFigures = Callable[[Figures], None]

_FIGURES = pytest.StashKey[dict[str, Figures]]()


@pytest.fixture(scope="session", autouse=True)
def _hypothesis_home() -> Iterator[None]:
    """Hypothesis keeps a cache even without an example database: a folder gone after the run."""
    with tempfile.TemporaryDirectory(prefix="eie-hypothesis-") as folder:
        set_hypothesis_home_dir(folder)
        yield
        set_hypothesis_home_dir(None)


@pytest.fixture
async def fuzzer(client: httpx.AsyncClient) -> Fuzzer:
    """Sends from hypothesis's thread over the test's client, on the test's event loop."""
    return Fuzzer(client, asyncio.get_running_loop())


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
    terminalreporter.section("fuzz tests: figures")
    for nodeid, values in figures.items():
        terminalreporter.write_line(nodeid.rsplit("::", 1)[-1])
        for name, value in values.items():
            shown = f"{value:.2f}" if isinstance(value, float) else str(value)
            terminalreporter.write_line(f"    {name:<52} {shown}")
