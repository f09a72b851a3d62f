"""The `energy-ingest` command as a user runs it: real processes, the embedded database."""

from __future__ import annotations

import asyncio
import json
import os
import re
import signal
import subprocess
import sys
import time
from datetime import datetime, timedelta
from pathlib import Path

import asyncpg
import httpx

from energy_ingest.db.migrations import available_migrations, pending_versions
from energy_ingest.db.sql import quote_identifier
from tests.factories import meter_reading
from tests.support import DatabaseServer, free_port, wait_until_ready, with_database


def _command() -> list[str]:
    return [sys.executable, "-m", "energy_ingest"]


def test_db_migrate_brings_a_database_up_to_date(database_url: str) -> None:
    env = {**os.environ, "DATABASE_URL": database_url}
    result = subprocess.run(
        [*_command(), "db", "migrate"], env=env, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
    assert "up to date" in result.stdout  # the test database was cloned from a migrated one


def _wait_ready(process: subprocess.Popen[str], base: str) -> None:
    def output() -> str:  # what it printed, once it has exited (reading earlier would block)
        exited = process.poll() is not None
        return process.stdout.read() if process.stdout and exited else ""

    asyncio.run(
        wait_until_ready(
            base,
            alive=lambda: process.poll() is None,
            output=output,
            interval=0.2,
            request_timeout=1,
        )
    )


def _cli(env: dict[str, str], *arguments: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*_command(), *arguments], env=env, capture_output=True, text=True, timeout=120
    )


