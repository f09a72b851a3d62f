"""What every command shares: settings from options, expected failures as one line, the
database (a URL's or the embedded one) connected, checked or migrated, and closed once."""

from __future__ import annotations

import asyncio
import logging
import os
import subprocess
import sys
import traceback
from collections.abc import Awaitable, Callable
from contextlib import ExitStack
from datetime import timedelta
from functools import partial
from pathlib import Path
from typing import IO, Any
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import click
from pydantic import ValidationError

from energy_ingest.config import Settings
from energy_ingest.db.embedded import embedded_postgres
from energy_ingest.db.migrations import migrate_url, pending_versions
from energy_ingest.errors import EngineError

# --- expected failures: one line, exit 1 --------------------------------------------------


class CommandFailed(click.ClickException):
    """An expected failure (database unreachable, a file missing…): one `Error: …` line, exit 1.

    With --log-level debug the traceback of its cause is printed first, for a bug report.
    """

    def show(self, file: IO[Any] | None = None) -> None:
        cause = self.__cause__
        if cause is not None and logging.getLogger().isEnabledFor(logging.DEBUG):
            traceback.print_exception(cause, file=file or sys.stderr)
        super().show(file)


class SettingsInvalid(CommandFailed):
    """Settings that break a rule: one line, exit 2 as for any other usage mistake."""

    exit_code = 2


def one_line(text: str) -> str:
    return " ".join(text.split())


def _settings_problems(error: ValidationError) -> str:
    return "; ".join(
        f"{'.'.join(str(part) for part in problem['loc']) or 'settings'}: "
        + one_line(str(problem["msg"]).removeprefix("Value error, "))
        for problem in error.errors()
    )


def settings_from(**overrides: Any) -> Settings:
    """Environment first, then the options given on the command line."""
    try:
        return Settings(**{key: value for key, value in overrides.items() if value is not None})
    except ValidationError as error:
        raise SettingsInvalid(_settings_problems(error)) from error


def redact(url: str) -> str:
    """`url` without its password: what an error message may show."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.rpartition("@")[2]
    return urlunsplit(parts._replace(netloc=f"{parts.username or ''}:***@{netloc}"))


def _reason(error: BaseException) -> str:
    """What went wrong, in words: 'Connection refused' rather than '[Errno 111] …'."""
    if isinstance(error, TimeoutError):
        return "timed out"
    text = one_line(str(error))
    if isinstance(error, OSError) and error.errno is not None:
        words = os.strerror(error.errno)
        text = text.removeprefix(f"[Errno {error.errno}] ")
        return text if text.startswith(words) else f"{words}: {text}"
    return text or type(error).__name__


# Failures of the world the command runs in, not of the command, and the engine's own refusals
# (an admin key file already there): each is one line, exit 1.
EXPECTED_FAILURES = (
    OSError,
    asyncpg.PostgresError,
    asyncpg.InterfaceError,
    ValidationError,
    EngineError,
)


def failure(error: BaseException) -> CommandFailed:
    """The one line for an expected failure."""
    if isinstance(error, ValidationError):
        return SettingsInvalid(_settings_problems(error))
    if isinstance(error, asyncpg.PostgresError):
        return CommandFailed(f"database: {_reason(error)}")
    return CommandFailed(_reason(error))


# --- the database: a URL's or the embedded one, connected and closed once -----------------


database_option = click.option(
    "--database-url",
    envvar=["EIE_DATABASE_URL", "DATABASE_URL"],
    help="PostgreSQL URL. Unset: an embedded PostgreSQL with its data in --data-dir.",
)
data_dir_option = click.option(
    "--data-dir",
    envvar="EIE_DATA_DIR",
    type=click.Path(file_okay=False, path_type=Path),
    help="Data folder of the embedded PostgreSQL (default ./.energy-ingest).",
)


async def connect(url: str) -> asyncpg.Connection:
    """A connection to `url`, or a CommandFailed that names the address and the reason."""
    try:
        return await asyncpg.connect(url)
    except (*EXPECTED_FAILURES, ValueError) as error:
        raise CommandFailed(
            f"cannot connect to the database at {redact(url)}: {_reason(error)}"
        ) from error


def resolve_database_url(stack: ExitStack, settings: Settings) -> str:
    """The settings' database URL, or the URL of an embedded server that `stack` stops."""
    if settings.database_url:
        return settings.database_url
    try:
        url: str = stack.enter_context(embedded_postgres(settings.data_dir))
    except (RuntimeError, subprocess.SubprocessError) as error:  # initdb, pg_ctl: their words
        raise CommandFailed(
            f"the embedded PostgreSQL in {settings.data_dir} did not start: {one_line(str(error))}"
        ) from error
    click.echo(f"embedded PostgreSQL running, data in {settings.data_dir.resolve()}", err=True)
    return url


async def migrate_database(
    url: str, settings: Settings | None = None, attempts: int = 1
) -> list[str]:
    """Apply migrations; with `settings` (serving), also mint the first admin key if due.

    With `attempts` > 1, a database that refuses connections is retried once a second.
    """
    from energy_ingest.keys.bootstrap import ensure_admin_key

    then = None if settings is None else partial(ensure_admin_key, settings=settings)
    return await migrate_url(url, attempts=attempts, then=then, connect=connect)


async def _refuse_pending_migrations(connection: asyncpg.Connection, url: str) -> None:
    pending = await pending_versions(connection)
    if pending:
        raise CommandFailed(
            f"the database at {redact(url)} has {len(pending)} pending "
            f"migration{'s' if len(pending) > 1 else ''} ({', '.join(pending)}): "
            "run energy-ingest db migrate first"
        )


def on_database(
    database_url: str | None,
    data_dir: Path | None,
    work: Callable[[asyncpg.Connection], Any],
) -> Any:
    """Run `work` on a migrated database: the URL's, or the embedded one (running or not).

    A database with pending migrations is refused, never migrated: a listing pointed at
    production must not change its schema.
    """
    settings = settings_from(database_url=database_url, data_dir=data_dir)

    async def run(url: str) -> Any:
        connection = await connect(url)
        try:
            await _refuse_pending_migrations(connection, url)
            return await work(connection)
        finally:
            await connection.close()

    with ExitStack() as stack:
        return asyncio.run(run(resolve_database_url(stack, settings)))


def on_database_url(settings: Settings, work: Callable[[str], Awaitable[Any]]) -> Any:
    """Run `work` with the URL of a migrated database (`settings`' or the embedded one), for a
    command that opens the engine's own pools on it; pending migrations refused as above."""

    async def run(url: str) -> Any:
        connection = await connect(url)
        try:
            await _refuse_pending_migrations(connection, url)
        finally:
            await connection.close()
        return await work(url)

    with ExitStack() as stack:
        return asyncio.run(run(resolve_database_url(stack, settings)))


# --- option types shared by several commands ----------------------------------------------


class _DurationType(click.ParamType[timedelta]):
    name = "duration"

    def convert(
        self, value: Any, param: click.Parameter | None, ctx: click.Context | None
    ) -> timedelta:
        from energy_ingest.simulator.command import parse_duration

        if isinstance(value, timedelta):
            return value
        try:
            return parse_duration(str(value))
        except ValueError as exc:
            self.fail(str(exc), param, ctx)


DURATION = _DurationType()
