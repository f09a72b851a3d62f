"""The `energy-ingest` command: serve the API, manage the database."""

from __future__ import annotations

import asyncio
import os
import signal
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from types import FrameType
from typing import Any

import asyncpg
import click

from energy_ingest.config import Settings
from energy_ingest.db.embedded import embedded_postgres
from energy_ingest.db.migrations import migrate
from energy_ingest.telemetry.logs import configure_logging


def _settings(**overrides: Any) -> Settings:
    """Environment first, then the options given on the command line."""
    return Settings(**{key: value for key, value in overrides.items() if value is not None})


def _database_url(stack: ExitStack, settings: Settings) -> str:
    if settings.database_url:
        return settings.database_url
    url: str = stack.enter_context(embedded_postgres(settings.data_dir))
    click.echo(f"embedded PostgreSQL running, data in {settings.data_dir.resolve()}", err=True)
    return url


_database_option = click.option(
    "--database-url",
    envvar=["EIE_DATABASE_URL", "DATABASE_URL"],
    help="PostgreSQL URL. Unset: an embedded PostgreSQL with its data in --data-dir.",
)
_data_dir_option = click.option(
    "--data-dir",
    envvar="EIE_DATA_DIR",
    type=click.Path(file_okay=False, path_type=Path),
    help="Data folder of the embedded PostgreSQL (default ./.energy-ingest).",
)


@click.group()
@click.option(
    "--log-level",
    envvar="EIE_LOG_LEVEL",
    default="info",
    show_default=True,
    type=click.Choice(["debug", "info", "warning", "error"]),
)
@click.version_option(package_name="energy-ingest")
@click.option(
    "--log-format",
    envvar="EIE_LOG_FORMAT",
    default="json",
    show_default=True,
    type=click.Choice(["json", "text"]),
    help="Structured JSON lines (with request ids) or plain text.",
)
def main(log_level: str, log_format: str) -> None:
    """Energy Ingestion Engine: meter and vehicle telemetry, live state, efficiency analytics."""
    configure_logging(log_level, log_format)
    # Worker processes set up their logging from these.
    os.environ["EIE_LOG_LEVEL"] = log_level
    os.environ["EIE_LOG_FORMAT"] = log_format


@main.command()
@click.option("--host", envvar="EIE_HOST", help="Address to bind (default 127.0.0.1).")
@click.option("--port", envvar="EIE_PORT", type=int, help="Port to bind (default 8000).")
@click.option("--workers", envvar="EIE_WORKERS", type=int, help="Worker processes (default 1).")
@_database_option
@_data_dir_option
def serve(
    host: str | None,
    port: int | None,
    workers: int | None,
    database_url: str | None,
    data_dir: Path | None,
) -> None:
    """Run the HTTP API (embedded PostgreSQL unless a database URL is given)."""
    import uvicorn

    from energy_ingest.app import create_app

    settings = _settings(
        host=host, port=port, workers=workers, database_url=database_url, data_dir=data_dir
    )
    with ExitStack() as stack, _stop_on_signal():
        url = _database_url(stack, settings)
        settings = settings.model_copy(update={"database_url": url})
        if settings.workers == 1:
            uvicorn.run(
                create_app(settings),
                host=settings.host,
                port=settings.port,
                log_config=None,  # keep our handlers: JSON lines with request ids
                access_log=False,  # the engine logs each request itself, with its id
            )
            return
        # Several processes share the port; each builds its app from the environment, so the
        # resolved URL (perhaps the embedded server's) is handed down that way. Migrations run
        # once here first; each worker's start-up then finds nothing left to apply.
        asyncio.run(_migrate(url))
        os.environ["EIE_DATABASE_URL"] = url
        uvicorn.run(
            "energy_ingest.app:create_app_from_environment",
            factory=True,
            host=settings.host,
            port=settings.port,
            workers=settings.workers,
            log_config=None,
            access_log=False,
        )


class _Stopped(Exception):
    """Raised by the SIGTERM handler so that clean-up (the embedded server) runs on the way out."""


@contextmanager
def _stop_on_signal() -> Iterator[None]:
    """Turn SIGTERM and Ctrl-C into an orderly return (exit status 0).

    uvicorn shuts down gracefully on a signal and then re-raises it with the previous handler;
    this handler makes that an exception, so every context (the embedded server) is closed.
    """

    def stop(signum: int, frame: FrameType | None) -> None:
        raise _Stopped

    previous = signal.signal(signal.SIGTERM, stop)
    try:
        yield
    except (_Stopped, KeyboardInterrupt):
        click.echo("stopped", err=True)
    finally:
        signal.signal(signal.SIGTERM, previous)


async def _migrate(url: str) -> list[str]:
    connection = await asyncpg.connect(url)
    try:
        return await migrate(connection)
    finally:
        await connection.close()


@main.group()
def db() -> None:
    """Database administration."""


@db.command("migrate")
@_database_option
@_data_dir_option
def db_migrate(database_url: str | None, data_dir: Path | None) -> None:
    """Apply pending schema migrations (start-up does this too)."""
    settings = _settings(database_url=database_url, data_dir=data_dir)
    with ExitStack() as stack:
        applied = asyncio.run(_migrate(_database_url(stack, settings)))
    click.echo("applied: " + ", ".join(applied) if applied else "schema is up to date")
