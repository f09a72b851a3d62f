"""`energy-ingest serve`: the HTTP API, on one process or several sharing the port."""

from __future__ import annotations

import asyncio
import os
import signal
import tempfile
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from types import FrameType

import click

from energy_ingest.cli.common import (
    data_dir_option,
    database_option,
    migrate_database,
    resolve_database_url,
    settings_from,
)
from energy_ingest.telemetry.metrics import MULTIPROCESS_ENV

# Like the engine's own start-up: a database still starting (compose) gets about 30 s.
_SERVE_CONNECT_ATTEMPTS = 30


@click.command()
@click.option("--host", envvar="EIE_HOST", help="Address to bind (default 127.0.0.1).")
@click.option("--port", envvar="EIE_PORT", type=int, help="Port to bind (default 8000).")
@click.option("--workers", envvar="EIE_WORKERS", type=int, help="Worker processes (default 1).")
@click.option(
    "--auth/--no-auth",
    "auth_enabled",
    envvar="EIE_AUTH_ENABLED",
    default=None,
    help="Require API keys (the default). --no-auth is for local use and is refused unless "
    "the engine listens on a loopback address.",
)
@click.option(
    "--admin-key-file",
    envvar="EIE_ADMIN_KEY_FILE",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Where the first start also writes the admin key it creates (mode 0600).",
)
@click.option(
    "--mqtt",
    "mqtt_url",
    envvar="EIE_MQTT_URL",
    help="Also take readings from this MQTT broker: mqtt://[user:pass@]host:port (mqtts:// "
    "for TLS). Off by default.",
)
@click.option(
    "--ocpp/--no-ocpp",
    "ocpp_enabled",
    envvar="EIE_OCPP_ENABLED",
    default=None,
    help="Also serve chargers: the OCPP 1.6J central system at ws://HOST:PORT/ocpp/<charge "
    "point id>. Off by default.",
)
@database_option
@data_dir_option
def serve(
    host: str | None,
    port: int | None,
    workers: int | None,
    auth_enabled: bool | None,
    admin_key_file: Path | None,
    mqtt_url: str | None,
    ocpp_enabled: bool | None,
    database_url: str | None,
    data_dir: Path | None,
) -> None:
    """Run the HTTP API (embedded PostgreSQL unless a database URL is given).

    The first start on a database without API keys creates an admin key and prints it once.
    """
    from energy_ingest.app import create_app
    from energy_ingest.server import serve as run_server

    settings = settings_from(
        host=host,
        port=port,
        workers=workers,
        auth_enabled=auth_enabled,
        admin_key_file=admin_key_file,
        mqtt_url=mqtt_url,
        ocpp_enabled=ocpp_enabled,
        database_url=database_url,
        data_dir=data_dir,
    )
    if not settings.auth_enabled:
        click.echo(
            f"authentication is OFF: anyone who can reach {settings.host} may write and read",
            err=True,
        )
    with ExitStack() as stack, _stop_on_signal():
        url = resolve_database_url(stack, settings)
        settings = settings.model_copy(update={"database_url": url})
        # The start-up's database work (wait for it, migrate, mint the first admin key) runs
        # here, before any server: a database that cannot be reached or migrated is then one
        # line, not a start-up traceback, and each process's own start-up finds nothing to do.
        asyncio.run(migrate_database(url, settings, attempts=_SERVE_CONNECT_ATTEMPTS))
        if settings.workers == 1:
            run_server(create_app(settings), settings)
            return
        # Several processes share the port; each builds its app from the environment, so the
        # resolved URL (perhaps the embedded server's) is handed down that way.
        os.environ["EIE_DATABASE_URL"] = url
        # The address too: without keys, each worker's Host check compares with it.
        os.environ["EIE_HOST"] = settings.host
        os.environ["EIE_PORT"] = str(settings.port)
        os.environ["EIE_AUTH_ENABLED"] = str(settings.auth_enabled).lower()
        if settings.mqtt_url is not None:
            os.environ["EIE_MQTT_URL"] = settings.mqtt_url
        os.environ["EIE_OCPP_ENABLED"] = str(settings.ocpp_enabled).lower()
        if not os.environ.get(MULTIPROCESS_ENV):
            # Each worker writes its metric samples here; a scrape of any of them sums all.
            os.environ[MULTIPROCESS_ENV] = stack.enter_context(
                tempfile.TemporaryDirectory(prefix="energy-ingest-metrics-")
            )
        run_server(
            "energy_ingest.app:create_app_from_environment",
            settings,
            factory=True,
            workers=settings.workers,
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
