"""Secure by default: the first start of an engine with no key creates an admin key, shown once."""

from __future__ import annotations

import os
import sys
from pathlib import Path

from energy_ingest.config import Settings
from energy_ingest.db.pool import AnyConnection
from energy_ingest.errors import EngineError
from energy_ingest.keys.service import create_first_admin_key


class AdminKeyFileExists(EngineError):
    """Something is already at the admin key file's path: no key is minted into it."""

    code = "admin_key_file_exists"


def _create_key_file(path: Path) -> int:
    """A new, empty file only this user may read: never through a symlink, never reused.

    An existing file (or link) may belong to someone else, who would then read the admin key,
    or may be a file the key would overwrite.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | getattr(os, "O_CLOEXEC", 0)
    try:
        return os.open(path, flags, 0o600)
    except FileExistsError:
        raise AdminKeyFileExists(
            f"the admin key file {path} already exists: no admin key was created; remove it or "
            "choose a new path (EIE_ADMIN_KEY_FILE), then start again"
        ) from None


async def ensure_admin_key(connection: AnyConnection, settings: Settings) -> str | None:
    """Create the first admin key if no key ever existed (and auth is on); print it once.

    The key goes to standard output, not to the logs, which must never hold a key; with
    `admin_key_file` set it is also written there for automation. Returns the token if one
    was created.
    """
    if not settings.auth_enabled:
        return None
    path = settings.admin_key_file
    descriptor: int | None = None

    def reserve_file() -> None:
        nonlocal descriptor
        if path is not None:
            descriptor = _create_key_file(path)  # before minting: a refusal mints nothing

    try:
        token = await create_first_admin_key(connection, before_minting=reserve_file)
    except BaseException:
        if descriptor is not None:
            os.close(descriptor)
            assert path is not None
            path.unlink(missing_ok=True)
        raise
    if token is None:
        return None
    if descriptor is not None:
        with os.fdopen(descriptor, "w") as file:
            file.write(token + "\n")
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
