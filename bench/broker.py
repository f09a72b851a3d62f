"""A Mosquitto of our own on a free loopback port, with the limits the repository ships.

For the bench and the MQTT tests (which import it): never the broker a machine may already
run. Anonymous, loopback only, persistence in a folder of its own so that a restart keeps the
sessions and their queued messages, as a deployed broker does.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path

from bench.servers import HOST, free_port

LIMITS = Path(__file__).resolve().parent.parent / "mosquitto" / "conf.d" / "ingest-limits.conf"
_START_SECONDS = 20.0


def mosquitto_binary() -> str | None:
    """The `mosquitto` executable (Debian puts it in /usr/sbin, often not on a user's PATH)."""
    return shutil.which("mosquitto") or shutil.which("mosquitto", path="/usr/sbin:/usr/local/sbin")


class Mosquitto:
    """One broker process; `restart` keeps its port and its persisted sessions."""

    def __init__(self, folder: Path, *, limits: bool = True, port: int | None = None) -> None:
        binary = mosquitto_binary()
        if binary is None:
            raise RuntimeError("no mosquitto binary: apt-get install mosquitto")
        self.binary = binary
        self.folder = folder
        self.port = port or free_port()
        self.url = f"mqtt://{HOST}:{self.port}"
        self.log_path = folder / "mosquitto.log"
        self.config = folder / "mosquitto.conf"
        lines = [
            f"listener {self.port} {HOST}",
            "allow_anonymous true",
            f"persistence_location {folder}/",
            f"log_dest file {self.log_path}",
            "log_type error",
            "log_type warning",
        ]
        if os.geteuid() == 0:
            # Started as root, Mosquitto switches to the `mosquitto` user, which cannot write
            # its persistence file in our folder: sessions would not survive a restart.
            lines.append("user root")
        if limits:
            lines.append(LIMITS.read_text())
        else:  # Mosquitto's defaults, for the bench's comparison
            lines += ["persistence true"]
        self.config.write_text("\n".join(lines) + "\n")
        self._process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        assert self._process is None or self._process.poll() is not None, "already running"
        self._process = subprocess.Popen(
            [self.binary, "-c", str(self.config)],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        deadline = time.monotonic() + _START_SECONDS
        while True:
            if self._process.poll() is not None:
                raise RuntimeError(f"mosquitto exited at start:\n{self.log()}")
            with suppress(OSError), socket.create_connection((HOST, self.port), timeout=0.5):
                return
            if time.monotonic() > deadline:
                raise RuntimeError(f"mosquitto did not listen within {_START_SECONDS} s")
            time.sleep(0.02)

    def stop(self) -> None:
        """SIGTERM: Mosquitto saves its sessions and queued messages, then exits."""
        process = self._process
        if process is None or process.poll() is not None:
            return
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()

    def restart(self) -> None:
        self.stop()
        self.start()

    def log(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-4000:]
        except OSError:
            return ""


@contextmanager
def running_mosquitto(folder: Path, *, limits: bool = True) -> Iterator[Mosquitto]:
    """A started broker for the length of the block."""
    folder.mkdir(parents=True, exist_ok=True)
    broker = Mosquitto(folder, limits=limits)
    broker.start()
    try:
        yield broker
    finally:
        broker.stop()
