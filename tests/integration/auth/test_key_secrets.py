"""A key's secret never reaches a log: not from a URL path, not from a request id."""

from __future__ import annotations

import logging

import asyncpg
import pytest

from energy_ingest.telemetry import logs
from tests.support import Engine, MakeKey


async def test_a_whole_key_in_a_revocation_path_is_refused_and_never_logged(
    secured: Engine, db: asyncpg.Connection, make_key: MakeKey, caplog: pytest.LogCaptureFixture
) -> None:
    admin = await make_key("admin")
    victim = (await make_key("read"))["Authorization"].removeprefix("Bearer ")
    prefix, secret = victim[4:16], victim[17:]
    with caplog.at_level(logging.DEBUG):
        answer = await secured.client.delete(f"/v1/keys/{victim}", headers=admin)
    assert answer.status_code == 422, answer.text
    (problem,) = answer.json()["errors"]
    assert (problem["field"], problem["rule"]) == ("keyId", "not_a_whole_key")
    assert "key id only" in problem["message"]
    assert secret not in answer.text
    # Nothing was revoked: the operator is told, and the key still works as it did.
    assert await db.fetchval("SELECT revoked_at FROM api_keys WHERE prefix = $1", prefix) is None
    assert caplog.records
    for formatter in (logs.JsonFormatter(), logs.TextFormatter()):
        lines = [formatter.format(record) for record in caplog.records]
        assert not [line for line in lines if secret in line]
        assert any(f"eie_{prefix}_<redacted>" in line for line in lines)
    # The access line itself carries no secret (the test client's own line does).
    for record in caplog.records:
        assert record.name == "httpx" or secret not in record.getMessage()


async def test_a_key_in_any_path_or_request_id_is_redacted_and_never_echoed(
    secured: Engine, make_key: MakeKey, caplog: pytest.LogCaptureFixture
) -> None:
    token = (await make_key("read"))["Authorization"].removeprefix("Bearer ")
    secret = token[17:]
    with caplog.at_level(logging.DEBUG):
        lost = await secured.client.get(f"/{token}")
        echoed = await secured.client.get("/healthz", headers={"X-Request-ID": token})
    assert lost.status_code == 404
    assert secret not in lost.text
    assert echoed.headers["x-request-id"] != token
    assert secret not in echoed.headers["x-request-id"]
    lines = [logs.JsonFormatter().format(record) for record in caplog.records]
    assert lines
    assert not [line for line in lines if secret in line]
