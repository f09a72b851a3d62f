"""Hostile ids and query strings at the read endpoints: live, performance, assignments."""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta

import asyncpg
import httpx
from hypothesis import given
from hypothesis import strategies as st

from energy_ingest.config import Settings
from tests.factories import meter_reading, minute, vehicle_reading
from tests.figures import RecordFigures
from tests.fuzz.contract import Fuzzer, fuzz_settings, invalid_rows
from tests.fuzz.strategies import hostile_ids, offsets, path_segment, query_strings

# Devices that exist, so that well-formed ids reach the database as well as the 404 path.
_KNOWN = ["fz-meter", "fz-vehicle", "fz-unassigned"]
ids = st.sampled_from(_KNOWN) | hostile_ids


def _window(start: datetime, days: float, ends: int) -> str:
    """`from` and `to` (ends=0), only `from` (1) or only `to` (2)."""
    end = start + timedelta(days=days)
    parts = [f"from={path_segment(start.isoformat())}", f"to={path_segment(end.isoformat())}"]
    return "&".join(parts if ends == 0 else parts[ends - 1 : ends])


# Windows anywhere in the calendar or around the readings just stored; spans around the
# 31-day limit; one or both ends given.
windows = st.builds(
    _window,
    st.datetimes(min_value=datetime(2, 1, 3), max_value=datetime(9998, 11, 1), timezones=offsets)
    | st.builds(lambda hours: minute() - timedelta(hours=hours), st.floats(-2, 24 * 40)),
    st.floats(-2, 40, allow_nan=False),
    st.integers(0, 2),
)
targets = st.one_of(
    st.tuples(st.just("performance"), ids, query_strings(("from", "to")) | windows | st.just("")),
    st.tuples(st.sampled_from(["meter", "vehicle"]), ids, st.just("")),
    st.tuples(st.just("assignments"), ids, query_strings(("at",)) | st.just("")),
)


def _url(target: str, device_id: str, query: str) -> str:
    segment = path_segment(device_id)
    if target == "performance":
        path = f"/v1/analytics/performance/{segment}"
    elif target == "assignments":
        path = f"/v1/vehicles/{segment}/assignments"
    else:
        path = f"/v1/analytics/{target}/{segment}/live"
    return f"{path}?{query}" if query else path


async def _arrange(client: httpx.AsyncClient) -> None:
    for offset in range(-5, 0):
        at = minute(offset)
        readings = [
            meter_reading(meter_id="fz-meter", at=at),
            vehicle_reading(vehicle_id="fz-vehicle", at=at),
            vehicle_reading(vehicle_id="fz-unassigned", at=at),
        ]
        assert (await client.post("/v1/ingest", json=readings)).status_code == 201
    assignment = {"meterId": "fz-meter", "from": (minute(-60)).isoformat()}
    assert (await client.put("/v1/vehicles/fz-vehicle/meter", json=assignment)).status_code == 201


async def test_read_endpoints_keep_the_contract_under_hostile_ids_and_queries(
    fuzzer: Fuzzer,
    client: httpx.AsyncClient,
    db: asyncpg.Connection,
    settings: Settings,
    record_figures: RecordFigures,
) -> None:
    await _arrange(client)

    @fuzz_settings(max_examples=900)
    @given(target=targets)
    def get(target: tuple[str, str, str]) -> None:
        kind, device_id, query = target
        fuzzer.send(
            "GET", _url(kind, device_id, query), unroutable="/" in device_id or not device_id
        )

    await asyncio.to_thread(get)

    problems = await invalid_rows(db, settings)
    assert not problems, problems[:10]
    assert fuzzer.tally.statuses[200] > 0, "no example reached a device that exists"
    record_figures(fuzzer.tally.figures())