def _bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def test_serve_is_secure_by_default_and_keeps_data_and_keys_across_restarts(
    tmp_path: Path,
) -> None:
    env = {k: v for k, v in os.environ.items() if k not in {"DATABASE_URL", "EIE_DATABASE_URL"}}
    env = {k: v for k, v in env.items() if not k.startswith("EIE_")}
    env["EIE_DATA_DIR"] = str(tmp_path / "engine-data")
    key_file = tmp_path / "admin.key"
    reading = meter_reading(meter_id="restart-proof")
    admin = ""
    for run in range(2):
        port = free_port()
        process = subprocess.Popen(
            [*_command(), "serve", "--port", str(port), "--admin-key-file", str(key_file)],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        try:
            base = f"http://127.0.0.1:{port}"
            _wait_ready(process, base)
            if run == 0:
                admin = key_file.read_text().strip()
            refused = httpx.post(f"{base}/v1/ingest/meter", json=reading, timeout=10)
            assert refused.status_code == 401
            answer = httpx.post(
                f"{base}/v1/ingest/meter", json=reading, headers=_bearer(admin), timeout=10
            )
            assert answer.json()["status"] == ("stored" if run == 0 else "duplicate")
            if run == 0:
                # The operator's flow, in a second terminal while the engine runs: a key for
                # one meter, used, then revoked.
                created = _cli(
                    env,
                    "keys",
                    "create",
                    "--scope",
                    "ingest",
                    "--device",
                    "restart-proof",
                    "--device-kind",
                    "meter",
                    "--name",
                    "m1",
                )
                assert created.returncode == 0, created.stderr
                meter_key = created.stdout.strip()
                assert meter_key.startswith("eie_")
                assert "\n" not in meter_key
                other = meter_reading(meter_id="another-meter")
                forbidden = httpx.post(
                    f"{base}/v1/ingest/meter", json=other, headers=_bearer(meter_key), timeout=10
                )
                assert forbidden.status_code == 403
                listed = _cli(env, "keys", "list")
                assert listed.returncode == 0, listed.stderr
                assert meter_key[4:16] in listed.stdout
                assert "meter:restart-proof" in listed.stdout
                assert meter_key[17:] not in listed.stdout
                revoked = _cli(env, "keys", "revoke", meter_key[4:16])
                assert revoked.returncode == 0, revoked.stderr
                refused = httpx.post(
                    f"{base}/v1/ingest/meter", json=reading, headers=_bearer(meter_key), timeout=10
                )
                assert refused.status_code == 401
        finally:
            process.send_signal(signal.SIGTERM)
            output, _ = process.communicate(timeout=60)
        assert process.returncode == 0, output
        # Shown once: by the first start only, never in a log line.
        assert output.count(admin) == (1 if run == 0 else 0), output
        assert not any(admin in line for line in output.splitlines() if line.startswith("{"))
    # Clean stop: the embedded server was shut down with the engine.
    assert not (tmp_path / "engine-data" / "postmaster.pid").exists()


def test_serve_refuses_to_run_without_keys_beyond_loopback(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("EIE_")}
    env["EIE_AUTH_ENABLED"] = "false"
    env["EIE_DATA_DIR"] = str(tmp_path / "never-created")
    for host in ("0.0.0.0", "::", "192.0.2.10", "engine.example.com"):
        refused = _cli(env, "serve", "--host", host)
        assert refused.returncode == 2, refused.stderr
        assert "not a loopback address" in refused.stderr
    flag = _cli({**env, "EIE_AUTH_ENABLED": "true"}, "serve", "--no-auth", "--host", "0.0.0.0")
    assert flag.returncode == 2
    assert "not a loopback address" in flag.stderr
    assert not (tmp_path / "never-created").exists()  # refused before anything started


def test_keys_commands_explain_their_mistakes(database_url: str) -> None:
    env = {**os.environ, "DATABASE_URL": database_url}
    for arguments, message in (
        (("--scope", "root"), "unknown scope 'root'"),
        (("--scope", "admin", "--device", "M1"), "cannot be bound to a device"),
        (("--scope", "ingest", "--device", "M1"), "must name its kind"),
        (("--scope", "read", "--name", "tab\there"), "must be printable"),
        (("--scope", "read", "--device-kind", "meter"), "needs a device id"),
        (("--scope", "ingest", "--device", "bad id"), "must be 1–64 characters"),
        (("--scope", "read", "--expires-in", "0s"), "must lie in the future"),
        (("--scope", "read", "--expires-in", "soon"), "is not a duration"),
    ):
        result = _cli(env, "keys", "create", *arguments)
        assert result.returncode == 2, arguments
        assert message in result.stderr, result.stderr
    missing = _cli(env, "keys", "revoke", "0123456789ab")
    assert missing.returncode == 1
    assert "no key has the id 0123456789ab" in missing.stderr
    assert _cli(env, "keys", "revoke", "nonsense").returncode == 2
    created = _cli(env, "keys", "create", "--scope", "read,ingest", "--expires-in", "90d", "--json")
    assert created.returncode == 0, created.stderr
    body = json.loads(created.stdout)
    assert body["scopes"] == ["ingest", "read"]
    lifetime = datetime.fromisoformat(body["expiresAt"]) - datetime.fromisoformat(body["createdAt"])
    assert timedelta(days=89, hours=23) < lifetime <= timedelta(days=90)
    assert body["key"].startswith(f"eie_{body['id']}_")
    by_whole_key = _cli(env, "keys", "revoke", body["key"])
    assert by_whole_key.returncode == 0
    listed = json.loads(_cli(env, "keys", "list", "--json").stdout)
    assert [(item["id"], item["revokedAt"] is not None) for item in listed] == [(body["id"], True)]


def test_the_demo_runs_with_the_key_its_engine_minted(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("EIE_")}
    env.pop("DATABASE_URL", None)
    folder = tmp_path / "demo"
    process = subprocess.Popen(
        [
            *_command(),
            "demo",
            "--backfill",
            "30m",
            "--vehicles",
            "20",
            "--worst",
            "3",
            "--port",
            str(free_port()),
            "--data-dir",
            str(folder),
        ],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    output = ""
    try:
        assert process.stdout is not None
        deadline = time.monotonic() + 180
        for line in process.stdout:  # until the demo points at the dashboard, its last word
            output += line
            if "The dashboard:" in line:
                break
            assert time.monotonic() < deadline, output
        key = re.search(r"eie_[0-9a-f]{12}_[A-Za-z0-9_-]{43}", output)
        assert key is not None, output
        base = re.search(r"http://127\.0\.0\.1:\d+", output)
        assert base is not None, output
        listed = httpx.get(f"{base[0]}/v1/keys", headers=_bearer(key[0]), timeout=10)
        assert listed.status_code == 200
        assert [item["scopes"] for item in listed.json()] == [["admin"]]
        assert f"The dashboard: {base[0]}/ (sign in with the key {key[0]})" in output
        page = httpx.get(f"{base[0]}/", headers={"Accept": "text/html"}, timeout=10)
        assert page.status_code == 200
        assert '<label for="api-key">API key</label>' in page.text
    finally:
        process.send_signal(signal.SIGTERM)
        rest, _ = process.communicate(timeout=120)
    assert process.returncode == 0, output + rest
    assert not folder.exists()  # a clean stop removes the demo folder


def _one_error_line(result: subprocess.CompletedProcess[str]) -> str:
    """The single `Error: …` line a command printed on stderr (and nothing else there)."""
    assert "Traceback" not in result.stderr, result.stderr
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("Error: "), result.stderr
    return lines[0]


def test_commands_say_in_one_line_that_the_database_is_unreachable() -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("EIE_")}
    port = free_port()  # nothing listens there
    env["DATABASE_URL"] = f"postgresql://postgres:s3cret-password@127.0.0.1:{port}/engine"
    for arguments in (
        ("db", "migrate"),
        ("keys", "list"),
        ("keys", "create", "--scope", "read"),
        ("keys", "revoke", "0123456789ab"),
        ("report",),
    ):
        result = _cli(env, *arguments)
        assert result.returncode == 1, arguments
        line = _one_error_line(result)
        assert f"127.0.0.1:{port}/engine" in line, line
        assert "Connection refused" in line, line
        assert "s3cret-password" not in line, line
        assert result.stdout == "", arguments
    # Debugging: the cause's traceback first, then the same line.
    debug = _cli({**env, "EIE_LOG_LEVEL": "debug"}, "db", "migrate")
    assert debug.returncode == 1
    assert "Traceback" in debug.stderr
    assert "ConnectionRefusedError" in debug.stderr
    assert debug.stderr.splitlines()[-1] == line


def test_serve_says_in_one_line_that_the_database_is_unreachable() -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("EIE_")}
    port = free_port()  # nothing listens there
    env["DATABASE_URL"] = f"postgresql://postgres@127.0.0.1:{port}/engine"
    # It waits (about 30 s) for a database that may still be starting, then gives up.
    result = _cli(env, "serve", "--port", str(free_port()))
    assert result.returncode == 1, result.stderr
    assert "Traceback" not in result.stderr, result.stderr
    last = result.stderr.splitlines()[-1]
    assert last.startswith("Error: cannot connect to the database at "), result.stderr
    assert f"127.0.0.1:{port}/engine" in last, last
    assert "Application startup failed" not in result.stderr


