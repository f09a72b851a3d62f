"""The engine's state as the lifespan builds it and the endpoints use it.

Knows no feature: the ingest use cases are reached through `IngestPort`, which the ingest
feature's service provides, so a feature never imports another through this module.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any, Protocol

from energy_ingest.auth.guard import KeyGuard, Principal
from energy_ingest.config import Settings
from energy_ingest.db.partitions import PartitionManager
from energy_ingest.db.pool import Database
from energy_ingest.readings import Reading
from energy_ingest.telemetry.metrics import EngineMetrics
from energy_ingest.writer import ReadingWriter


class IngestPort(Protocol):
    """The ingest use cases (`ingest.service.IngestService`); `model` is one of its request
    models or None, answers are (status code, body)."""

    def check_batch_body(self, body: bytes) -> None: ...

    async def ingest_one(
        self, item: Any, model: Any, principal: Principal
    ) -> tuple[int, dict[str, Any]]: ...

    async def ingest_batch(
        self, items: Any, model: Any, principal: Principal
    ) -> tuple[int, dict[str, Any]]: ...

    # The one-step path of plainly valid bodies of one kind: a decode answers None for any
    # other body, which then goes through `ingest_one` / `ingest_batch`.
    def decode_one(self, body: bytes, model: Any) -> Reading | None: ...

    def decode_batch(self, body: bytes, model: Any) -> list[Reading] | None: ...

    async def ingest_decoded_one(
        self, reading: Reading, principal: Principal
    ) -> tuple[int, dict[str, Any]]: ...

    async def ingest_decoded_batch(
        self, readings: list[Reading], principal: Principal
    ) -> tuple[int, dict[str, Any]]: ...


class MqttPort(Protocol):
    """The MQTT ingest (`ingest.mqtt.MqttIngest`), as /readyz sees it."""

    @property
    def connected(self) -> bool: ...


@dataclass(slots=True)
class EngineState:
    """What the lifespan owns and the endpoints use; lives on `app.state.engine`."""

    settings: Settings
    database: Database
    partitions: PartitionManager
    writer: ReadingWriter
    ingest: IngestPort
    metrics: EngineMetrics
    keys: KeyGuard
    maintenance: asyncio.Task[None] | None = None
    rollup_folder: asyncio.Task[None] | None = None
    mqtt: MqttPort | None = None  # None unless a broker is configured (mqtt_url)

    def maintenance_running(self) -> bool:
        """The partition-maintenance and rollup-fold tasks are alive (they never end on their
        own)."""
        return all(
            task is not None and not task.done() for task in (self.maintenance, self.rollup_folder)
        )
