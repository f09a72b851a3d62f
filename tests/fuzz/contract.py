"""What every answer and every stored row must satisfy, checked independently of the engine.

The rules are written out again here (not imported from the engine), so a mistake in the
engine's own validation cannot hide itself.
"""

from __future__ import annotations

import asyncio
import json
import math
import re
from collections import Counter
from collections.abc import Coroutine
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

import asyncpg
import httpx
from hypothesis import HealthCheck, settings

from energy_ingest.config import Settings

_DEVICE_ID = re.compile(r"[A-Za-z0-9._:\-]{1,64}")
_SLACK = timedelta(minutes=1)  # between validation and commit (`received_at`)


@dataclass(slots=True)
class Tally:
    """What a fuzz run sent and got back."""

    requests: int = 0
    statuses: Counter[int] = field(default_factory=Counter)
    slash_redirects: int = 0
    batch_refusals: int = 0
    empty_batch_refusals: int = 0

    def figures(self) -> dict[str, float | int | str]:
        shown = ", ".join(f"{code}×{count}" for code, count in sorted(self.statuses.items()))
        return {
            "requests": self.requests,
            "statuses": shown,
            "5xx": sum(n for code, n in self.statuses.items() if code >= 500),
            "422 batch answers (BatchResult shape)": self.batch_refusals,
            "  of which an empty array, no reason given": self.empty_batch_refusals,
            "307 to the path without its trailing '/' (Starlette)": self.slash_redirects,
        }


class Fuzzer:
    """Sends requests on the test's event loop from hypothesis's thread, checks every answer."""

    def __init__(self, client: httpx.AsyncClient, loop: asyncio.AbstractEventLoop) -> None:
        self.client = client
        self.loop = loop
        self.tally = Tally()

    def _run(self, coroutine: Coroutine[Any, Any, httpx.Response]) -> httpx.Response:
        return asyncio.run_coroutine_threadsafe(coroutine, self.loop).result(timeout=60)

    def send(
        self,
        method: str,
        url: str,
        body: bytes | None = None,
        *,
        content_type: str | None = "application/json",
        unroutable: bool = False,
        extra_headers: dict[str, bytes] | None = None,
    ) -> httpx.Response:
        """One request; fails the example unless the answer keeps the contract.

        `unroutable`: the path cannot match a route (an id with a '/', an empty id), where a
        redirect to the path without its trailing '/' is routing, not the engine.
        """
        headers: dict[bytes, bytes] = (
            {b"content-type": content_type.encode()} if content_type and body is not None else {}
        )
        headers.update({name.encode(): value for name, value in (extra_headers or {}).items()})
        self.tally.requests += 1
        try:
            answer = self._run(self.client.request(method, url, content=body, headers=headers))
        except Exception as exc:  # the app raised: a real server answers 500
            self.tally.statuses[500] += 1
            raise AssertionError(f"{method} {url} → the app raised {exc!r}") from exc
        self.tally.statuses[answer.status_code] += 1
        self._check(method, url, body, answer, unroutable)
        return answer

    def _check(
        self, method: str, url: str, sent: bytes | None, answer: httpx.Response, unroutable: bool
    ) -> None:
        where = f"{method} {url[:200]} → {answer.status_code} {answer.text[:300]}"
        assert answer.status_code < 500, where
        if unroutable and answer.status_code == 307 and answer.headers.get("location"):
            self.tally.slash_redirects += 1  # an id ending in '/': routing, not the engine
            return
        assert answer.status_code >= 200, where
        assert answer.status_code not in range(300, 400), where
        assert answer.headers.get("content-type", "").startswith("application/json"), where
        body = json.loads(answer.content)
        if answer.status_code < 400:
            return
        assert isinstance(body, dict), where
        if answer.status_code == 422 and url.startswith("/v1/ingest") and "total" in body:
            # Documented: a batch in which nothing succeeded is answered with its summary.
            self._check_batch_refusal(body, where)
            return
        for name in ("error", "message"):
            assert isinstance(body.get(name), str), where
            assert body[name], where

    def _check_batch_refusal(self, body: dict[str, Any], where: str) -> None:
        self.tally.batch_refusals += 1
        assert body["successful"] == body["stored"] == body["duplicates"] == 0, where
        # The answer lists the first failures and counts the ones it leaves out.
        assert body["failed"] == len(body["errors"]) + body["errorsOmitted"] == body["total"], where
        assert [error["index"] for error in body["errors"]] == list(range(len(body["errors"]))), (
            where
        )
        for error in body["errors"]:
            assert error["reason"] in ("invalid", "conflict"), where
            assert error["message"], where
        if body["total"] == 0:
            self.tally.empty_batch_refusals += 1


def _in_range(value: float, low: float, high: float) -> bool:
    return math.isfinite(value) and low <= value <= high


async def invalid_rows(connection: asyncpg.Connection, settings: Settings) -> list[str]:
    """Every stored row that breaks a validation rule (empty when all is well)."""
    problems: list[str] = []
    kwh = (0.0, settings.max_kwh_per_reading)
    voltage = (settings.min_voltage, settings.max_voltage)
    soc = (settings.min_soc, settings.max_soc)
    temperature = (settings.min_battery_temp, settings.max_battery_temp)
    tables = {
        "meter_reading_history": ("meter_id", {"kwh_consumed_ac": kwh, "voltage": voltage}),
        "meter_live": ("meter_id", {"kwh_consumed_ac": kwh, "voltage": voltage}),
        "vehicle_reading_history": (
            "vehicle_id",
            {"soc": soc, "kwh_delivered_dc": kwh, "battery_temp": temperature},
        ),
        "vehicle_live": (
            "vehicle_id",
            {"soc": soc, "kwh_delivered_dc": kwh, "battery_temp": temperature},
        ),
    }
    for table, (id_column, ranges) in tables.items():
        for row in await connection.fetch(f"SELECT * FROM {table}"):
            device_id = row[id_column]
            if not _DEVICE_ID.fullmatch(device_id):
                problems.append(f"{table}: id {device_id!r}")
            for column, (low, high) in ranges.items():
                if not _in_range(row[column], low, high):
                    problems.append(f"{table} {device_id!r}: {column} = {row[column]!r}")
            earliest = row["received_at"] - settings.max_backfill - _SLACK
            latest = row["received_at"] + settings.max_clock_skew + _SLACK
            if not earliest <= row["ts"] <= latest:
                problems.append(f"{table} {device_id!r}: ts {row['ts']} for {row['received_at']}")
    for table, column in (("meters", "meter_id"), ("vehicles", "vehicle_id")):
        for (device_id,) in await connection.fetch(f"SELECT {column} FROM {table}"):
            if not _DEVICE_ID.fullmatch(device_id):
                problems.append(f"{table}: id {device_id!r}")
    for row in await connection.fetch(
        "SELECT vehicle_id, meter_id, isfinite(lower(during)) AS starts FROM"
        " vehicle_meter_assignments"
    ):
        for column in ("vehicle_id", "meter_id"):
            if not _DEVICE_ID.fullmatch(row[column]):
                problems.append(f"vehicle_meter_assignments: {column} {row[column]!r}")
        if not row["starts"]:
            problems.append(f"vehicle_meter_assignments: {row['vehicle_id']!r} starts at infinity")
    return problems


def fuzz_settings(max_examples: int) -> settings:
    """Many examples, no deadline (a request may wait on a commit), nothing written to disk."""
    return settings(
        max_examples=max_examples,
        deadline=None,
        database=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    )