def test_invalid_settings_are_one_line(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("EIE_")}
    env["EIE_DATA_DIR"] = str(tmp_path / "never-created")
    refused = _cli({**env, "EIE_AUTH_ENABLED": "false"}, "serve", "--host", "0.0.0.0")
    assert refused.returncode == 2  # a usage mistake, as before
    assert "not a loopback address" in _one_error_line(refused)
    workers = _cli({**env, "EIE_WORKERS": "0"}, "serve")
    assert workers.returncode == 2
    assert _one_error_line(workers).startswith("Error: workers: ")
    retry = _cli({**env, "EIE_RETRY_AFTER_SECONDS": "soon"}, "db", "migrate")
    assert retry.returncode == 2
    assert _one_error_line(retry).startswith("Error: retry_after_seconds: ")
    assert not (tmp_path / "never-created").exists()  # refused before anything started


async def _admin_execute(admin_url: str, statement: str) -> None:
    admin = await asyncpg.connect(admin_url)
    try:
        await admin.execute(statement)
    finally:
        await admin.close()


async def test_serve_refuses_an_existing_admin_key_file_in_one_line(
    test_server: DatabaseServer, tmp_path: Path
) -> None:
    name = f"{test_server.prefix}_cli_key_file"
    await _admin_execute(test_server.admin_url, f"CREATE DATABASE {quote_identifier(name)}")
    try:
        env = {k: v for k, v in os.environ.items() if not k.startswith("EIE_")}
        env["DATABASE_URL"] = with_database(test_server.admin_url, name)
        victim = tmp_path / "victim.txt"
        victim.write_text("someone else's\n")
        key_file = tmp_path / "admin.key"
        key_file.symlink_to(victim)
        refused = await asyncio.to_thread(
            _cli, env, "serve", "--port", str(free_port()), "--admin-key-file", str(key_file)
        )
        assert refused.returncode == 1, refused.stderr
        assert "Traceback" not in refused.stderr, refused.stderr
        line = refused.stderr.splitlines()[-1]  # after the migrations' log lines
        assert line.startswith("Error: the admin key file "), refused.stderr
        assert str(key_file) in line, line
        assert victim.read_text() == "someone else's\n"
        assert "eie_" not in refused.stdout  # no key was minted, so none was shown
    finally:
        await _admin_execute(
            test_server.admin_url, f"DROP DATABASE IF EXISTS {quote_identifier(name)} WITH (FORCE)"
        )


