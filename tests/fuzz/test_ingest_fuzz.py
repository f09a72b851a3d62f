"""Hostile bodies at every ingest endpoint: never a 5xx, every refusal explained, nothing
invalid stored."""

from __future__ import annotations

import asyncio

import asyncpg
from hypothesis import example, given
from hypothesis import strategies as st

from energy_ingest.config import Settings
from tests.figures import RecordFigures
from tests.fuzz.contract import Fuzzer, fuzz_settings, invalid_rows
from tests.fuzz.strategies import encode, ingest_bodies

# path, kind of reading (None: recognised from the fields), whether a batch is expected
_ENDPOINTS = [
    ("/v1/ingest", None, False),
    ("/v1/ingest", None, True),
    ("/v1/ingest/meter", "meter", False),
    ("/v1/ingest/vehicle", "vehicle", False),
    ("/v1/ingest/meter/batch", "meter", True),
    ("/v1/ingest/vehicle/batch", "vehicle", True),
]
requests = st.sampled_from(_ENDPOINTS).flatmap(
    lambda endpoint: st.tuples(st.just(endpoint[0]), ingest_bodies(endpoint[1], endpoint[2]))
)
content_types = st.sampled_from(
    [
        "application/json",
        "application/json",
        "text/plain",
        None,
        "application/json; charset=latin-1",
    ]
)


async def test_ingest_endpoints_keep_the_contract_under_hostile_bodies(
    fuzzer: Fuzzer, db: asyncpg.Connection, settings: Settings, record_figures: RecordFigures
) -> None:
    @fuzz_settings(max_examples=1200)
    @given(request=requests, content_type=content_types)
    @example(request=("/v1/ingest/meter/batch", encode([{}] * 10_001)), content_type=None)
    @example(request=("/v1/ingest", b" " * (16 * 1024 * 1024 + 1)), content_type=None)
    @example(request=("/v1/ingest/vehicle/batch", b"[" * 100_000), content_type=None)
    def post(request: tuple[str, bytes], content_type: str | None) -> None:
        path, body = request
        fuzzer.send("POST", path, body, content_type=content_type)

    await asyncio.to_thread(post)

    problems = await invalid_rows(db, settings)
    assert not problems, problems[:10]
    stored = await db.fetchval(
        "SELECT (SELECT count(*) FROM meter_readings) + (SELECT count(*) FROM vehicle_readings)"
    )
    assert stored > 0, "no example got through: the stored-rows check proved nothing"
    record_figures({**fuzzer.tally.figures(), "readings stored (all valid)": stored})
