"""The register rules in SQL against a plain reference, and the rollups they keep.

`book_readings` (the migration's PL/pgSQL) is compared reading by reading with `reference`, a
straight transcription of the rules, over random register sequences full of glitches, resets,
spikes, gaps and readings without a register. Then readings like those arrive at an engine out
of order, in concurrent batches: the rollups (the inbox's corrections folded in) must equal what
history books, hour by hour.
"""

from __future__ import annotations

import asyncio
import random
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import asyncpg
import httpx

from tests.factories import meter_reading, minute, vehicle_reading
from tests.integration.writer.test_rollups import assert_rollups_match_history

MAX_KW = 1000.0
Row = tuple[datetime, float | None, float | None]  # (ts, interval, register)


def reference(rows: list[Row], max_kw: float) -> list[tuple[Decimal, str | None]]:
    """What each reading books, and its event, by the rules as the README states them."""
    booked: list[tuple[Decimal, str | None]] = []
    base: tuple[datetime, Decimal] | None = None

    def fits(start: tuple[datetime, Decimal], at: datetime, value: Decimal) -> bool:
        hours = Decimal(str((at - start[0]).total_seconds())) / 3600
        return Decimal(0) <= value - start[1] <= Decimal(str(max_kw)) * hours

    for index, (at, interval, register) in enumerate(rows):
        if register is None:
            booked.append((Decimal(str(interval)), None))
            continue
        value = Decimal(str(register))
        if base is None:
            base = (at, value)
            booked.append((Decimal(str(interval)) if interval is not None else Decimal(0), None))
            continue
        if fits(base, at, value):
            booked.append((value - base[1], None))
            base = (at, value)
            continue
        following = next((row for row in rows[index + 1 :] if row[2] is not None), None)
        backward = value < base[1]
        if following is not None and fits(base, following[0], Decimal(str(following[2]))):
            booked.append((Decimal(0), "glitch" if backward else "rejected"))
        else:
            booked.append((Decimal(0), "reset" if backward else "rejected"))
            base = (at, value)
    return booked


def random_sequence(rng: random.Random, length: int, start: datetime) -> list[Row]:
    rows: list[Row] = []
    register = round(rng.uniform(0, 50_000), 3)
    at = start
    for _ in range(length):
        at += timedelta(minutes=rng.choice([1, 1, 1, 1, 1, 2, 7, 45]))  # gaps too
        step = round(rng.uniform(0, 0.4), 3)
        register = round(register + step, 3)
        sent = register
        fault = rng.random()
        if fault < 0.06:
            sent = 0.0  # glitch to zero (a reset if it stays)
        elif fault < 0.09:
            sent = round(register + rng.choice([53_700.0, 9_999.0]), 3)  # over the cap
        elif fault < 0.11:
            register = round(rng.uniform(0, 5), 3)  # reset: the meter starts again
            sent = register
        interval: float | None = step
        kind = rng.random()
        if kind < 0.1:
            rows.append((at, interval, None))  # no register this time
        elif kind < 0.5:
            rows.append((at, None, sent))
        else:
            rows.append((at, interval, sent))
    return rows


async def test_book_readings_follows_the_rules_on_random_sequences(db: asyncpg.Connection) -> None:
    rng = random.Random(11)
    start = datetime(2026, 1, 1, tzinfo=UTC)
    checked = 0
    for _ in range(60):
        rows = random_sequence(rng, rng.randint(1, 40), start)
        answer = await db.fetch(
            "SELECT kwh, event"
            " FROM book_readings($1::timestamptz[], $2::float8[], $3::float8[], $4)",
            [row[0] for row in rows],
            [row[1] for row in rows],
            [row[2] for row in rows],
            MAX_KW,
        )
        assert [(row["kwh"], row["event"]) for row in answer] == reference(rows, MAX_KW), rows
        checked += len(rows)
    assert checked > 500


def _meter_item(meter_id: str, row: Row) -> dict[str, Any]:
    at, interval, register = row
    body = meter_reading(meter_id=meter_id, at=at, kwh=interval if interval is not None else 0.0)
    if interval is None:
        del body["kwhConsumedAc"]
    if register is not None:
        body["kwhRegisterAc"] = register
    return body


def _vehicle_item(vehicle_id: str, row: Row) -> dict[str, Any]:
    at, interval, register = row
    body = vehicle_reading(
        vehicle_id=vehicle_id, at=at, kwh=interval if interval is not None else 0.0
    )
    if interval is None:
        del body["kwhDeliveredDc"]
    if register is not None:
        body["kwhRegisterDc"] = register
    return body


async def test_out_of_order_concurrent_register_readings_keep_the_rollups_exact(
    client: httpx.AsyncClient, db: asyncpg.Connection
) -> None:
    rng = random.Random(5)
    start = minute(-31 * 60)  # 40 readings at most 45 minutes apart: never in the future
    items: list[tuple[str, dict[str, Any]]] = []
    for device in range(6):
        for row in random_sequence(rng, 40, start):
            items.append(("meter", _meter_item(f"M-{device}", row)))
        for row in random_sequence(rng, 40, start):
            items.append(("vehicle", _vehicle_item(f"V-{device}", row)))
    rng.shuffle(items)  # late readings everywhere: every neighbour gets re-derived
    batches = [items[index : index + 17] for index in range(0, len(items), 17)]

    async def send(batch: list[tuple[str, dict[str, Any]]]) -> None:
        for kind in ("meter", "vehicle"):
            body = [item for item_kind, item in batch if item_kind == kind]
            if body:
                response = await client.post(f"/v1/ingest/{kind}/batch", json=body)
                assert response.status_code == 201, response.text
                assert response.json()["failed"] == 0, response.text

    for index in range(0, len(batches), 4):  # four batches at a time, concurrently
        await asyncio.gather(*(send(batch) for batch in batches[index : index + 4]))

    assert await db.fetchval("SELECT count(*) FROM meter_readings") == 240
    assert await assert_rollups_match_history(db) > 0
