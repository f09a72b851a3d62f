"""Secure by default: the first start of an engine with no key creates an admin key, shown once."""

from __future__ import annotations

import os
import sys
from pathlib import Path

from energy_ingest.auth.service import create_first_admin_key
from energy_ingest.config import Settings
from energy_ingest.db.migrations import AnyConnection


def _write_key_file(path: Path, token: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "w") as file:
        file.write(token + "\n")
    path.chmod(0o600)  # an existing file keeps its mode through O_CREAT


async def ensure_admin_key(connection: AnyConnection, settings: Settings) -> str | None:
    """Create the first admin key if no key ever existed (and auth is on); print it once.

    The key goes to standard output, not to the logs, which must never hold a key; with
    `admin_key_file` set it is also written there for automation. Returns the token if one
    was created.
    """
    if not settings.auth_enabled:
        return None
    token = await create_first_admin_key(connection)
    if token is None:
        return None
    if settings.admin_key_file is not None:
        _write_key_file(settings.admin_key_file, token)
    where = f" (also written to {settings.admin_key_file})" if settings.admin_key_file else ""
    print(
        "\nNo API key existed, so an admin key was created. It is shown only this once"
        f"{where}; store it now:\n\n    {token}\n\n"
        "Use it as `Authorization: Bearer <key>`, and create narrower keys with\n"
        "`energy-ingest keys create --scope ingest` (or POST /v1/keys).\n",
        file=sys.stdout,
        flush=True,
    )
    return token
