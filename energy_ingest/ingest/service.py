"""Validate readings, hand them to the group-commit writer, build the seed-compatible answers."""

from __future__ import annotations

import asyncio
import heapq
import time
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from energy_ingest.auth.guard import Principal
from energy_ingest.errors import (
    Conflict,
    FieldProblem,
    Forbidden,
    PayloadTooLarge,
    ValidationFailed,
)
from energy_ingest.ingest.decoding import PlainDecoder
from energy_ingest.ingest.schemas import Limits, MeterReading, VehicleReading, validate_reading
from energy_ingest.readings import DeviceKind, Outcome, Reading, kind_of
from energy_ingest.telemetry.metrics import EngineMetrics
from energy_ingest.wire import format_timestamp
from energy_ingest.writer import ReadingWriter

ReadingModel = type[MeterReading] | type[VehicleReading]

MAX_REPORTED_ERRORS = 1_000
MAX_REPORTED_PROBLEMS = 1_000
"""A batch answer lists failed items up to either bound; `errorsOmitted` counts the rest."""
# A batch of readings holds one '[' and, per reading, one '{' and up to five ',' (six with a
# decimal comma in its timestamp): sixteen per reading is far beyond any batch of readings.
_STRUCTURE_BYTES_PER_ITEM = 16
# Validation gives the event loop a turn every 512 items, or sooner once 2 ms have passed.
_CLOCK_EVERY_ITEMS = 32
_YIELD_EVERY_ITEMS = 512
_YIELD_AFTER_SECONDS = 0.002
_ID_FIELDS = (
    ("meterId", DeviceKind.METER, MeterReading),
    ("vehicleId", DeviceKind.VEHICLE, VehicleReading),
)


def _id_field(reading: Reading) -> str:
    return kind_of(reading).id_field


def _kind(reading: Reading) -> DeviceKind:
    return kind_of(reading).kind


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
        self._plain = PlainDecoder(limits)

    def check_batch_body(self, body: bytes) -> None:
        """413 for a batch body holding far more JSON values than max_batch_items readings can,
        before it is parsed: a few MiB of `[]` or `0,` take the parser seconds and memory."""
        budget = _STRUCTURE_BYTES_PER_ITEM * (self._max_batch_items + 1)
        count = body.count(b"[") + body.count(b"{") + body.count(b",")
        if count > budget:
            raise PayloadTooLarge(
                f"the body holds more JSON values than {self._max_batch_items} readings can"
                f" ({count} of '[', '{{' and ','; a batch of readings has at most {budget})"
            )

    async def ingest_one(
        self, item: Any, model: ReadingModel | None, principal: Principal
    ) -> tuple[int, dict[str, Any]]:
        """One reading → (status code, body): 201 stored, 200 duplicate; 403/409/422 raised."""
        foreign = _foreign_device(item, model, principal)
        if foreign is not None:
            raise Forbidden(f"this key may only access {principal.bound_to()}")
        checked = validate_reading(item, self._limits, model)
        if isinstance(checked, list):
            self._count_rejected(checked)
            raise ValidationFailed(checked)
        return await self._store_one(checked, principal)

    def decode_one(self, body: bytes, model: ReadingModel) -> Reading | None:
        """The reading of a body holding one plainly valid reading of `model`'s kind, decoded
        and validated in one step; None for any other body (parse it, then `ingest_one`)."""
        return self._plain.one(body, model, datetime.now(UTC))

    async def ingest_decoded_one(
        self, reading: Reading, principal: Principal
    ) -> tuple[int, dict[str, Any]]:
        """`ingest_one` of a reading `decode_one` accepted: the same checks, in the same order."""
        if principal.device_id is not None and not principal.may_access(_kind(reading), reading[0]):
            raise Forbidden(f"this key may only access {principal.bound_to()}")
        return await self._store_one(reading, principal)

    async def _store_one(
        self, checked: Reading, principal: Principal
    ) -> tuple[int, dict[str, Any]]:
        kind = _kind(checked)
        principal.require_device(kind, checked.device_id)
        if principal.device_id is not None and principal.device_kind is None:
            await principal.bind_kind([kind])  # kind-less (older) keys: first write's kind
        (outcome,) = await self._writer.write([checked], quota_key=principal.key_id)
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
        that is a compromised or misconfigured device, not a bad reading. It is decided on the
        raw items, before anything is validated, so such a batch costs a pass over its ids.
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
        if principal.device_id is not None:
            for index, item in enumerate(items):
                if _foreign_device(item, model, principal) is not None:
                    raise Forbidden(
                        f"item {index}: this key may only access {principal.bound_to()};"
                        " nothing in the batch was stored"
                    )
        # Refused before any validation if it cannot fit: under a flood, validating doomed
        # batches would take the CPU the writer needs to commit.
        self._writer.check_capacity(len(items))
        now = datetime.now(UTC)
        valid: list[Reading] = []
        positions: list[int] = []
        invalid: list[tuple[int, list[FieldProblem]]] = []
        turn_started = time.perf_counter()
        for index, item in enumerate(items):
            # Validation is synchronous: without these turns the worker's event loop (every
            # other request, /healthz) would wait for a whole batch of 10,000 bad items.
            if (
                index
                and index % _CLOCK_EVERY_ITEMS == 0
                and (
                    index % _YIELD_EVERY_ITEMS == 0
                    or time.perf_counter() - turn_started > _YIELD_AFTER_SECONDS
                )
            ):
                await asyncio.sleep(0)
                turn_started = time.perf_counter()
            checked = validate_reading(item, self._limits, model, now)
            if isinstance(checked, list):
                self._count_rejected(checked)
                invalid.append((index, checked))
            else:
                valid.append(checked)
                positions.append(index)
        return await self._store_batch(len(items), valid, positions, invalid, principal)

    def decode_batch(self, body: bytes, model: ReadingModel) -> list[Reading] | None:
        """The readings of a JSON array of plainly valid readings of `model`'s kind, decoded
        and validated in one step; None for any other body (parse it, then `ingest_batch`)."""
        return self._plain.batch(body, model, datetime.now(UTC))

    async def ingest_decoded_batch(
        self, readings: list[Reading], principal: Principal
    ) -> tuple[int, dict[str, Any]]:
        """`ingest_batch` of readings `decode_batch` accepted: the same checks, in the same
        order, and the same answer (no item can be invalid)."""
        if len(readings) > self._max_batch_items:
            raise PayloadTooLarge(
                f"a batch holds at most {self._max_batch_items} readings;"
                f" this one has {len(readings)}"
            )
        if principal.device_id is not None:
            for index, reading in enumerate(readings):
                if not principal.may_access(_kind(reading), reading[0]):
                    raise Forbidden(
                        f"item {index}: this key may only access {principal.bound_to()};"
                        " nothing in the batch was stored"
                    )
        self._writer.check_capacity(len(readings))
        return await self._store_batch(len(readings), readings, range(len(readings)), [], principal)

    async def _store_batch(
        self,
        total: int,
        valid: list[Reading],
        positions: Sequence[int],
        invalid: list[tuple[int, list[FieldProblem]]],
        principal: Principal,
    ) -> tuple[int, dict[str, Any]]:
        """Write the valid readings of a batch of `total` items; the batch answer."""
        if principal.device_id is not None:
            # Kind-less keys (older ones) take the kind of their first write, one kind only.
            await principal.bind_kind({_kind(reading) for reading in valid})
        outcomes = await self._writer.write(valid, quota_key=principal.key_id)
        # Counted in C: a loop over the outcomes in Python showed in the batch profile.
        stored = outcomes.count(Outcome.STORED)
        duplicates = outcomes.count(Outcome.DUPLICATE)
        conflicts: list[tuple[int, Reading]] = []
        if stored + duplicates < len(outcomes):
            conflicts = [
                (index, reading)
                for index, reading, outcome in zip(positions, valid, outcomes, strict=True)
                if outcome is Outcome.CONFLICT
            ]
        failed = len(invalid) + len(conflicts)
        errors = [
            invalid_error(index, problems) if reading is None else conflict_error(index, reading)
            for index, problems, reading in first_failures(invalid, conflicts)
        ]
        answer = {
            "total": total,
            "successful": stored + duplicates,
            "failed": failed,
            "stored": stored,
            "duplicates": duplicates,
            "errors": errors,
            "errorsOmitted": failed - len(errors),
        }
        # An empty array stores nothing and breaks no rule: 201 with zero counts, as the seed.
        return (201 if stored + duplicates or not total else 422), answer


