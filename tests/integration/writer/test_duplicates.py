"""One rule for "duplicate", whether the earlier reading is in history or in the same batch."""

from __future__ import annotations

import asyncpg
import httpx
import pytest

from energy_ingest.writer.repository import as_stored_real
from tests.factories import minute, vehicle_reading


@pytest.mark.parametrize(
    ("field", "resent", "status"),
    [
        ("soc", 57.300001, "duplicate"),
        ("soc", 57.3000001, "duplicate"),
        ("soc", 57.31, "conflict"),
        ("temp", 57.300001, "duplicate"),
        ("temp", 57.31, "conflict"),
    ],
)
async def test_a_re_send_below_real_precision_is_a_duplicate_across_requests_and_in_one_batch(
    client: httpx.AsyncClient, field: str, resent: float, status: str
) -> None:
    at = minute(-2)
    first = vehicle_reading(vehicle_id="V-across", at=at, **{field: 57.3})
    again = vehicle_reading(vehicle_id="V-across", at=at, **{field: resent})
    assert (await client.post("/v1/ingest/vehicle", json=first)).status_code == 201
    across = await client.post("/v1/ingest/vehicle/batch", json=[again])
    in_one = await client.post(
        "/v1/ingest/vehicle/batch",
        json=[
            vehicle_reading(vehicle_id="V-within", at=at, **{field: 57.3}),
            vehicle_reading(vehicle_id="V-within", at=at, **{field: resent}),
        ],
    )
    if status == "duplicate":
        assert across.json()["duplicates"] == 1
        assert in_one.json()["duplicates"] == 1
    else:
        assert [error["reason"] for error in across.json()["errors"]] == ["conflict"]
        assert [error["reason"] for error in in_one.json()["errors"]] == ["conflict"]


async def test_the_batch_rounds_exactly_as_history_stores(db: asyncpg.Connection) -> None:
    values = [57.3, 57.300001, 57.3000001, 57.31, 31.2, -12.345678, 99.99999, 0.1, 5e-38, 1e-37]
    stored = await db.fetchval(
        "SELECT array_agg(sensor_real(v)) FROM unnest($1::float8[]) AS v", values
    )
    # Compared as a double, the way asyncpg hands a real back.
    assert [as_stored_real(value) for value in values] == list(stored)
