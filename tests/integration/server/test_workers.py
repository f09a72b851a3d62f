"""Several workers behind one port, as `energy-ingest serve --workers N` starts them."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys

from tests.support import free_port, wait_until_ready


def test_workers_without_keys_answer_on_the_port_given_on_the_command_line(
    database_url: str,
) -> None:
    # Each worker builds its settings from the environment: the port (and host) given as
    # options must reach it, or its Host check refuses every request sent to that port.
    env = {k: v for k, v in os.environ.items() if not k.startswith(("EIE_", "DATABASE_URL"))}
    env["DATABASE_URL"] = database_url
    port = free_port()
    command = [sys.executable, "-m", "energy_ingest", "serve", "--no-auth", "--workers", "2"]
    process = subprocess.Popen(
        [*command, "--host", "127.0.0.1", "--port", str(port)],
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        asyncio.run(
            wait_until_ready(f"http://127.0.0.1:{port}", alive=lambda: process.poll() is None)
        )
    finally:
        process.terminate()
        assert process.wait(timeout=60) == 0