def _foreign_device(item: Any, model: ReadingModel | None, principal: Principal) -> str | None:
    """The id of another device than the key's that `item` names, read from the raw item."""
    if principal.device_id is None or not isinstance(item, dict):
        return None
    for field, kind, reading_model in _ID_FIELDS:
        if model is not None and model is not reading_model:
            continue
        value = item.get(field)
        if type(value) is str and not principal.may_access(kind, value):
            return value
    return None


def first_failures(
    invalid: list[tuple[int, list[FieldProblem]]], conflicts: list[tuple[int, Reading]]
) -> list[tuple[int, list[FieldProblem], Reading | None]]:
    """The first failures by index, invalid items and conflicts merged: at most
    MAX_REPORTED_ERRORS items and MAX_REPORTED_PROBLEMS problems (a conflict counts one)."""
    merged = heapq.merge(
        ((index, problems, None) for index, problems in invalid),
        ((index, [], reading) for index, reading in conflicts),
        key=lambda failure: failure[0],
    )
    first: list[tuple[int, list[FieldProblem], Reading | None]] = []
    problems = 0
    for failure in merged:
        problems += len(failure[1]) or 1
        if len(first) == MAX_REPORTED_ERRORS or problems > MAX_REPORTED_PROBLEMS:
            break
        first.append(failure)
    return first


def invalid_error(index: int, problems: list[FieldProblem]) -> dict[str, Any]:
    return {
        "index": index,
        "reason": "invalid",
        "message": "; ".join(f"{p.field}: {p.message}" for p in problems),
        "fields": [p.as_json() for p in problems],
    }


def conflict_error(index: int, reading: Reading) -> dict[str, Any]:
    return {
        "index": index,
        "reason": "conflict",
        "message": f"{_id_field(reading)} {reading.device_id} already has a different reading"
        f" at {format_timestamp(reading.timestamp)}; the stored one is kept",
        "fields": [],
    }
