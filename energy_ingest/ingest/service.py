"""Validate readings, hand them to the group-commit writer, build the seed-compatible answers."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from energy_ingest.auth.guard import Principal
from energy_ingest.auth.keys import DeviceKind
from energy_ingest.errors import (
    Conflict,
    FieldProblem,
    Forbidden,
    PayloadTooLarge,
    ValidationFailed,
)
from energy_ingest.http import format_timestamp
from energy_ingest.ingest.schemas import (
    BatchError,
    BatchResult,
    Limits,
    MeterReading,
    Outcome,
    Reading,
    ValidMeterReading,
    VehicleReading,
    validate_reading,
)
from energy_ingest.telemetry.metrics import EngineMetrics
from energy_ingest.writer import ReadingWriter

ReadingModel = type[MeterReading] | type[VehicleReading]


def _id_field(reading: Reading) -> str:
    return "meterId" if isinstance(reading, ValidMeterReading) else "vehicleId"


def _kind(reading: Reading) -> DeviceKind:
    return DeviceKind.METER if isinstance(reading, ValidMeterReading) else DeviceKind.VEHICLE


class IngestService:
    """The ingest use cases: one reading, or a batch with per-item outcomes."""

    def __init__(
        self,
        writer: ReadingWriter,
        limits: Limits,
        max_batch_items: int,
        metrics: EngineMetrics | None = None,
    ) -> None:
        self._writer = writer
        self._metrics = metrics
        self._limits = limits
        self._max_batch_items = max_batch_items

    async def ingest_one(
        self, item: Any, model: ReadingModel | None, principal: Principal
    ) -> tuple[int, dict[str, Any]]:
        """One reading → (status code, body): 201 stored, 200 duplicate; 403/409/422 raised."""
        checked = validate_reading(item, self._limits, model)
        if isinstance(checked, list):
            self._count_rejected(checked)
            raise ValidationFailed(checked)
        principal.require_device(_kind(checked), checked.device_id)
        (outcome,) = await self._writer.write([checked])
        id_field = _id_field(checked)
        if outcome is Outcome.CONFLICT:
            raise Conflict(
                f"{id_field} {checked.device_id} already has a different reading at "
                f"{format_timestamp(checked.timestamp)}; the stored reading is kept"
            )
        body = {"success": True, id_field: checked.device_id, "status": outcome.value}
        return (201 if outcome is Outcome.STORED else 200), body

    def _count_rejected(self, problems: list[FieldProblem]) -> None:
        if self._metrics is not None:
            self._metrics.rejected.labels(problems[0].rule).inc()

    async def ingest_batch(
        self, items: Any, model: ReadingModel | None, principal: Principal
    ) -> tuple[int, dict[str, Any]]:
        """A JSON array → (201 or 422, summary); valid items are stored even when others fail.

        A device-bound key sending another device's reading gets 403 and nothing is stored:
        that is a compromised or misconfigured device, not a bad reading.
        """
        if not isinstance(items, list):
            raise ValidationFailed(
                [
                    FieldProblem(
                        field="body", rule="type", message="must be a JSON array of readings"
                    )
                ]
            )
        if len(items) > self._max_batch_items:
            raise PayloadTooLarge(
                f"a batch holds at most {self._max_batch_items} readings; this one has {len(items)}"
            )
        # Refused before any validation if it cannot fit: under a flood, validating doomed
        # batches would take the CPU the writer needs to commit.
        self._writer.check_capacity(len(items))
        now = datetime.now(UTC)
        valid: list[Reading] = []
        positions: list[int] = []
        errors: list[BatchError] = []
        for index, item in enumerate(items):
            checked = validate_reading(item, self._limits, model, now)
            if isinstance(checked, list):
                self._count_rejected(checked)
                errors.append(
                    BatchError(
                        index=index,
                        reason="invalid",
                        message="; ".join(f"{p.field}: {p.message}" for p in checked),
                        fields=[p.as_json() for p in checked],
                    )
                )
            else:
                valid.append(checked)
                positions.append(index)
        if principal.device_id is not None:
            for index, reading in zip(positions, valid, strict=True):
                if not principal.may_access(_kind(reading), reading.device_id):
                    raise Forbidden(
                        f"item {index}: this key may only access {principal.bound_to()};"
                        " nothing in the batch was stored"
                    )
        outcomes = await self._writer.write(valid)
        stored = duplicates = 0
        for index, reading, outcome in zip(positions, valid, outcomes, strict=True):
            if outcome is Outcome.STORED:
                stored += 1
            elif outcome is Outcome.DUPLICATE:
                duplicates += 1
            else:
                errors.append(
                    BatchError(
                        index=index,
                        reason="conflict",
                        message=f"{_id_field(reading)} {reading.device_id} already has a"
                        f" different reading at {format_timestamp(reading.timestamp)};"
                        " the stored one is kept",
                    )
                )
        errors.sort(key=lambda error: error.index)
        result = BatchResult(
            total=len(items),
            successful=stored + duplicates,
            failed=len(errors),
            stored=stored,
            duplicates=duplicates,
            errors=errors,
        )
        answer = result.model_dump()
        if not items:
            answer["message"] = "the batch is empty: send at least one reading"
        return (201 if result.successful else 422), answer
