"""The group-commit writer: readings of concurrent requests share one transaction per batch."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from contextlib import AbstractAsyncContextManager
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from energy_ingest.config import Settings
    from energy_ingest.db.partitions import PartitionManager
    from energy_ingest.db.pool import Database
    from energy_ingest.readings import Outcome, Reading
    from energy_ingest.telemetry.metrics import EngineMetrics


class ReadingWriter(Protocol):
    """What the API needs of a writer: durable `write`, health, and queue depth.

    The engine has one implementation, GroupCommitWriter over a PostgresSink (built by
    writer/postgres.py::group_commit_writer); the benchmark plugs in the seed's per-reading
    writer through the same interface to compare both behind the same HTTP stack.
    """

    async def write(
        self, readings: Sequence[Reading], *, quota_key: str | None = None
    ) -> list[Outcome]:
        """Resolve once the readings are committed; one outcome per reading, in order.

        `quota_key` (the API key's id; None with authentication off) is charged for the new
        devices among `readings`: past its quota TooManyNewDevices, nothing written.
        """
        ...

    def check_capacity(self, readings: int = 1) -> None:
        """Raise Overloaded at once if `readings` more would not fit, so that a request can be
        refused before its body is read or its items validated (shedding load must cost far
        less than taking it)."""
        ...

    @property
    def running(self) -> bool: ...

    @property
    def queued_readings(self) -> int: ...


WriterFactory = Callable[
    ["Database", "PartitionManager", "Settings", "EngineMetrics"],
    AbstractAsyncContextManager[ReadingWriter],
]
"""Builds the writer inside the app's lifespan; entering it starts it, leaving it drains it."""
