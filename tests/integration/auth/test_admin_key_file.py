"""The admin key file: a new file only the engine's user reads, never a link or a reused file."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import asyncpg
import pytest

from energy_ingest.config import Settings
from energy_ingest.keys.bootstrap import ensure_admin_key


async def test_the_admin_key_file_is_created_new_and_private(
    secured_settings: Settings, db: asyncpg.Connection, tmp_path: Path
) -> None:
    path = tmp_path / "admin.key"
    settings = secured_settings.model_copy(update={"admin_key_file": path})
    token = await ensure_admin_key(db, settings)
    assert token is not None
    assert path.read_text() == token + "\n"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


async def test_a_symlink_at_the_admin_key_file_is_refused_and_its_target_untouched(
    secured_settings: Settings, db: asyncpg.Connection, tmp_path: Path
) -> None:
    victim = tmp_path / "victim.txt"
    victim.write_text("precious\n")
    victim.chmod(0o644)
    path = tmp_path / "admin.key"
    path.symlink_to(victim)
    settings = secured_settings.model_copy(update={"admin_key_file": path})
    with pytest.raises(Exception, match="already exists") as refused:
        await ensure_admin_key(db, settings)
    assert "\n" not in str(refused.value)
    assert victim.read_text() == "precious\n"
    assert stat.S_IMODE(victim.stat().st_mode) == 0o644
    assert path.is_symlink()
    # Refused before anything was minted: the next start (path fixed) still makes the key.
    assert await db.fetchval("SELECT count(*) FROM api_keys") == 0


@pytest.mark.parametrize("dangling", [False, True])
async def test_an_existing_admin_key_file_is_refused(
    secured_settings: Settings, db: asyncpg.Connection, tmp_path: Path, dangling: bool
) -> None:
    path = tmp_path / "admin.key"
    if dangling:
        path.symlink_to(tmp_path / "not-there-yet")
    else:
        path.write_text("")
        path.chmod(0o666 & ~os.umask(0o022))
    settings = secured_settings.model_copy(update={"admin_key_file": path})
    with pytest.raises(Exception, match="already exists"):
        await ensure_admin_key(db, settings)
    assert not (tmp_path / "not-there-yet").exists()
    assert await db.fetchval("SELECT count(*) FROM api_keys") == 0
    if not dangling:
        assert path.read_text() == ""