async def test_keys_commands_refuse_a_database_with_pending_migrations(
    test_server: DatabaseServer,
) -> None:
    name = f"{test_server.prefix}_cli_unmigrated"
    await _admin_execute(test_server.admin_url, f"CREATE DATABASE {quote_identifier(name)}")
    try:
        url = with_database(test_server.admin_url, name)
        env = {k: v for k, v in os.environ.items() if not k.startswith("EIE_")}
        env["DATABASE_URL"] = url
        for arguments in (
            ("keys", "list"),
            ("keys", "create", "--scope", "read"),
            ("keys", "revoke", "0123456789ab"),
            ("report",),
        ):
            refused = await asyncio.to_thread(_cli, env, *arguments)
            assert refused.returncode == 1, arguments
            line = _one_error_line(refused)
            assert line.endswith("run energy-ingest db migrate first"), line
            assert refused.stdout == ""
        connection = await asyncpg.connect(url)
        try:  # nothing was applied
            assert await pending_versions(connection) == [
                migration.version for migration in available_migrations()
            ]
        finally:
            await connection.close()
        migrated = await asyncio.to_thread(_cli, env, "db", "migrate")
        assert migrated.returncode == 0, migrated.stderr
        listed = await asyncio.to_thread(_cli, env, "keys", "list")
        assert listed.returncode == 0, listed.stderr
        assert listed.stderr.strip() == "no keys"
    finally:
        await _admin_execute(
            test_server.admin_url, f"DROP DATABASE IF EXISTS {quote_identifier(name)} WITH (FORCE)"
        )


def test_an_embedded_database_that_cannot_start_is_one_line(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("EIE_")}
    env.pop("DATABASE_URL", None)
    folder = tmp_path / "data"
    folder.mkdir()
    (folder / "notes.txt").write_text("not a database\n")  # initdb refuses a non-empty folder
    result = _cli(env, "db", "migrate", "--data-dir", str(folder))
    assert result.returncode == 1, result.stderr
    assert "Traceback" not in result.stderr, result.stderr
    errors = [line for line in result.stderr.splitlines() if line.startswith("Error: ")]
    assert errors == [result.stderr.splitlines()[-1]], result.stderr
    assert f"the embedded PostgreSQL in {folder} did not start: initdb failed" in errors[0]
