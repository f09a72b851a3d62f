"""How the server's limits are derived from the settings and the process's open-file limit."""

from __future__ import annotations

import logging
import resource

import pytest

from energy_ingest import server
from energy_ingest.config import Settings


def test_the_connection_cap_stays_below_the_open_file_limit(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setattr(server, "raise_file_limit", lambda: 4096)
    with caplog.at_level(logging.INFO, logger="energy_ingest.server"):
        limits = server.server_limits(Settings())
    assert limits.max_connections == 4096 - server.FILE_DESCRIPTOR_RESERVE
    assert "max_connections lowered from 25000 to 3840" in caplog.text
    monkeypatch.setattr(server, "raise_file_limit", lambda: 65536)
    assert server.server_limits(Settings()).max_connections == 25_000


def test_the_open_file_limit_is_raised_to_the_hard_limit() -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    try:
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(soft, 512), hard))
        in_force = server.raise_file_limit()
        assert in_force == resource.getrlimit(resource.RLIMIT_NOFILE)[0]
        if hard != resource.RLIM_INFINITY:
            assert in_force == hard
    finally:
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))


def test_a_flood_of_refusals_logs_one_line(caplog: pytest.LogCaptureFixture) -> None:
    log = server._RefusalLog()
    with caplog.at_level(logging.WARNING, logger="energy_ingest.server"):
        for _ in range(10_000):
            log.note("headers_too_large", "refused request heads")
    assert len(caplog.records) == 1
