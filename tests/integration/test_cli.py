"""The `energy-ingest` command as a user runs it: real processes, the embedded database."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx

from tests.factories import meter_reading


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def _command() -> list[str]:
    return [sys.executable, "-m", "energy_ingest"]


def test_db_migrate_brings_a_database_up_to_date(database_url: str) -> None:
    env = {**os.environ, "DATABASE_URL": database_url}
    result = subprocess.run(
        [*_command(), "db", "migrate"], env=env, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
    assert "up to date" in result.stdout  # the test database was cloned from a migrated one


def test_serve_on_the_embedded_database_keeps_data_across_restarts(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k not in {"DATABASE_URL", "EIE_DATABASE_URL"}}
    env["EIE_DATA_DIR"] = str(tmp_path / "engine-data")
    reading = meter_reading(meter_id="restart-proof")
    for run in range(2):
        port = _free_port()
        process = subprocess.Popen(
            [*_command(), "serve", "--port", str(port)],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        try:
            base = f"http://127.0.0.1:{port}"
            deadline = time.monotonic() + 60
            while True:
                assert process.poll() is None, process.stdout.read() if process.stdout else ""
                try:
                    if httpx.get(f"{base}/readyz", timeout=1).status_code == 200:
                        break
                except httpx.TransportError:
                    pass
                assert time.monotonic() < deadline, "the engine did not become ready"
                time.sleep(0.2)
            answer = httpx.post(f"{base}/v1/ingest/meter", json=reading, timeout=10)
            assert answer.json()["status"] == ("stored" if run == 0 else "duplicate")
        finally:
            process.send_signal(signal.SIGTERM)
            output, _ = process.communicate(timeout=60)
        assert process.returncode == 0, output
    # Clean stop: the embedded server was shut down with the engine.
    assert not (tmp_path / "engine-data" / "postmaster.pid").exists()
