"""Request ids and structured logs: every line of a request names it, none carries readings."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import pty
import re
import signal
import socket
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from energy_ingest.telemetry.logs import JsonFormatter, request_id
from tests.factories import meter_reading
from tests.support import free_port, wait_until_ready


async def test_a_client_request_id_is_echoed_and_a_missing_one_made(
    client: httpx.AsyncClient,
) -> None:
    given = await client.get("/healthz", headers={"X-Request-ID": "edge-42.a:b"})
    assert given.headers["x-request-id"] == "edge-42.a:b"
    made = await client.get("/healthz")
    assert len(made.headers["x-request-id"]) == 32
    hostile = await client.get("/healthz", headers={"X-Request-ID": "x" * 65})
    assert hostile.headers["x-request-id"] != "x" * 65


async def test_access_lines_name_the_request_but_never_its_readings(
    client: httpx.AsyncClient, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="energy_ingest.access")
    secret_value = 2345.678
    await client.post(
        "/v1/ingest/meter",
        json=meter_reading(voltage=secret_value),
        headers={"X-Request-ID": "trace-me", "Authorization": "Bearer not-a-real-key"},
    )
    lines = [JsonFormatter().format(record) for record in caplog.records]
    access = [json.loads(line) for line in lines if '"energy_ingest.access"' in line]
    assert len(access) == 1
    assert access[0]["status"] == 422  # 2345.678 V is out of range
    assert access[0]["route"] == "/v1/ingest/meter"
    assert "durationMs" in access[0]
    assert all(str(secret_value) not in line and "not-a-real-key" not in line for line in lines)


def test_json_lines_carry_the_current_request_id() -> None:
    record = logging.LogRecord("engine", logging.WARNING, __file__, 1, "batch failed", None, None)
    token = request_id.set("req-1")
    try:
        record.request_id = request_id.get()
        entry = json.loads(JsonFormatter().format(record))
    finally:
        request_id.reset(token)
    assert entry["requestId"] == "req-1"
    assert (entry["level"], entry["logger"], entry["message"]) == (
        "warning",
        "engine",
        "batch failed",
    )


# --- a real engine process: what reaches its standard error ---------------------------------


def _raw_get(port: int, target: str, headers: str = "") -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=10) as connection:
        connection.sendall(
            f"GET {target} HTTP/1.1\r\nHost: 127.0.0.1\r\n{headers}"
            "Connection: close\r\n\r\n".encode()
        )
        answer = b""
        while chunk := connection.recv(65536):
            answer += chunk
        return answer


def _serve(database_url: str, stderr: int, *arguments: str) -> tuple[subprocess.Popen[bytes], int]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("EIE_")}
    env["DATABASE_URL"] = database_url
    port = free_port()
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "energy_ingest",
            *arguments,
            "serve",
            "--no-auth",
            "--port",
            f"{port}",
        ],
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=stderr,
    )
    base = f"http://127.0.0.1:{port}"
    ready = wait_until_ready(
        base, alive=lambda: process.poll() is None, interval=0.2, request_timeout=1
    )
    asyncio.run(ready)
    return process, port


def _stop(process: subprocess.Popen[bytes]) -> None:
    process.send_signal(signal.SIGTERM)
    process.wait(timeout=30)


FORGED = "2026-11-29 19:00:00,000 INFO 12345 energy_ingest.access: POST /v1/keys 201"
HOSTILE_TARGETS = [
    "/x%0A" + FORGED.replace(" ", "%20") + "%0A",
    "/x%0D" + FORGED.replace(" ", "%20"),
    "/%1B%5B2J%1B%5B31mred",
    "/a%E2%80%A8b%E2%80%AEc",
]


def test_a_text_log_cannot_be_forged_or_drive_the_terminal(
    database_url: str, tmp_path: Path
) -> None:
    key = "eie_0123456789ab_" + "S3cr3t-" * 6
    log = tmp_path / "stderr.log"
    with log.open("wb") as stderr:
        process, port = _serve(database_url, stderr.fileno(), "--log-format", "text")
        try:
            for target in HOSTILE_TARGETS:
                assert b" 404 " in _raw_get(port, target).split(b"\r\n", 1)[0]
            assert b" 404 " in _raw_get(port, f"/{key}").split(b"\r\n", 1)[0]
            echoed = _raw_get(port, "/healthz", f"X-Request-ID: {key}\r\n")
            assert key[17:].encode() not in echoed
        finally:
            _stop(process)
    text = log.read_text(encoding="utf-8", errors="replace")
    lines = text.splitlines()
    assert not [line for line in lines if line.startswith("2026-11-29")], text
    assert "\x1b" not in text
    assert not {"\u2028", "\u202e", "\r"} & set(text)
    assert key[17:] not in text
    access = [line for line in lines if "energy_ingest.access" in line and "/readyz" not in line]
    assert len(access) == len(HOSTILE_TARGETS) + 2, access


def test_logs_are_text_on_a_terminal_and_json_without_colour_otherwise(
    database_url: str, tmp_path: Path
) -> None:
    # Not a terminal (a collector, a file): JSON lines, uvicorn's coloured copies left out.
    log = tmp_path / "stderr.log"
    with log.open("wb") as stderr:
        process, port = _serve(database_url, stderr.fileno())
        _raw_get(port, "/healthz")
        _stop(process)
    # Besides the command's own notices ("authentication is OFF", "stopped"), only JSON.
    lines = [line for line in log.read_text().splitlines() if line.startswith("{")]
    assert lines
    assert not re.search(r"^\d{4}-\d\d-\d\d \d\d:", log.read_text(), re.MULTILINE)
    assert any("Uvicorn running on" in json.loads(line)["message"] for line in lines)
    assert not [line for line in lines if "\\u001b" in line or "\x1b" in line]

    # A terminal: lines a person reads.
    controller, terminal = pty.openpty()
    try:
        process, port = _serve(database_url, terminal)
        _raw_get(port, "/healthz")
        _stop(process)
    finally:
        os.close(terminal)
    output = b""
    with contextlib.suppress(OSError):  # EIO once the terminal has no writer left
        while chunk := os.read(controller, 65536):
            output += chunk
    os.close(controller)
    shown = output.decode(errors="replace").splitlines()
    assert shown
    assert not [line for line in shown if line.startswith("{")], shown
    assert any("energy_ingest.access: GET /healthz 200" in line for line in shown), shown
