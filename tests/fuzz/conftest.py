"""The fuzz tests' fixtures, and their figures printed together at the end of the run."""

from __future__ import annotations

import asyncio
import tempfile
from collections.abc import Iterator

import httpx
import pytest
from hypothesis.configuration import set_hypothesis_home_dir

from tests.fuzz.contract import Fuzzer


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
