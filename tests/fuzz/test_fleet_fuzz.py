"""Hostile ids, bodies and query strings at the assignment endpoints (PUT, DELETE, GET)."""

from __future__ import annotations

import asyncio

import asyncpg
from hypothesis import given
from hypothesis import strategies as st

from energy_ingest.config import Settings
from tests.figures import RecordFigures
from tests.fuzz.contract import Fuzzer, fuzz_settings, invalid_rows
from tests.fuzz.strategies import (
    encode,
    hostile_ids,
    hostile_timestamps,
    json_keys,
    json_values,
    path_segment,
    query_strings,
    raw_bodies,
    valid_recent_timestamps,
)

# A few real vehicles and meters, so assignments start, end, clash and overlap.
vehicles = st.sampled_from(["fz-v1", "fz-v2", "fz-v3"])
meters = st.sampled_from(["fz-m1", "fz-m2", "fz-m3"])
put_vehicle_ids = vehicles | hostile_ids


@st.composite
def assignment_bodies(draw: st.DrawFn) -> bytes:
    choice = draw(st.integers(0, 9))
    if choice == 0:
        return draw(raw_bodies)
    if choice == 1:
        return encode(draw(json_values))
    body: dict[str, object] = {"meterId": draw(meters | meters | hostile_ids)}
    if draw(st.booleans()):
        body["from"] = draw(valid_recent_timestamps | valid_recent_timestamps | hostile_timestamps)
    if draw(st.integers(0, 4)) == 0:
        body[draw(json_keys)] = draw(json_values)
    return encode(body)


actions = st.one_of(
    st.tuples(st.just("PUT"), put_vehicle_ids, assignment_bodies()),
    st.tuples(st.just("DELETE"), vehicles | hostile_ids, query_strings(("at",)) | st.just("")),
    st.tuples(st.just("GET"), vehicles | hostile_ids, st.just("")),
)


async def test_assignment_endpoints_keep_the_contract_under_hostile_input(
    fuzzer: Fuzzer, db: asyncpg.Connection, settings: Settings, record_figures: RecordFigures
) -> None:
    @fuzz_settings(max_examples=700)
    @given(action=actions)
    def act(action: tuple[str, str, bytes | str]) -> None:
        method, vehicle_id, extra = action
        unroutable = "/" in vehicle_id or not vehicle_id
        if method == "PUT":
            assert isinstance(extra, bytes)
            url = f"/v1/vehicles/{path_segment(vehicle_id)}/meter"
            fuzzer.send(method, url, extra, unroutable=unroutable)
        elif method == "DELETE":
            assert isinstance(extra, str)
            url = f"/v1/vehicles/{path_segment(vehicle_id)}/meter"
            fuzzer.send(method, f"{url}?{extra}" if extra else url, unroutable=unroutable)
        else:
            url = f"/v1/vehicles/{path_segment(vehicle_id)}/assignments"
            fuzzer.send(method, url, unroutable=unroutable)

    await asyncio.to_thread(act)

    problems = await invalid_rows(db, settings)
    assert not problems, problems[:10]
    assignments = await db.fetchval("SELECT count(*) FROM vehicle_meter_assignments")
    assert assignments > 0, "no assignment was ever made: the stored-rows check proved nothing"
    record_figures({**fuzzer.tally.figures(), "assignments stored (all valid)": assignments})
