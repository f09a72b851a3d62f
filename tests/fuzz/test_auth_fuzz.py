"""Hostile Authorization headers at every /v1 endpoint of a secured engine: always 401."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import asyncpg
import httpx
import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st

from energy_ingest.auth.keys import Scope
from energy_ingest.config import Settings
from energy_ingest.keys.service import create_key
from tests.factories import meter_reading, vehicle_reading
from tests.figures import RecordFigures
from tests.fuzz.contract import Fuzzer, fuzz_settings
from tests.support import start_engine

_ENDPOINTS = [
    ("POST", "/v1/ingest/meter", meter_reading()),
    ("POST", "/v1/ingest/vehicle/batch", [vehicle_reading()]),
    ("POST", "/v1/ingest", meter_reading()),
    ("GET", "/v1/analytics/meter/M1/live", None),
    ("GET", "/v1/analytics/performance/V1", None),
    ("GET", "/v1/vehicles/V1/assignments", None),
    ("PUT", "/v1/vehicles/V1/meter", {"meterId": "M1"}),
    ("POST", "/v1/keys", {"scopes": ["admin"]}),
    ("DELETE", "/v1/keys/0123456789ab", None),
]

# Header values as they arrive on the wire: latin-1 bytes, no line breaks.
_wire_text = st.text(
    st.characters(min_codepoint=0x20, max_codepoint=0xFF, exclude_characters="\x7f"),
    max_size=120,
)
_token_text = st.text(
    st.characters(min_codepoint=0x21, max_codepoint=0x7E), min_size=0, max_size=80
)


def _near_misses(real: str) -> st.SearchStrategy[str]:
    """Tokens that look like the real key: its id with another secret, cut, extended, changed."""
    prefix = real[:17]
    return st.one_of(
        st.builds(lambda s: prefix + s, _token_text),
        st.builds(lambda n: real[:n], st.integers(0, len(real) - 1)),
        st.builds(lambda s: real + s, _token_text.filter(bool)),
        st.builds(
            lambda i, c: real[:i] + c + real[i + 1 :],
            st.integers(0, len(real) - 1),
            st.characters(min_codepoint=0x21, max_codepoint=0x7E),
        ).filter(lambda t: t != real),
        st.builds(
            lambda h, s: f"eie_{h}_{s}", st.from_regex(r"[0-9a-f]{12}", fullmatch=True), _token_text
        ),
    )


def _headers(real: str) -> st.SearchStrategy[bytes]:
    schemes = st.sampled_from(["Bearer", "bearer", "BEARER", "Basic", "Token", "", "Bearer\t"])
    return st.one_of(
        st.builds(lambda scheme, token: f"{scheme} {token}", schemes, _near_misses(real)),
        st.builds(lambda scheme, text: f"{scheme} {text}", schemes, _wire_text),
        _wire_text,
    ).map(lambda value: value.encode("latin-1"))


@pytest.fixture
async def secured_client(settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    async with start_engine(settings.model_copy(update={"auth_enabled": True})) as engine:
        yield engine.client


async def test_hostile_authorization_headers_never_get_in(
    secured_client: httpx.AsyncClient,
    db: asyncpg.Connection,
    record_figures: RecordFigures,
) -> None:
    _, real = await create_key(db, {Scope.ADMIN}, name="the one real key")
    fuzzer = Fuzzer(secured_client, asyncio.get_running_loop())

    @fuzz_settings(max_examples=600)
    @given(endpoint=st.sampled_from(_ENDPOINTS), header=_headers(real))
    def call(endpoint: tuple[str, str, object], header: bytes) -> None:
        method, path, body = endpoint
        content = orjson.dumps(body) if body is not None else None
        answer = fuzzer.send(method, path, content, extra_headers={"authorization": header})
        assert answer.status_code == 401, (header, answer.status_code, answer.text)

    await asyncio.to_thread(call)

    stored = await db.fetchval(
        "SELECT (SELECT count(*) FROM meter_readings) + (SELECT count(*) FROM vehicle_readings)"
        " + (SELECT count(*) FROM vehicle_meter_assignments)"
    )
    assert stored == 0
    assert await db.fetchval("SELECT count(*) FROM api_keys WHERE revoked_at IS NULL") == 2
    record_figures(fuzzer.tally.figures())
